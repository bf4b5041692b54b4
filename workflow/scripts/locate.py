"""Pick the location with the best mean overall score on the development concepts (prompt-only ones)."""

import pandas as pd

from prosv import evaluation as E
from prosv.jobs import log, start_job, write_json, write_parquet

start_job(snakemake)
frames = [pd.read_parquet(p) for p in snakemake.input.ratings]
ratings = pd.concat(frames, ignore_index=True)
per_concept = E.concept_means(ratings, by=["layer", "positions"], protocol="factor_free",
                              judge=ratings.judge.iloc[0])
table = (per_concept.groupby(["layer", "positions"], as_index=False)
         [["overall", "concept_score", "instruction_score", "fluency_score"]].mean())
table["n_concepts"] = per_concept.groupby(["layer", "positions"]).size().to_numpy()
prompt_only = table[table.positions != "all"].sort_values(["overall", "concept_score"], ascending=False)
best = prompt_only.iloc[0] if not prompt_only.empty else table.sort_values("overall", ascending=False).iloc[0]
choice = {"layer": int(best.layer), "positions": str(best.positions), "overall": float(best.overall),
          "concept_score": float(best.concept_score), "judge": str(ratings.judge.iloc[0])}
log.info("location table:\n%s", table.to_string())
log.info("choice: %s", choice)
write_parquet(snakemake.output.table, table.assign(chosen=(table.layer == choice["layer"]) &
                                                   (table.positions == choice["positions"])))
write_json(snakemake.output.choice, choice)
