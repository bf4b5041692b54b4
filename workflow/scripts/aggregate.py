"""Collect ratings, training logs, utility, robustness and the LoReFT comparison into tidy tables."""

from prosv.jobs import start_job

start_job(snakemake)

import re  # noqa: E402

import pandas as pd  # noqa: E402

from prosv import figures as F  # noqa: E402
from prosv.jobs import log, write_parquet  # noqa: E402

inp, out, params = snakemake.input, snakemake.output, snakemake.params
methods = dict(params.methods)
boot = dict(n_boot=int(params.n_boot), seed=int(params.seed))


def read_ratings(path: str) -> pd.DataFrame:
    df = pd.read_parquet(path)
    if "method" not in df.columns:  # ratings/baseline/<name>/... or ratings/<method>/L<layer>/...
        m = re.search(r"ratings/(?:baseline/)?([^/]+)/", path)
        df["method"] = m.group(1) if m else path
    if path.endswith(".grid.parquet"):
        df["protocol"] = "factor_grid"
    return df


frames = [read_ratings(p) for p in inp.ratings]
main = F.build_main_table(frames, methods, **boot)
log.info("main table:\n%s", main.to_string())
write_parquet(out.main, main)

losses = F.build_losses_table({role: [pd.read_parquet(p) for p in getattr(inp, f"{role}_losses")]
                               for role in ("main", "locate", "extra")}, methods)
log.info("losses: %d rows, runs %s", len(losses), sorted(losses.method.unique()))
write_parquet(out.losses, losses)

accuracy = pd.read_parquet(inp.accuracy)
utility = F.build_utility_table(accuracy, methods, main)
log.info("utility table:\n%s", utility.to_string())
write_parquet(out.utility, utility)

robustness = F.build_robustness_table(pd.read_parquet(inp.attack), accuracy, methods, main, **boot)
log.info("robustness table:\n%s", robustness.to_string())
write_parquet(out.robustness, robustness)

loreft = pd.read_parquet(inp.loreft_losses).sort_values(["method", "concept", "step"]).reset_index(drop=True)
write_parquet(out.loreft, loreft)
write_parquet(out.loreft_cosine, pd.read_parquet(inp.loreft_cosine))
write_parquet(out.loreft_spread, pd.read_parquet(inp.loreft_spread))

scaling = F.build_scaling_table(pd.read_parquet(inp.scaling_cells), pd.read_parquet(inp.scaling_ratings))
log.info("scaling table:\n%s", scaling.to_string())
write_parquet(out.scaling, scaling)
