"""The steering gate on training pairs the default's data step writes: gate.py with `data="written"`.

The gate's six concepts come with 24 hand-written pairs each; here each brings only its first 4, as
a concept of data/ does, and the default's writer (config/config.yaml `data.writer`: three attempts,
kept when the offline judge rates the concept 2) writes the rest from data/'s training instructions.
Everything else is the gate: the same methods, settings, instructions, draws and thresholds.
"""

from __future__ import annotations

from gate import run as gate_run


def run(model, tokenizer, quick: bool):
    return gate_run(model, tokenizer, quick, data="written")
