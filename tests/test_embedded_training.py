"""The paper's central claim on the embedded model: joint alpha/v training works, alpha fixed at 1 does not.

Trains PrOSV (p2+s2, layer 10) on 36 pairs of one concept and measures the response loss on the
13 held-out pairs: joint training must lower it clearly below the unsteered model's; training the
direction alone with alpha frozen at 1 (same init and rate for v) must move it far less.
"""

from pathlib import Path

import pandas as pd
import pytest

from prosv.training import Example, TrainConfig, response_loss, train

pytestmark = pytest.mark.slow

PAIRS = Path(__file__).parent / "data" / "lighthouse_pairs.parquet"
LAYER = 10
COMMON = dict(
    positions="p2+s2", c_v=1.0, eta_v=0.02, epochs=4, batch_size=6, micro_batch_size=12, max_response_tokens=64
)


def test_joint_training_beats_unsteered_and_alpha_fixed(embedded):
    model, tokenizer = embedded
    rows = pd.read_parquet(PAIRS)
    pairs = [Example(r.instruction, r.response) for r in rows.itertuples()]
    train_set, held_out = pairs[:36], pairs[36:]
    unsteered = response_loss(model, tokenizer, held_out, max_response_tokens=64)
    joint = train(model, tokenizer, LAYER, [train_set], TrainConfig(c_alpha=4, eta_alpha=1.0, **COMMON), progress=False)
    fixed = train(model, tokenizer, LAYER, [train_set], TrainConfig(fixed_alpha=1.0, **COMMON), progress=False)
    joint_loss = response_loss(model, tokenizer, held_out, LAYER, joint.module, 0, "p2+s2", max_response_tokens=64)
    fixed_loss = response_loss(model, tokenizer, held_out, LAYER, fixed.module, 0, "p2+s2", max_response_tokens=64)
    print(
        f"held-out response loss: unsteered {unsteered:.4f}, joint {joint_loss:.4f} "
        f"(alpha {float(joint.module.alpha[0]):.1f}), alpha fixed at 1 {fixed_loss:.4f}"
    )
    assert joint_loss < unsteered - 0.05
    assert unsteered - fixed_loss < (unsteered - joint_loss) / 3
