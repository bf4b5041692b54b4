"""The ASGI app: OpenAI-compatible routes over the engine, and the playground page.

A request picks its steering by model id (`<model>:<vector>`, so any OpenAI client works as is) or
by an extra body field (`"steering": {"vector": ..., "factor": ...}`); answers say what was applied
in a `steering` field. Every refusal is an OpenAI-style error body with a 4xx status that names
the problem; nothing a request does stops the server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from ..positions import template_ids
from .engine import Engine, Event, Job, ServerBusy
from .registry import VectorLookupError, VectorRegistry
from .schema import (
    DEFAULT_SEED,
    DEFAULT_TEMPERATURE,
    ChatRequest,
    RequestError,
    chunk,
    completion,
    completion_id,
    parse_request,
)
from .settings import ServeSettings

log = logging.getLogger(__name__)


class Server:
    """What the routes share: the model's tokenizer and limits, the vectors, the engine, the key."""

    def __init__(self, engine: Engine, model_id: str, settings: ServeSettings, api_key: str | None = None):
        self.engine, self.model_id, self.settings = engine, model_id, settings
        self.registry: VectorRegistry = engine.registry
        self.tokenizer = engine.tokenizer
        config = engine.model.config.get_text_config()
        self.context = getattr(config, "max_position_embeddings", None)
        self.api_key = api_key or None
        self.started = int(time.time())

    # --- checks --------------------------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise RequestError(
                f"missing or wrong API key: send 'Authorization: Bearer <key>' with the value of "
                f"${self.settings.api_key_env}",
                status=401,
                code="invalid_api_key",
            )

    def steering(self, req: ChatRequest):
        """(vector or None, factor) of a request; the model id may carry the vector."""
        named = None
        if req.model.startswith(self.model_id + ":"):
            named = req.model[len(self.model_id) + 1 :]
        elif req.model != self.model_id:
            raise RequestError(
                f"unknown model {req.model!r}: this server runs {self.model_id!r} "
                f"(steered: '{self.model_id}:<vector>', see /v1/models)",
                status=404,
                param="model",
                code="model_not_found",
            )
        chosen = req.steering.vector if req.steering else None
        if named and chosen and named != chosen:
            raise RequestError(
                f"the model id names vector {named!r} but steering.vector is {chosen!r}", param="steering.vector"
            )
        name = named or chosen
        factor = req.steering.factor if req.steering else None
        if name is None:
            if factor is not None:
                raise RequestError("steering.factor given without a vector", param="steering.factor")
            return None, None
        try:
            vector = self.registry.resolve(name)
        except VectorLookupError as err:
            raise RequestError(str(err), err.status, "model" if named else "steering.vector", err.code) from None
        return vector, 1.0 if factor is None else factor

    def prompt(self, req: ChatRequest) -> list[int]:
        try:
            ids = template_ids(self.tokenizer, [m.as_template() for m in req.messages])
        except Exception as err:  # the model's chat template refuses these messages (jinja raises)
            raise RequestError(f"messages: the chat template refused them ({err})", param="messages") from None
        limit = self.settings.max_tokens_limit
        if req.new_tokens > limit:
            raise RequestError(
                f"max_tokens={req.new_tokens} is above this server's limit of {limit}", param="max_tokens"
            )
        if self.context and len(ids) + req.new_tokens > self.context:
            raise RequestError(
                f"the prompt has {len(ids)} tokens; with max_tokens={req.new_tokens} it exceeds the model's "
                f"context of {self.context}",
                param="messages",
            )
        return ids

    # --- routes --------------------------------------------------------------------------------

    async def chat(self, request: Request):
        self.authorize(request)
        req = parse_request(await request.body())
        vector, factor = self.steering(req)
        prompt_ids = self.prompt(req)
        loop, events = asyncio.get_running_loop(), asyncio.Queue()

        def emit(event: Event) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the event loop has closed: the server is stopping
                pass

        job = Job(
            prompt_ids,
            req.new_tokens,
            emit,
            vector,
            1.0 if factor is None else factor,
            DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
            1.0 if req.top_p is None else req.top_p,
            DEFAULT_SEED if req.seed is None else req.seed,
            req.stops,
        )
        try:
            self.engine.submit(job)
        except ServerBusy as err:
            raise RequestError(str(err), status=503, code="server_busy") from None
        applied = {"vector": None, "factor": None}
        if vector is not None:
            applied = {"vector": vector.name, "factor": factor, **vector.describe()}
        cid = completion_id()
        if req.stream:
            usage = bool(req.stream_options and req.stream_options.include_usage)
            stream = self._stream(job, events, cid, req.model, applied, len(prompt_ids), usage)
            return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        parts: list[str] = []
        try:
            while (event := await events.get()).kind == "text":
                parts.append(event.text)
        finally:
            job.cancelled.set()
        if event.kind == "error":
            raise RequestError(event.text, status=500, code="server_error")
        usage = _usage(len(prompt_ids), event.completion_tokens)
        return JSONResponse(completion(cid, req.model, "".join(parts), event.finish_reason, usage, applied))

    async def _stream(self, job: Job, events: asyncio.Queue, cid: str, model: str, applied: dict, prompt_len, usage):
        try:
            yield _sse(chunk(cid, model, {"role": "assistant", "content": ""}, None, applied))
            while (event := await events.get()).kind == "text":
                yield _sse(chunk(cid, model, {"content": event.text}, None, applied))
            if event.kind == "error":
                yield _sse(RequestError(event.text, status=500, code="server_error").body())
            else:
                yield _sse(chunk(cid, model, {}, event.finish_reason, applied))
                if usage:
                    yield _sse(chunk(cid, model, {}, None, applied, _usage(prompt_len, event.completion_tokens)))
            yield "data: [DONE]\n\n"
        finally:
            job.cancelled.set()  # a client that went away frees its row at the next step

    def model_entries(self) -> list[dict]:
        base = {"object": "model", "created": self.started, "owned_by": "prosv"}
        entries = [{"id": self.model_id, **base, "steering": None}]
        for name, vector in sorted(self.registry.vectors.items()):
            entries.append({"id": f"{self.model_id}:{name}", **base, "steering": vector.describe()})
        return entries

    async def models(self, request: Request):
        self.authorize(request)
        return JSONResponse({"object": "list", "data": self.model_entries(), "refused": self.registry.refused})

    async def model(self, request: Request):
        self.authorize(request)
        wanted = request.path_params["model_id"]
        for entry in self.model_entries():
            if entry["id"] == wanted:
                return JSONResponse(entry)
        raise RequestError(f"unknown model {wanted!r}", status=404, param="model", code="model_not_found")

    async def health(self, request: Request):
        e = self.engine
        return JSONResponse(
            {
                "status": "ok",
                "model": self.model_id,
                "vectors": len(self.registry.vectors),
                "active": e.active,
                "waiting": e.waiting,
                "prefill_calls": e.prefills,
                "decode_steps": e.steps,
                "largest_batch": max(e.rows_per_step, default=0),
                "api_key_required": self.api_key is not None,
            }
        )

    async def playground(self, request: Request):
        return HTMLResponse(resources.files(__package__).joinpath("static/playground.html").read_text("utf-8"))


def _usage(prompt: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"


async def _request_error(request: Request, err: RequestError):
    return JSONResponse(err.body(), status_code=err.status)


async def _http_error(request: Request, err: HTTPException):
    body = RequestError(f"{request.method} {request.url.path}: {err.detail}", status=err.status_code).body()
    return JSONResponse(body, status_code=err.status_code)


async def _server_error(request: Request, err: Exception):
    log.exception("unhandled error")
    body = RequestError(f"internal error: {type(err).__name__}: {err}", status=500, code="server_error").body()
    return JSONResponse(body, status_code=500)


def build_app(server: Server) -> Starlette:
    """The app; starting it (its lifespan) starts the engine thread, stopping it stops the thread."""

    @asynccontextmanager
    async def lifespan(app):
        server.engine.start()
        try:
            yield
        finally:
            server.engine.stop()

    routes = [
        Route("/", server.playground),
        Route("/health", server.health),
        Route("/v1/models", server.models),
        Route("/v1/models/{model_id:path}", server.model),
        Route("/v1/chat/completions", server.chat, methods=["POST"]),
    ]
    handlers = {RequestError: _request_error, HTTPException: _http_error, Exception: _server_error}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
