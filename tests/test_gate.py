"""The steering gate: vectors trained at the default budget steer concepts they have never seen in data/.

Three concepts written for this test (tests/data/gate: origami, sorting algorithms, units of
length; none of them in data/), 24 hand-written pairs each. For each, a factor-free PrOSV (p2+s2)
and an FSSV vector are trained with the default configuration's settings (config/config.yaml:
the embedded model's recommended rates and budget, its example cap, at the layer the rates were
tuned at), then each answers 10 new instructions (sampled at temperature 1.0 as the evaluation
does) and the offline judge rates the answers. The gate: at least 60% of the responses carry the
concept (concept rating >= 1) and at least 80% stay fluent (fluency >= 1), for each method.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from prosv import evaluation as E
from prosv.data import read_instructions
from prosv.generation import Steering, generate
from prosv.jobs import concept_examples, train_config
from prosv.judges import make_judge
from prosv.training import train

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GATE = Path(__file__).parent / "data" / "gate"
CONCEPT_SHARE, FLUENT_SHARE = 0.60, 0.80


@pytest.fixture(scope="module")
def gate_responses(embedded):
    model, tokenizer = embedded
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    concepts = pd.read_json(GATE / "concepts.jsonl", lines=True)
    pairs = pd.read_json(GATE / "pairs.jsonl", lines=True).assign(keep=True, split="train", neutral_response=None)
    ids = list(concepts.concept_id)
    datasets = concept_examples(pairs, ids, config["train"].get("max_examples"))
    prompts = E.steering_prompts(concepts, read_instructions("eval"), n=10)
    ev, layer = config["evaluate"], config["tune"]["layer"]
    frames = []
    for name, positions in (("PrOSV", "p2+s2"), ("FSSV", "all")):
        method = config["locate"]["method"] if positions != "all" else config["locate"]["fssv_method"]
        cfg = train_config(config, method, positions)
        result = train(model, tokenizer, layer, datasets, cfg, progress=False, concept_names=ids)
        steering = Steering(result.module, layer, positions, rows=[ids.index(c) for c in prompts.concept_id])
        outs = generate(
            model,
            tokenizer,
            list(prompts.user_turn),
            steering,
            max_new_tokens=ev["max_new_tokens"],
            temperature=ev["temperature"],
            seed=config["seed"],
            sample_ids=list(prompts.sample_id),
        )
        frames.append(prompts.assign(method=name, response=[o.text for o in outs]))
    judge = make_judge({"kind": "offline"})
    rated = judge.rate_dataframe(pd.concat(frames, ignore_index=True))
    judge.close()
    return rated


@pytest.mark.parametrize("method", ["PrOSV", "FSSV"])
def test_factor_free_vectors_steer_new_concepts(gate_responses, method):
    rated = gate_responses[gate_responses.method == method]
    concept = float((rated.concept_score >= 1).mean())
    fluent = float((rated.fluency_score >= 1).mean())
    per_concept = rated.groupby("concept").concept_score.apply(lambda s: f"{(s >= 1).mean():.0%}").to_dict()
    print(f"{method}: concept >= 1 in {concept:.0%}, fluent in {fluent:.0%} of {len(rated)}; per concept {per_concept}")
    assert concept >= CONCEPT_SHARE, per_concept
    assert fluent >= FLUENT_SHARE
