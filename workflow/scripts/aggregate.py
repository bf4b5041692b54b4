"""Collect ratings, training logs, utility, robustness, scaling and the LoReFT comparison into tidy tables."""

from prosv.jobs import start_job

start_job(snakemake)

import pandas as pd  # noqa: E402

from prosv.files import write_parquet  # noqa: E402
from prosv.jobs import log  # noqa: E402
from prosv.report import tables as T  # noqa: E402
from prosv.report.examples import build_examples_table  # noqa: E402

inp, out, params = snakemake.input, snakemake.output, snakemake.params
boot = dict(n_boot=int(params.n_boot), seed=int(params.seed))
read = pd.read_parquet

ratings = [read(p) for p in [*inp.fixed, *inp.placed]]
concepts = T.build_concept_scores(ratings)
tables = {
    "main_concepts": concepts,
    "main": T.build_main_table(concepts, **boot),
    "losses": T.build_losses_table(
        {"main": [read(p) for p in inp.main_losses], "locate": [read(p) for p in inp.locate_losses]}
    ),
    "utility": T.build_utility_table(read(inp.accuracy)),
    "utility_concepts": T.utility_by_concept(read(inp.accuracy)),
    "robustness": T.build_robustness_table(read(inp.attack), read(inp.accuracy), **boot),
    "robustness_concepts": T.robustness_by_concept(read(inp.attack)),
    "loreft": read(inp.loreft_losses).sort_values(["method", "concept", "step"]).reset_index(drop=True),
    "loreft_cosine": read(inp.loreft_cosine),
    "loreft_spread": read(inp.loreft_spread),
    "scaling": T.build_scaling_table(read(inp.scaling_cells), read(inp.scaling_ratings), **boot),
    "scaling_concepts": T.scaling_by_concept(read(inp.scaling_losses), read(inp.scaling_cells)),
    "examples": build_examples_table(ratings),
}
for name, df in tables.items():
    log.info("%s: %d rows", name, len(df))
    write_parquet(getattr(out, name), df)
log.info("main table:\n%s", tables["main"].to_string())
