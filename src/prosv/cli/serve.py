"""`prosv serve`: the OpenAI-compatible steering server."""

from __future__ import annotations

from .errors import UserError
from .help import EXAMPLES


def _cmd_serve(args) -> int:
    from ..serve import ServeSettings, run

    settings = ServeSettings(
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        max_waiting=args.max_waiting,
        max_tokens_limit=args.max_tokens_limit,
        api_key_env=args.api_key_env,
    )
    try:
        run(args.model, args.vectors, settings, device=args.device, dtype=args.dtype)
    except ImportError as err:
        raise UserError(str(err)) from None
    return 0


def add(sub) -> None:
    from ..serve.settings import ServeSettings

    d = ServeSettings()
    s = sub.add_parser(
        "serve",
        help="an OpenAI-compatible server that steers each request with its own vector, and a playground page",
        description="Model ids: <model> unsteered, <model>:<vector> steered by DIR/<vector>.safetensors "
        "(<vector>@<concept> for files of several concepts). Needs the serve extra.",
        epilog=EXAMPLES["serve"],
    )
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument("--vectors", required=True, metavar="DIR", help="folder of .safetensors vector files to serve")
    s.add_argument("--host", default=d.host, help="address to bind (loopback unless told otherwise)")
    s.add_argument("--port", type=int, default=d.port, help="port to listen on")
    s.add_argument("--max-batch", type=int, default=d.max_batch, help="rows decoded together")
    s.add_argument("--max-waiting", type=int, default=d.max_waiting, help="queued requests before 503")
    s.add_argument("--max-tokens-limit", type=int, default=d.max_tokens_limit, help="largest max_tokens allowed")
    s.add_argument(
        "--api-key-env", default=d.api_key_env, help="environment variable whose value, when set, requests must send"
    )
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    s.add_argument("--dtype", default=None, help="float32, bfloat16, ... (default: the device's)")
    s.set_defaults(func=_cmd_serve)
