"""`prosv` command line: prepare the embedded model, inspect positions, train one concept, generate, judge, serve,
plan a workflow run, compare the verdicts of several runs.

Every user error prints one line, ``prosv: error: <what>: <problem>``, and exits 2 (``--debug`` shows
the traceback instead). One module per command; each has ``add(subparsers)``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import generate, judge, model, plan, serve, train, verdicts
from .errors import UserError, is_user_error
from .generate import concept_index
from .help import EPILOG, HelpFormatter
from .train import train_settings

__all__ = ["UserError", "build_parser", "concept_index", "main", "train_settings"]


def set_threads(n: int | None) -> None:
    """Pin torch's CPU threads; oversubscribed OpenMP threads slow small models down many times."""
    if n:
        import torch

        torch.set_num_threads(n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prosv",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models-root",
        default=None,
        help="where embedded models are converted to "
        "(default: $PROSV_MODELS_ROOT, else $PROSV_CACHE_DIR/models, else ~/.cache/prosv/models)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser
    sub.add_parser = lambda name, **kw: add(name, formatter_class=HelpFormatter, **kw)  # every command shows defaults
    for command in (model, train, generate, judge, serve, plan, verdicts):
        command.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    set_threads(args.threads)
    from ..jobs import keep_freed_memory

    keep_freed_memory()
    try:
        return args.func(args)
    except Exception as err:
        if args.debug or not is_user_error(err):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"prosv: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
