"""`prosv verdicts`: the paper's claims decided in several runs (seeds, dtypes, commits), side by side,
with the comparisons whose verdict changed and any flip between held and contradicted."""

from __future__ import annotations

from .errors import UserError

EXAMPLES = """examples:
  prosv verdicts results results-seed43 results-seed44
  prosv verdicts results results-fp32 --label bf16 --label fp32 --out verdicts.md
  prosv verdicts results results-seed43 --strict     # exit 1 when a verdict flips
"""


def _cmd_verdicts(args) -> int:
    from ..report.runs import FLIP, compare_runs

    if len(args.runs) < 2:
        raise UserError(f"give at least two runs' results folders to compare, got {len(args.runs)}")
    table, text = compare_runs(args.runs, args.label, out=args.out, n_boot=args.n_boot, seed=args.seed)
    print(text, end="")
    return 1 if args.strict and (table["stability"] == FLIP).any() else 0


def add(sub) -> None:
    from ..stats import DEFAULT_BOOT

    s = sub.add_parser(
        "verdicts",
        help="the claims' verdicts in several runs side by side (which stayed the same, which flipped)",
        description="Recomputes each run's paired comparisons from its tables/*.parquet with the current "
        "statistic and sets them side by side, one column per run (seed and dtype read from its vectors). "
        "A comparison is 'same' when every run gives it one verdict, 'flip' when one run calls it held and "
        "another contradicted, else 'changed'.",
        epilog=EXAMPLES,
    )
    s.add_argument("runs", nargs="+", help="results folders of finished runs (each with tables/*.parquet)")
    s.add_argument("--label", action="append", help="a name per run, in order (default: the folders' names)")
    s.add_argument("--out", help="also write the markdown table here")
    s.add_argument("--n-boot", type=int, default=DEFAULT_BOOT, help="bootstrap resamples per comparison")
    s.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (SUMMARY.md uses 0)")
    s.add_argument("--strict", action="store_true", help="exit 1 when a comparison flips between held and contradicted")
    s.set_defaults(func=_cmd_verdicts)
