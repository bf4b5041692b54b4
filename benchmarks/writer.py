"""Training data that carries the concept: how much of what the writer keeps is about the concept, and
does keeping only what the judge calls on-concept make the vectors steer better?

The embedded data step writes each concept's training responses with the model itself (it answers a
training instruction with the concept's steering request appended) and keeps a response when it
names one of the concept's keywords and does not echo the request. Two writers are compared on the
development concepts of config/tuning.yaml, with the default's data settings otherwise
(config/config.yaml: instructions, response length, temperature, seed):

- `keywords`: one attempt per instruction and the keyword and echo filters alone (the writer's
  defaults);
- `judged`: the writer of config/config.yaml's `data.writer` (several attempts; a response is kept only
  if the offline judge rates its concept 2, the best of the attempts by concept rating, fluency and
  keyword density).

Both tables are rated by the offline judge (the `keywords` one afterwards). Reported per writer: the
share of written responses kept, pairs per concept (before the training cap), and the share of kept
responses (written and hand-written exemplars) the judge rates concept = 2, with Wilson intervals.
The `judged` writer keeps only responses rated 2, so its written share is 100% by construction; what it
costs is yield, which is why the attempts count. Then a PrOSV vector (p2+s2, the recommended settings,
the default's example cap) is trained per concept on each table, and both answer the same new
instructions with the same draws (the unsteered model too): the steering difference `judged` minus
`keywords` is paired over concepts (prosv.stats.paired_comparison: the wider of the percentile
bootstrap and the paired t interval).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml
from common import ROOT, Check, Result
from gate import steer_and_rate

KEPT_ON_CONCEPT = 0.80  # the bar: kept training responses the judge rates concept = 2
INSTRUCTIONS = 20  # per concept for the steering comparison (as the tuning sweep)


def _write(model, tokenizer, config: dict, concept_ids: list[int], writer: dict, quick: bool) -> tuple:
    from prosv.data.prepare import prepare_study_data

    data = {**config["data"], "writer": writer}
    if quick:
        data["instructions_per_concept"] = 3
    t = time.perf_counter()
    study = prepare_study_data(
        data, concept_ids, concept_ids, lambda: (model, tokenizer), seed=config["seed"], judge_config=config["judge"]
    )
    return study, time.perf_counter() - t


def _rate_kept(pairs: pd.DataFrame, judge_config: dict) -> pd.DataFrame:
    """Pairs with the judge's concept rating of every kept response (for a writer that did not rate)."""
    from prosv.judges import make_judge

    judge = make_judge(judge_config)
    kept = pairs[pairs.keep]
    rated = judge.rate_many(list(zip(kept.concept, kept.instruction, kept.response)))
    judge.close()
    out = pairs.copy()
    out.loc[kept.index, "concept_rating"] = [float(r.concept) for r in rated]
    return out


def run(model, tokenizer, quick: bool, config_path: Path = ROOT / "config" / "config.yaml") -> Result:
    from prosv.stats import paired_comparison, wilson_interval

    config = yaml.safe_load(config_path.read_text())
    concept_ids = yaml.safe_load((ROOT / "config" / "tuning.yaml").read_text())["data"]["dev_concepts"]
    if quick:
        concept_ids = concept_ids[:2]
    judged_writer = dict(config["data"].get("writer") or {})
    writers = {"keywords": {}, "judged": judged_writer}
    result = Result(
        "writer",
        "training data that carries the concept" + (" (quick: 3 instructions, 1 epoch)" if quick else ""),
        __doc__,
        headers=[
            "writer",
            "settings",
            "written kept",
            "pairs per concept (min-max)",
            "kept written rated 2 [95% CI]",
            "kept exemplars rated 2",
            "all kept rated 2 [95% CI]",
            "seconds",
        ],
    )
    pairs, concepts = {}, None
    for name, writer in writers.items():
        study, seconds = _write(model, tokenizer, config, concept_ids, writer, quick)
        table = (
            study.pairs if writer.get("min_concept_rating") is not None else _rate_kept(study.pairs, config["judge"])
        )
        pairs[name], concepts = table, study.concepts
        written, kept = table[table.source == "generated"], table[table.keep]
        per = kept.groupby("concept_id").size()

        def share(rows) -> tuple[float, str]:
            mask = rows.concept_rating == 2
            lo, hi = wilson_interval(int(mask.sum()), len(mask))
            return float(mask.mean()), f"{mask.mean():.0%} [{lo:.0%}, {hi:.0%}] (n = {len(mask)})"

        kept_written = kept[kept.source == "generated"]
        _, written_text = share(kept_written)
        exemplars = kept[kept.source == "exemplar"]
        overall, overall_text = share(kept)
        result.rows.append(
            [
                name,
                writer or "attempts 1, keyword filter",
                f"{int(written.keep.sum())} of {len(written)} ({written.keep.mean():.0%})",
                f"{per.mean():.1f} ({per.min()}-{per.max()})",
                written_text,
                f"{(exemplars.concept_rating == 2).mean():.0%} (n = {len(exemplars)})",
                overall_text,
                f"{seconds:.0f}",
            ]
        )
        if name == "judged":
            result.checks.append(
                Check(
                    "kept responses rated concept = 2",
                    overall,
                    f">= {KEPT_ON_CONCEPT:.0%}",
                    overall >= KEPT_ON_CONCEPT,
                    "{:.0%}",
                )
            )
    # does the cleaner table steer better? the same concepts, instructions and draws for both
    frames = []
    for k, name in enumerate(writers):
        rated, trained, layer = steer_and_rate(
            model,
            tokenizer,
            config,
            concepts,
            pairs[name],
            3 if quick else INSTRUCTIONS,
            quick,
            methods=((f"PrOSV ({name})", "p2+s2"),),
            unsteered=k == 0,
        )
        frames.append(rated)
        for t in trained:
            result.notes.append(
                f"{t['method']}: layer {layer}, {t['steps']} steps in {t['seconds']:.0f} s, "
                f"alpha end / start {t['alpha end / start']:.3f}"
            )
    rated = pd.concat(frames, ignore_index=True)
    per_concept = (
        rated.assign(on=rated.concept_score >= 1)
        .groupby(["method", "concept_id"])[["overall", "on", "fluency_score"]]
        .mean()
    )
    for name in rated.method.unique():
        m = per_concept.loc[name]
        result.notes.append(
            f"{name}: overall {m.overall.mean():.3f}, concept >= 1 in {m.on.mean():.0%}, mean fluency "
            f"{m.fluency_score.mean():.2f} ({len(rated[rated.method == name])} responses, {len(m)} concepts)"
        )
    a, b = per_concept.loc["PrOSV (judged)"], per_concept.loc["PrOSV (keywords)"]
    for label, col in (("overall score", "overall"), ("concept >= 1 share", "on")):
        c = paired_comparison(a[col], b[col])
        result.notes.append(
            f"judged minus keywords, {label}: {c.difference:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] "
            f"over {c.n} concepts"
        )
    return result
