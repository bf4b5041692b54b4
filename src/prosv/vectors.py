"""Vector files: safetensors tensors plus string metadata (model, layer, positions, method, ...).

One file holds K concepts (K = 1 for a single vector). Tensors: `alpha` [K] and `v` [K, n] for
steering vectors, `R`/`W`/`b` for LoReFT. Metadata values are strings (a safetensors rule);
structured values are JSON. Writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from . import __version__
from .interventions import LoReFT, SteeringVectors

FORMAT = "prosv-vectors/1"


def config_hash(obj) -> str:
    """Stable short hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass
class VectorFile:
    module: torch.nn.Module
    metadata: dict

    @property
    def layer(self) -> int:
        return int(self.metadata["layer"])

    @property
    def positions(self) -> str:
        return self.metadata["positions"]

    @property
    def concepts(self) -> list:
        return self.metadata.get("concepts", list(range(self.module.num_concepts)))

    def index_of(self, concept) -> int:
        names = [str(c) for c in self.concepts]
        if str(concept) not in names:
            raise KeyError(f"concept {concept!r} is not in this vector file (it holds {names[:10]}...)")
        return names.index(str(concept))


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename into `path`: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_vectors(path: str | Path, module: torch.nn.Module, *, model: str, model_revision: str | None, layer: int,
                 positions: str, loss: str, hyperparameters: dict, concepts: list | None = None,
                 extra: dict | None = None) -> Path:
    tensors = {k: t.detach().float().contiguous().cpu() for k, t in module.state_tensors().items()}
    meta = {
        "format": FORMAT,
        "method": module.kind,
        "model": model,
        "model_revision": model_revision or "",
        "layer": str(layer),
        "positions": positions,
        "loss": loss,
        "hyperparameters": json.dumps(hyperparameters, sort_keys=True, default=str),
        "config_hash": config_hash({"model": model, "layer": layer, "positions": positions, "loss": loss,
                                    "hyperparameters": hyperparameters}),
        "concepts": json.dumps(concepts if concepts is not None else list(range(module.num_concepts))),
        "prosv_version": __version__,
    }
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, default=str)
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def load_vectors(path: str | Path) -> VectorFile:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"vector file not found: {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a prosv vector file (format={meta.get('format')!r})")
    method = meta["method"]
    module = SteeringVectors.from_state(tensors) if method == "sv" else LoReFT.from_state(tensors)
    for p in module.parameters():
        p.requires_grad_(False)
    for key in ("hyperparameters", "concepts"):
        meta[key] = json.loads(meta[key])
    return VectorFile(module, meta)
