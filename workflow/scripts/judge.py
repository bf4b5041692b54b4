"""Rate responses on concept, instruction and fluency with the configured judge (cached on disk)."""

import pandas as pd

from prosv.jobs import log, start_job
from prosv.judges import make_judge, save_ratings

start_job(snakemake)
generations = pd.read_parquet(snakemake.input[0])
judge = make_judge(dict(snakemake.params.judge))
rated = judge.rate_dataframe(generations, progress=True)
if "protocol" not in rated.columns:
    rated["protocol"] = "factor_free"
save_ratings(rated, snakemake.output[0], judge)
stats = judge.stats.as_dict()
log.info("judge %s: %s", judge.judge_id, stats)
if stats["errors"] or stats["parse_failures"]:
    # scored 0 and counted in the ratings' judge_errors / judge_parse_failures columns, and in SUMMARY.md
    log.warning("%d judge errors and %d parse failures (scored 0)", stats["errors"], stats["parse_failures"])
judge.close()
