"""The OpenAI chat-completions request as prosv serve reads it, the objects it answers with, its errors.

Defaults that decide an answer are the library's (`prosv.generation.generate`): greedy decoding
(temperature 0, not OpenAI's 1), seed 0 and 128 new tokens, so a bare request answers what
`prosv generate` prints. Every problem is a `RequestError` whose message names the field.
"""

from __future__ import annotations

import inspect
import json
import math
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..generation import generate

_LIBRARY = inspect.signature(generate).parameters
DEFAULT_MAX_TOKENS = _LIBRARY["max_new_tokens"].default
DEFAULT_TEMPERATURE = _LIBRARY["temperature"].default
DEFAULT_SEED = _LIBRARY["seed"].default
MAX_STOP_SEQUENCES = 4  # as OpenAI's API

# Fields of OpenAI's API that prosv serve does not implement: refused rather than silently ignored.
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs", "logit_bias")
UNSUPPORTED += ("response_format", "presence_penalty", "frequency_penalty", "audio", "modalities", "prediction")


class RequestError(Exception):
    """A request the server refuses: HTTP status and an OpenAI-style error body."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = {401: "authentication_error", 404: "not_found_error", 503: "server_error"}.get(
            self.status, "invalid_request_error"
        )
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. `name`: accepted, not used by the template
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_template(self) -> dict:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class SteeringChoice(_Strict):
    vector: str | None = None
    factor: float | None = None  # multiplies the vector's learned alpha; default 1


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    model: str
    messages: list[Message]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    steering: SteeringChoice | None = None

    @property
    def new_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS

    @property
    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


def _first_problem(err: ValidationError) -> RequestError:
    problem = err.errors()[0]
    where = ".".join(str(p) for p in problem["loc"]) or "body"
    return RequestError(f"{where}: {problem['msg']}", param=where)


def parse_request(body: bytes) -> ChatRequest:
    """The request of a POST body, checked; a RequestError names the first problem."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"the request body is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as err:
        raise _first_problem(err) from None
    if not req.messages:
        raise RequestError("messages is empty: give at least one message", param="messages")
    if req.n not in (None, 1):
        raise RequestError(f"n={req.n}: prosv serve returns one choice per request (n=1)", param="n")
    if len(req.stops) > MAX_STOP_SEQUENCES:
        raise RequestError(f"stop: at most {MAX_STOP_SEQUENCES} sequences, got {len(req.stops)}", param="stop")
    given = [k for k in UNSUPPORTED if (req.model_extra or {}).get(k) not in (None, False, 0, [], {})]
    if given:
        raise RequestError(f"{given[0]} is not supported by prosv serve", param=given[0])
    factor = req.steering.factor if req.steering else None
    if factor is not None and not math.isfinite(factor):
        raise RequestError(f"steering.factor must be a finite number, got {factor}", param="steering.factor")
    return req


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(cid: str, model: str, text: str, finish: str, usage: dict, steering: dict) -> dict:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
        ],
        "usage": usage,
        "steering": steering,
    }


def chunk(cid: str, model: str, delta: dict, finish: str | None, steering: dict, usage: dict | None = None) -> dict:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        "steering": steering,
    }
    if usage is not None:
        body["choices"], body["usage"] = [], usage
    return body
