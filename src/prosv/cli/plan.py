"""`prosv plan`: what a workflow config will cost before it runs (jobs, judge requests, tokens, price)."""

from __future__ import annotations

import json

from .errors import UserError

EXAMPLES = """examples:
  prosv plan --configfile config/config.yaml
  prosv plan --configfile config/paper/gemma-2-2b-it_L10.yaml --price-per-million-input 2.5 \\
      --price-per-million-output 10
  prosv plan --configfile config/paper/gemma-2-2b-it_L10.yaml --json
"""


def _cmd_plan(args) -> int:
    from ..plan import load_config, make_plan

    for option in ("price_per_million_input", "price_per_million_output"):
        if getattr(args, option) < 0:
            raise UserError(f"--{option.replace('_', '-')}: must be at least 0, got {getattr(args, option):g}")

    config = load_config(args.configfile)
    try:
        plan = make_plan(
            config,
            args.configfile,
            price_per_million_input=args.price_per_million_input,
            price_per_million_output=args.price_per_million_output,
        )
    except (ValueError, KeyError) as err:  # a key the schema cannot check: name the file too
        raise UserError(f"{args.configfile}: {err.args[0] if err.args else err}") from None
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.format())
    return 0


def add(sub) -> None:
    from ..plan import CHARS_PER_TOKEN, DEFAULT_PRICE_PER_MILLION_INPUT, DEFAULT_PRICE_PER_MILLION_OUTPUT

    s = sub.add_parser(
        "plan",
        help="jobs per rule, judge requests, tokens and price of a workflow config, before it runs",
        description="Counts what `snakemake --configfile CONFIG` would run for the default target; tokens are "
        f"estimated ({CHARS_PER_TOKEN} characters per token), the price assumes an empty judge cache.",
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
    s.add_argument("--json", action="store_true", help="print the plan as JSON")
    s.set_defaults(func=_cmd_plan)
