"""Vector files: safetensors tensors plus string metadata that says what they were trained for.

One file holds K concepts (K = 1 for a single vector). Tensors: `alpha` [K] and `v` [K, n] for
steering vectors, `R`/`W`/`b` for LoReFT. Metadata values are strings (a safetensors rule);
structured values are JSON. The header's keys are written in sorted order (safetensors itself writes
them in hash order), so two identical runs on one machine give identical files, byte for byte. Writes
go to a temporary file renamed into place.

Metadata names (format `prosv-vectors/2`): `intervention` is the kind of edit (`sv` or `loreft`),
`method` the workflow's name for the run (a config arm such as `prosv_lang`), `loss` the objective,
`positions` and `layer` where it acts, `model` / `hidden_size` / `num_layers` what it was trained on,
`provenance` (JSON) the device, dtype, library versions and CPU features that trained it
(:mod:`prosv.provenance`).
Files of format 1 (where `method` held the kind and `method_name` the arm) are read as well.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from . import __version__
from .files import atomic_write
from .interventions import LoReFT, SteeringVectors

FORMAT = "prosv-vectors/2"
READABLE_FORMATS = ("prosv-vectors/1", FORMAT)


class VectorFileError(ValueError):
    """A file that is not a readable prosv vector file; the message names the file and the problem."""


def config_hash(obj) -> str:
    """Stable short hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass
class VectorFile:
    module: torch.nn.Module
    metadata: dict
    path: Path | None = None

    @property
    def layer(self) -> int:
        return int(self.metadata["layer"])

    @property
    def positions(self) -> str:
        return self.metadata["positions"]

    @property
    def intervention(self) -> str:
        return self.metadata["intervention"]

    @property
    def method(self) -> str:
        return self.metadata.get("method") or self.intervention

    @property
    def concepts(self) -> list:
        return self.metadata.get("concepts", list(range(self.module.num_concepts)))

    def index_of(self, concept) -> int:
        names = [str(c) for c in self.concepts]
        if str(concept) not in names:
            raise KeyError(f"concept {concept!r} is not in {self.path or 'this vector file'} (it holds {names[:10]})")
        return names.index(str(concept))

    def hyperparameter(self, key: str, default=None):
        """One training hyper-parameter as recorded (e.g. `fixed_alpha`)."""
        return (self.metadata.get("hyperparameters") or {}).get(key, default)


def save_vectors(
    path: str | Path,
    module: torch.nn.Module,
    *,
    model: str,
    layer: int,
    positions: str,
    loss: str,
    hyperparameters: dict,
    method: str | None = None,
    concepts: list | None = None,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    model_revision: str | None = None,
    provenance: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write `module`'s tensors and what they were trained for; returns the path."""
    tensors = {k: t.detach().float().contiguous().cpu() for k, t in module.state_tensors().items()}
    meta = {
        "format": FORMAT,
        "intervention": module.kind,
        "method": method or module.kind,
        "model": model,
        "model_revision": model_revision or "",
        "layer": str(layer),
        "positions": positions,
        "loss": loss,
        "hyperparameters": json.dumps(hyperparameters, sort_keys=True, default=str),
        "config_hash": config_hash(
            {"model": model, "layer": layer, "positions": positions, "loss": loss, "hyperparameters": hyperparameters}
        ),
        "concepts": json.dumps(concepts if concepts is not None else list(range(module.num_concepts))),
        "prosv_version": __version__,
    }
    if hidden_size is not None:
        meta["hidden_size"] = str(int(hidden_size))
    if num_layers is not None:
        meta["num_layers"] = str(int(num_layers))
    if provenance is not None:
        meta["provenance"] = json.dumps(provenance, sort_keys=True)
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    blob = _canonical(save(tensors, metadata=meta))
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(blob))


def _canonical(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted: safetensors writes the metadata
    in hash order, which differs from run to run; the tensor data and its offsets are unchanged."""
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header with spaces to 8 bytes
    return len(header).to_bytes(8, "little") + header + blob[8 + n :]


def _upgrade(meta: dict) -> dict:
    """Format 1 called the kind `method` and the workflow's name `method_name`."""
    if meta.get("format") == "prosv-vectors/1":
        meta["intervention"] = meta.get("method")
        meta["method"] = meta.pop("method_name", None) or meta["intervention"]
    return meta


def load_vectors(path: str | Path) -> VectorFile:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vector file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open is not iterable)
    except (SafetensorError, OSError, ValueError) as err:
        raise VectorFileError(
            f"{path}: not a readable safetensors file ({err}); it may be truncated or corrupted"
        ) from None
    if meta.get("format") not in READABLE_FORMATS:
        raise VectorFileError(
            f"{path}: not a prosv vector file (metadata format={meta.get('format')!r}, "
            f"expected one of {list(READABLE_FORMATS)})"
        )
    meta = _upgrade(meta)
    needed = {"sv": ("alpha", "v"), "loreft": ("R", "W", "b")}.get(meta.get("intervention"))
    if needed is None or any(k not in tensors for k in needed):
        raise VectorFileError(
            f"{path}: intervention {meta.get('intervention')!r} with tensors {sorted(tensors)} "
            f"is not one prosv can load"
        )
    try:
        module = SteeringVectors.from_state(tensors) if meta["intervention"] == "sv" else LoReFT.from_state(tensors)
        for key in ("hyperparameters", "concepts"):
            meta[key] = json.loads(meta[key])
        if "provenance" in meta:  # files written before provenance was recorded have none
            meta["provenance"] = json.loads(meta["provenance"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise VectorFileError(f"{path}: inconsistent vector file ({err})") from None
    for p in module.parameters():
        p.requires_grad_(False)
    return VectorFile(module, meta, path)
