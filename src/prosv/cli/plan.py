"""`prosv plan`: what a workflow config will cost before it runs (jobs, judge requests, tokens, price,
GPU-hours)."""

from __future__ import annotations

import json

from .errors import UserError

EXAMPLES = """examples:
  prosv plan --configfile config/config.yaml
  prosv plan --configfile config/paper/gemma-2-2b-it_L10.yaml --price-per-million-input 2.5 \\
      --price-per-million-output 10
  prosv plan --configfile config/paper/gemma-2-2b-it_L10.yaml --json
  prosv plan --configfile config/paper/gemma-2-9b-it_L20.yaml --accelerator a100 --mfu 0.3
"""


def _cmd_plan(args) -> int:
    from ..plan import load_config, make_plan

    for option in ("price_per_million_input", "price_per_million_output"):
        if getattr(args, option) < 0:
            raise UserError(f"--{option.replace('_', '-')}: must be at least 0, got {getattr(args, option):g}")
    for option in ("mfu", "bandwidth_efficiency"):
        if not 0 < getattr(args, option) <= 1:
            raise UserError(f"--{option.replace('_', '-')}: must be in (0, 1], got {getattr(args, option):g}")

    config = load_config(args.configfile)
    try:
        plan = make_plan(
            config,
            args.configfile,
            price_per_million_input=args.price_per_million_input,
            price_per_million_output=args.price_per_million_output,
            accelerator=args.accelerator,
            mfu=args.mfu,
            bandwidth_efficiency=args.bandwidth_efficiency,
        )
    except (ValueError, KeyError) as err:  # a key the schema cannot check: name the file too
        raise UserError(f"{args.configfile}: {err.args[0] if err.args else err}") from None
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.format())
    return 0


def add(sub) -> None:
    from ..plan import (
        ACCELERATORS,
        CHARS_PER_TOKEN,
        DEFAULT_ACCELERATOR,
        DEFAULT_BANDWIDTH_EFFICIENCY,
        DEFAULT_MFU,
        DEFAULT_PRICE_PER_MILLION_INPUT,
        DEFAULT_PRICE_PER_MILLION_OUTPUT,
    )

    s = sub.add_parser(
        "plan",
        help="jobs per rule, judge requests, tokens, price and GPU-hours of a workflow config, before it runs",
        description="Counts what `snakemake --configfile CONFIG` would run for the default target; tokens are "
        f"estimated ({CHARS_PER_TOKEN} characters per token), the price assumes an empty judge cache; the model "
        "compute of every stage is projected from the model's shape onto one accelerator.",
        epilog=EXAMPLES,
    )
    s.add_argument("--configfile", required=True, help="workflow config (config/*.yaml, config/paper/*.yaml)")
    s.add_argument(
        "--price-per-million-input",
        type=float,
        default=DEFAULT_PRICE_PER_MILLION_INPUT,
        help="USD per million judge input tokens (default: %(default)s, gpt-4o-mini's list price)",
    )
    s.add_argument(
        "--price-per-million-output",
        type=float,
        default=DEFAULT_PRICE_PER_MILLION_OUTPUT,
        help="USD per million judge output tokens (default: %(default)s, gpt-4o-mini's list price)",
    )
    s.add_argument(
        "--accelerator",
        choices=sorted(ACCELERATORS),
        default=DEFAULT_ACCELERATOR,
        help="the accelerator of the compute projection (default: %(default)s)",
    )
    s.add_argument(
        "--mfu",
        type=float,
        default=DEFAULT_MFU,
        help="share of the accelerator's peak bf16 FLOP/s reached by training and prefill (default: %(default)s)",
    )
    s.add_argument(
        "--bandwidth-efficiency",
        type=float,
        default=DEFAULT_BANDWIDTH_EFFICIENCY,
        help="share of its memory bandwidth reached by a decode step (default: %(default)s)",
    )
    s.add_argument("--json", action="store_true", help="print the plan as JSON")
    s.set_defaults(func=_cmd_plan)
