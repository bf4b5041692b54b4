"""What the offline judge's dtype costs and changes: seconds per rated response in bf16 and in fp32, and
how often the two give the same rating.

The judge was calibrated with its models (the sentence embedder and Gemma-3-270M, whose 262k-word head
dominates) computing in bf16. Where the model under test runs in fp32 (no native bf16, or
PROSV_CPU_DTYPE=float32) the judge computes in fp32 from the same bf16 weights
(`prosv.judges.offline.judge.run_dtype`), because emulated bf16 costs several times fp32 there. Both
judges rate every response of data/judge_calibration (hand-written, every rating on every axis
present), without a cache, interleaved over rounds; the ratio is the median of each round's bf16 / fp32
time. Agreement is the share of responses whose rating is the same under both, per axis, beside each
judge's exact agreement with the hand labels. Run it at ATEN_CPU_CAPABILITY=avx2 to measure an
AVX2-only machine's kernels on a newer CPU. The target: the fp32 judge gives the bf16 judge's rating
on at least 95% of responses on every axis, so a run in fp32 is judged as a bf16 run would be.
"""

from __future__ import annotations

from common import Check, Result, interleaved, median

AGREEMENT_TARGET = 0.95


def run(model=None, tokenizer=None, quick: bool = False) -> Result:
    """`model` and `tokenizer` are unused: the signature is the one benchmarks/run.py calls."""
    import numpy as np

    from prosv.evaluation import RATING_COLUMNS
    from prosv.judges.base import AXES
    from prosv.judges.offline import OfflineJudge
    from prosv.judges.offline.calibration import agreement, default_calibration_data, load_calibration
    from prosv.provenance import cpu_has_native_bf16, kernels

    df = load_calibration(default_calibration_data())
    rounds = 1 if quick else 3
    judges = {dt: OfflineJudge(cache=False, dtype=dt) for dt in ("bfloat16", "float32")}
    ratings = {}

    def rate(dt):
        def go():
            ratings[dt] = judges[dt].rate_dataframe(df)

        return go

    for dt in judges:
        judges[dt]._models()  # loading is not rating
    times = interleaved({dt: rate(dt) for dt in judges}, rounds)
    ratio = median([b / f for b, f in zip(times["bfloat16"], times["float32"])])
    res = Result("judge_dtype", "offline judge, bf16 against fp32: seconds and agreement", __doc__)
    res.headers = ["axis", "same rating, bf16 vs fp32", "bf16 vs labels", "fp32 vs labels", "n"]
    worst = 1.0
    for axis, col in zip(AXES, RATING_COLUMNS):
        b, f = ratings["bfloat16"][col].to_numpy(), ratings["float32"][col].to_numpy()
        same = float(np.mean(b == f))
        worst = min(worst, same)
        gold = df[f"{axis}_rating"].to_numpy()
        res.rows.append(
            [
                axis,
                f"{same:.1%}",
                f"{agreement(b, gold)['accuracy']:.1%}",
                f"{agreement(f, gold)['accuracy']:.1%}",
                len(df),
            ]
        )
    for dt in judges:
        res.rows.append([f"seconds per response, {dt}", median(times[dt]) / len(df), "", "", len(df)])
    res.checks.append(Check("bf16 / fp32 seconds per response", ratio, "", None))
    res.checks.append(
        Check(
            "fp32 gives bf16's rating, worst axis",
            worst,
            f">= {AGREEMENT_TARGET:.0%}",
            worst >= AGREEMENT_TARGET,
            "{:.1%}",
        )
    )
    res.notes.append(
        f"torch kernels {kernels()}; bf16 is "
        + ("native here" if cpu_has_native_bf16() else "emulated here (what an AVX2-only machine pays)")
    )
    return res
