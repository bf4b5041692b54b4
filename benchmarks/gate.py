"""The steering gate: do factor-free vectors trained at the default budget steer concepts never seen in data/?

Six concepts written for the gate (tests/data/gate, two per genre: origami, the circus; sorting
algorithms, stacks and queues; units of length, roman numerals; none of them in data/), 24
hand-written pairs each. For each placement, PrOSV (p2+s2) and FSSV
(all), one vector per concept is trained with the default configuration's settings
(config/config.yaml: the embedded model's recommended rates and budget and its example cap, at
`tune.layer`, the layer the rates were tuned at); then every concept answers 20 new
instructions, sampled as the evaluation samples them (its temperature, seed and length), and the
offline judge rates the answers. The unsteered model answers the same prompts with the same draws,
as the reference. The gate, per method: the concept is in at least 60% of the responses (concept
rating >= 1) while at least 80% stay fluent (fluency >= 1). Shares carry 95% Wilson intervals over
responses; the concept share also carries one over concepts (the mean of the per-concept shares, with
the paired interval of prosv.stats against the 60% target), which counts each concept once and so
is the wider, honest one when concepts differ.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd
import yaml
from common import ROOT, Check, Result

GATE = ROOT / "tests" / "data" / "gate"
CONCEPT_SHARE, FLUENT_SHARE = 0.60, 0.80
INSTRUCTIONS = 20  # per concept: 120 responses per method, intervals of about +-9 points
METHODS = (("PrOSV", "p2+s2"), ("FSSV", "all"))
EXEMPLARS = 4  # hand-written pairs a concept brings when its training data are written (data/ holds 4)


def steer_and_rate(
    model, tokenizer, config: dict, concepts, pairs, n_instructions: int, quick: bool, methods=METHODS, unsteered=True
):
    """Train one vector per concept for each method (its placement), then rate every method's (and,
    with ``unsteered``, the unsteered model's) answers to the same new instructions, sampled with the
    same draws; returns the rated responses and each method's training figures. ``pairs`` are
    training pairs with ``keep``."""
    from prosv import evaluation as E
    from prosv.data import read_instructions
    from prosv.generation import Steering, generate
    from prosv.jobs import concept_examples, train_config
    from prosv.judges import make_judge
    from prosv.models import hidden_size
    from prosv.training import train

    ids = list(concepts.concept_id)
    datasets = concept_examples(pairs.assign(split="train"), ids, config["train"].get("max_examples"))
    prompts = E.steering_prompts(concepts, read_instructions("eval"), n=n_instructions)
    ev, layer = config["evaluate"], int(config["tune"]["layer"])
    sampling = dict(max_new_tokens=ev["max_new_tokens"], temperature=ev["temperature"], seed=config["seed"])
    frames, trained = [], []
    for name, positions in (*methods, *((("unsteered", None),) if unsteered else ())):
        steering = None
        if positions is not None:
            method = config["locate"]["method"] if positions != "all" else config["locate"]["fssv_method"]
            cfg = train_config(config, method, positions)
            if quick:
                cfg = dataclasses.replace(cfg, epochs=1)
            t = time.perf_counter()
            result = train(model, tokenizer, layer, datasets, cfg, progress=False, concept_names=ids)
            final = result.losses.sort_values("step").groupby("concept").tail(1)
            trained.append(
                {
                    "method": name,
                    "seconds": time.perf_counter() - t,
                    "steps": int(result.losses.step.max()) + 1,
                    "alpha end / start": float(final.alpha.mean() / (cfg.c_alpha * hidden_size(model) ** 0.5)),
                    "settings": cfg.to_dict(),
                }
            )
            steering = Steering(result.module, layer, positions, rows=[ids.index(c) for c in prompts.concept_id])
        outs = generate(
            model, tokenizer, list(prompts.user_turn), steering, sample_ids=list(prompts.sample_id), **sampling
        )
        frames.append(prompts.assign(method=name, response=[o.text for o in outs]))
    judge = make_judge({"kind": "offline"})
    rated = judge.rate_dataframe(pd.concat(frames, ignore_index=True))
    judge.close()
    return rated, trained, layer


def gate_pairs(model, tokenizer, config: dict, concepts, data: str, quick: bool):
    """The gate's training pairs. ``hand-written``: all 24 of each concept. ``written``: what the
    default's data step writes for a new concept (prosv.data.prepare.write_embedded_pairs: the
    config's writer and judge, the training instructions of data/), with the first EXEMPLARS
    hand-written pairs as the concept's exemplars, as data/ holds 4 a concept."""
    hand = pd.read_json(GATE / "pairs.jsonl", lines=True)
    if data == "hand-written":
        return hand.assign(keep=True, neutral_response=None)
    from prosv.data import read_instructions
    from prosv.data.prepare import write_embedded_pairs

    exemplars = hand.groupby("concept_id").head(EXEMPLARS)[["concept_id", "instruction", "response"]]
    settings = {**config["data"], **({"instructions_per_concept": 3} if quick else {})}
    return write_embedded_pairs(
        settings, concepts, exemplars, read_instructions("train"), model, tokenizer, config["seed"], config["judge"]
    )


def run(
    model, tokenizer, quick: bool, config_path: Path = ROOT / "config" / "config.yaml", data: str = "hand-written"
) -> Result:
    from prosv.stats import paired_comparison, wilson_interval

    config = yaml.safe_load(config_path.read_text())
    concepts = pd.read_json(GATE / "concepts.jsonl", lines=True)
    pairs = gate_pairs(model, tokenizer, config, concepts, data, quick)
    n = 3 if quick else INSTRUCTIONS
    rated, trained, layer = steer_and_rate(model, tokenizer, config, concepts, pairs, n, quick)
    result = Result(
        "gate" if data == "hand-written" else "gate_written",
        f"factor-free vectors steer new concepts ({data} training pairs)" + (", quick: 1 epoch" if quick else ""),
        __doc__,
        headers=[
            "method",
            "concept >= 1 [95% CI]",
            "over concepts [95% CI] vs 60%",
            "fluent [95% CI]",
            "per concept (concept >= 1)",
            "n",
        ],
    )

    def share(mask) -> tuple[float, str]:
        lo, hi = wilson_interval(int(mask.sum()), len(mask))
        return float(mask.mean()), f"{mask.mean():.0%} [{lo:.0%}, {hi:.0%}]"

    for name in [m for m, _ in METHODS] + ["unsteered"]:
        r = rated[rated.method == name]
        concept, concept_text = share(r.concept_score >= 1)
        fluent, fluent_text = share(r.fluency_score >= 1)
        shares = r.groupby("concept").concept_score.apply(lambda s: float((s >= 1).mean()))
        c = paired_comparison(shares, CONCEPT_SHARE)
        side = "above 60%" if c.ci_low > 0 else "below 60%" if c.ci_high < 0 else "spans 60%"
        lo, hi = CONCEPT_SHARE + c.ci_low, CONCEPT_SHARE + c.ci_high
        over = f"{CONCEPT_SHARE + c.difference:.0%} [{lo:.0%}, {hi:.0%}], {side}"
        per = ", ".join(f"{k}: {v:.0%}" for k, v in shares.items())
        result.rows.append([name, concept_text, over, fluent_text, per, len(r)])
        if name != "unsteered":
            result.checks.append(
                Check(f"{name} concept >= 1", concept, f">= {CONCEPT_SHARE:.0%}", concept >= CONCEPT_SHARE, "{:.0%}")
            )
            result.checks.append(
                Check(f"{name} fluent", fluent, f">= {FLUENT_SHARE:.0%}", fluent >= FLUENT_SHARE, "{:.0%}")
            )
    kept = pairs[pairs.keep]
    sizes = kept.groupby("concept_id").size()
    rating = "" if "concept_rating" not in kept else f"; rated concept = 2: {(kept.concept_rating == 2).mean():.0%}"
    cap = config["train"].get("max_examples")
    result.notes.append(
        f"training pairs ({data}): {len(kept)} kept, {sizes.min()}-{sizes.max()} a concept (cap {cap}){rating}"
    )
    for t in trained:
        result.notes.append(
            f"{t['method']}: layer {layer}, {t['steps']} steps in {t['seconds']:.0f} s, alpha end / start "
            f"{t['alpha end / start']:.3f}; settings {t['settings']}"
        )
    return result
