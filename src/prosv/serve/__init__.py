"""`prosv serve`: an OpenAI-compatible server that steers each request with its own vector.

`settings` (defaults, no web dependency), `registry` (the vectors of one folder), `engine`
(continuous batching), `kv` (merging KV cache rows), `decoding` (a row's tokens and text), `schema`
(requests, answers, errors), `app` (routes and the playground page in `static/`).
Needs the `serve` extra (Starlette, uvicorn, pydantic).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

from .settings import ServeSettings

__all__ = ["ServeSettings", "make_app", "run", "served_model_id"]

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def served_model_id(name: str) -> str:
    """The base model's id in the API: the registry name, or a folder's own name."""
    return Path(name).name if Path(name).expanduser().is_dir() else name


def make_app(model, tokenizer, model_name: str, vectors: str | Path, settings: ServeSettings | None = None):
    """The ASGI app over an already loaded model (its lifespan starts and stops the engine)."""
    from .app import Server, build_app
    from .engine import Engine
    from .registry import VectorRegistry

    settings = settings or ServeSettings()
    registry = VectorRegistry(vectors, model, model_name)
    engine = Engine(model, tokenizer, registry, settings.max_batch, settings.max_waiting)
    api_key = os.environ.get(settings.api_key_env) or None
    return build_app(Server(engine, served_model_id(model_name), settings, api_key))


def run(model_name: str, vectors: str | Path, settings: ServeSettings, device=None, dtype=None, log_level="info"):
    """Load the model, check the vectors, serve until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError("prosv serve needs the serve extra: pip install -e '.[serve]'") from None
    from ..models import load_model

    if not Path(vectors).is_dir():
        raise FileNotFoundError(f"--vectors {vectors}: not a folder")
    model, tokenizer = load_model(model_name, device=device, dtype=dtype)
    app = make_app(model, tokenizer, model_name, vectors, settings)
    if not is_loopback(settings.host) and not os.environ.get(settings.api_key_env):
        log.warning("serving on %s without an API key: set %s to require one", settings.host, settings.api_key_env)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level)
