"""Figures, the main markdown table and SUMMARY.md from the parquet tables (no model is loaded)."""

from prosv.jobs import start_job

start_job(snakemake)

import json  # noqa: E402

import pandas as pd  # noqa: E402

from prosv.jobs import log  # noqa: E402
from prosv.provenance import combined, recorded  # noqa: E402
from prosv.report.render import FIGURES, render_all  # noqa: E402

inp, out = snakemake.input, snakemake.output
tables = {name: pd.read_parquet(getattr(inp, name)) for name in snakemake.params.tables}
with open(inp.choice) as f:
    choice = json.load(f)
problems = render_all(
    tables,
    {name: getattr(out, name) for name in FIGURES if hasattr(out, name)},  # task_steering: its own rule
    main_md=out.main_md,
    summary=out.summary,
    model=snakemake.params.model,
    choice=choice,
    provenance=combined(recorded(inp.vectors)) or {"provenance": "not recorded in the vector files"},
    summary_html=out.summary_html,
    tables_html=out.tables_html,
    strict=False,
)
for name, why in problems.items():
    log.warning("figure %s drawn as a placeholder: %s", name, why)
with open(out.summary) as f:
    log.info("summary:\n%s", f.read())
