"""Figures, the main markdown table and SUMMARY.md from the parquet tables (no model is loaded)."""

from prosv.jobs import start_job

start_job(snakemake)

import json  # noqa: E402

import pandas as pd  # noqa: E402

from prosv import figures as F  # noqa: E402
from prosv.jobs import log  # noqa: E402

inp, out = snakemake.input, snakemake.output
names = ("main", "losses", "utility", "robustness", "loreft", "loreft_cosine", "loreft_spread", "scaling", "locate")
tables = {name: pd.read_parquet(getattr(inp, name)) for name in names}
choice = json.loads(open(inp.choice).read())
problems = F.render_all(tables, {name: getattr(out, name) for name in F.FIGURES}, main_md=out.main_md,
                        summary=out.summary, model=snakemake.params.model, choice=choice, strict=False)
for name, why in problems.items():
    log.warning("figure %s drawn as a placeholder: %s", name, why)
log.info("summary:\n%s", open(out.summary).read())
