"""Resumable training: the whole state of a run, written atomically every few minutes.

The concepts of a job train in lockstep, sharing forward passes, so none of them is finished
before the others; what a killed job can keep is its state at the last checkpoint: the steering
module, every concept's optimizer, the shuffles, the divergence watch and the loss rows so far. A
rerun of the same run (same config, concepts and examples: the fingerprint) continues from there
and ends with the same bytes as a run that was never stopped; a checkpoint of another run is
ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from ..files import atomic_write

log = logging.getLogger(__name__)

# seconds between checkpoints: a kill loses at most this much training, and writing one (a few MB
# for a few concepts) costs well under a second
CHECKPOINT_EVERY_S = 120.0


def run_fingerprint(cfg, layer, names: list, encoded: list) -> str:
    """What makes two runs the same run: the config, the layer(s), the concepts and their examples."""
    h = hashlib.sha256()
    h.update(json.dumps([cfg.to_dict(), str(layer), [str(n) for n in names]], sort_keys=True, default=str).encode())
    for examples in encoded:
        for e in examples:
            h.update(repr(e).encode())
    return h.hexdigest()


class Checkpoint:
    """Saves and restores a training run at ``path`` (None: never)."""

    def __init__(self, path: str | Path | None, fingerprint: str, every_s: float = CHECKPOINT_EVERY_S):
        self.path = Path(path) if path is not None else None
        self.fingerprint, self.every_s = fingerprint, float(every_s)
        self.last = time.monotonic()

    def load(self) -> dict | None:
        """The saved state of this run, if there is one."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)  # our own file
        except Exception as err:  # a torn file from an older writer: start again, say so
            log.warning("%s: unreadable training checkpoint (%s); training from the start", self.path, err)
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning("%s: checkpoint of another run (config, concepts or data differ); ignored", self.path)
            return None
        log.info("resuming %s from step %d", self.path, state["step"])
        return state

    def due(self) -> bool:
        return self.path is not None and time.monotonic() - self.last >= self.every_s

    def save(self, state: dict) -> None:
        atomic_write(self.path, lambda tmp: torch.save({**state, "fingerprint": self.fingerprint}, tmp))
        self.last = time.monotonic()
