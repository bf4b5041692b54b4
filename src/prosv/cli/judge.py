"""`prosv judge calibrate|evaluate|rate`."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError
from .help import EXAMPLES, HelpFormatter


def _cmd_judge(args) -> int:
    from .. import judges as J
    from ..data.tables import read_table
    from ..files import write_json

    if args.judge_command == "calibrate":
        res = J.calibrate_offline_judge(
            args.data, args.out, fluency_lm=args.fluency_lm, lm_max_tokens=args.lm_max_tokens, l2=args.l2
        )
        if args.metrics_out:
            write_json(args.metrics_out, res["calibration"]["metrics"])
        return 0
    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as err:
        raise UserError(f"--config: not JSON ({err.msg})") from None
    judge = J.make_judge(config)
    if args.judge_command == "evaluate":
        metrics = J.evaluate_judge(judge, args.data, None if args.split == "all" else args.split)
        print(J.format_metrics(metrics))
        print(json.dumps(judge.stats.as_dict()))
        return 0
    rated = judge.rate_dataframe(read_table(Path(args.input)), progress=True)
    stats_path = J.save_ratings(rated, args.output, judge)
    print(json.dumps(judge.stats.as_dict()))
    print(f"wrote {args.output} and {stats_path}")
    return 0


def add(sub) -> None:
    from ..judges.offline import DEFAULT_FLUENCY_LM, DEFAULT_LM_MAX_TOKENS, DEFAULT_THRESHOLDS, FLUENCY_LMS

    s = sub.add_parser(
        "judge", help="calibrate or check the offline judge; rate a table with any judge", epilog=EXAMPLES["judge"]
    )
    jsub = s.add_subparsers(dest="judge_command", required=True)
    add = jsub.add_parser
    jsub.add_parser = lambda name, **kw: add(name, formatter_class=HelpFormatter, **kw)
    c = jsub.add_parser(
        "calibrate",
        help="fit the offline judge on the calibrate split, report held-out agreement",
        epilog=EXAMPLES["judge calibrate"],
    )
    c.add_argument("--data", default=None, help="labelled responses (default: data/judge_calibration)")
    c.add_argument("--out", default=str(DEFAULT_THRESHOLDS), help="thresholds file to write")
    c.add_argument(
        "--fluency-lm", default=DEFAULT_FLUENCY_LM, choices=sorted(FLUENCY_LMS), help="LM whose loss rates fluency"
    )
    c.add_argument(
        "--lm-max-tokens", type=int, default=DEFAULT_LM_MAX_TOKENS, help="tokens of each response the fluency LM reads"
    )
    c.add_argument("--l2", type=float, default=1.0, help="ridge penalty of the ordinal models")
    c.add_argument("--metrics-out", default=None, help="also write the metrics as JSON here")
    e = jsub.add_parser("evaluate", help="agreement of a judge with the hand labels", epilog=EXAMPLES["judge evaluate"])
    e.add_argument("--data", default=None, help="labelled responses (default: data/judge_calibration)")
    e.add_argument(
        "--split", default="heldout", choices=["heldout", "calibrate", "all"], help="which labelled responses"
    )
    e.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    r = jsub.add_parser(
        "rate", help="rate a table with columns concept, instruction, response", epilog=EXAMPLES["judge rate"]
    )
    r.add_argument("input", help="parquet, JSON Lines or CSV with concept, instruction and response columns")
    r.add_argument("output", help="where the rated table goes (parquet); its stats beside it")
    r.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    s.set_defaults(func=_cmd_judge)
