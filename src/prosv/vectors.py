"""Vector files: safetensors tensors plus string metadata that says what they were trained for.

One file holds K concepts (K = 1 for a single vector). Tensors: `alpha` [K] and `v` [K, n] for
steering vectors, `R`/`W`/`b` for LoReFT. Metadata values are strings (a safetensors rule);
structured values are JSON. The header is written with sorted keys, so two identical runs give
identical files, byte for byte. Writes go to a temporary file renamed into place.

Metadata names (format `prosv-vectors/2`): `intervention` is the kind of edit (`sv` or `loreft`),
`method` the workflow's name for the run (a config arm such as `prosv_lang`), `loss` the objective,
`positions` and `layer` where it acts (`"20"`, or a JSON list such as `"[0, 1, 2]"` for a vector
at several layers, whose tensors carry a leading layer axis: `alpha` [L, K], `v` [L, K, n]),
`model` / `hidden_size` / `num_layers` what it was trained on,
`provenance` (JSON) the device, dtype, library versions and CPU features that trained it
(:mod:`prosv.provenance`).
Files of format 1 (where `method` held the kind and `method_name` the arm) are read as well.

A vector meets a model through :func:`check_compatible`: the width must match, its layer must exist,
and the model's name and depth must be the recorded ones unless the caller allows another model.
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
from .interventions import LayeredSteering, Layers, LoReFT, SteeringVectors, layer_tuple, layers_text
from .positions import as_spec

FORMAT = "prosv-vectors/2"
READABLE_FORMATS = ("prosv-vectors/1", FORMAT)


class VectorFileError(ValueError):
    """A file that is not a readable prosv vector file; the message names the file and the problem."""


class VectorModelMismatch(ValueError):
    """A vector file applied to a model it was not trained for; the message says both."""


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
    def layer(self) -> Layers:
        """The layer it acts at; a tuple of layers for a vector at several."""
        return parse_layer(self.metadata["layer"])

    @property
    def layers(self) -> tuple[int, ...]:
        return layer_tuple(self.layer)

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
    def hidden_size(self) -> int:
        """The width the tensors act on (the model's hidden size)."""
        tensors = self.module.state_tensors()
        return int((tensors["v"] if "v" in tensors else tensors["R"]).shape[-1])

    def trained_for(self) -> str:
        """What the file was trained on, in words: model, width, depth and layer."""
        depth = self.metadata.get("num_layers")
        return (
            f"{self.metadata.get('model') or 'an unrecorded model'} (width {self.hidden_size}"
            + (f", {depth} layers" if depth else "")
            + (f"), layer {self.layer}" if isinstance(self.layer, int) else f"), layers {layers_text(self.layer)}")
        )

    def check_compatible(self, model, *, allow_other_model: bool = False) -> VectorFile:
        return check_compatible(self, model, allow_other_model=allow_other_model)

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
    layer: Layers,
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
        "layer": str(layer) if isinstance(layer, int) else json.dumps(list(layer_tuple(layer))),
        "positions": positions,
        "loss": loss,
        "hyperparameters": json.dumps(hyperparameters, sort_keys=True, default=str),
        "config_hash": config_hash(
            {
                "model": model,
                "layer": layer if isinstance(layer, int) else list(layer),
                "positions": positions,
                "loss": loss,
                "hyperparameters": hyperparameters,
            }
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
    return _write(path, tensors, meta)


def _write(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(_canonical(save(tensors, metadata=meta))))


# metadata that lists one entry per concept; every other key must agree between merged files
_PER_CONCEPT_KEYS = ("concepts", "concept_names")


def merge_vector_files(paths: list[str | Path], out: str | Path) -> Path:
    """One vector file holding the concepts of ``paths`` in order (the shards of one training run,
    config key ``concepts_per_job``). The files must agree on everything but their concepts; one
    file is copied as it is, so an unsharded run's file and its merge are the same bytes."""
    raws = []
    for path in map(Path, paths):
        meta, tensors = _read(path)
        _vector_file(path, dict(meta), tensors)  # the same checks a reader makes, naming the file at fault
        raws.append((path, meta, tensors))
    if not raws:
        raise ValueError(f"{out}: no vector files to merge")
    first_path, first_meta, _ = raws[0]
    shared = {k: v for k, v in first_meta.items() if k not in _PER_CONCEPT_KEYS}
    for path, meta, _ in raws[1:]:
        other = {k: v for k, v in meta.items() if k not in _PER_CONCEPT_KEYS}
        if other != shared:
            keys = sorted(k for k in set(shared) | set(other) if shared.get(k) != other.get(k))
            raise VectorFileError(f"{path}: cannot be merged with {first_path}: they differ in {keys}")
    # the concept axis: first for one layer and for LoReFT, second for a vector at several layers
    axis = 1 if first_meta["intervention"] == "sv" and not first_meta["layer"].strip().isdigit() else 0
    tensors = {k: torch.cat([t[k] for _, _, t in raws], dim=axis).contiguous() for k in raws[0][2]}
    meta = dict(shared)
    for key in _PER_CONCEPT_KEYS:
        if key in first_meta:
            merged = [c for _, m, _ in raws for c in json.loads(m[key])]
            meta[key] = json.dumps(merged) if key == "concepts" else json.dumps(merged, sort_keys=True, default=str)
    names = json.loads(meta["concepts"])
    if len(set(map(str, names))) != len(names):
        raise VectorFileError(f"{out}: the files to merge hold a concept twice ({names})")
    return _write(out, tensors, meta)


def _canonical(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted.

    safetensors keeps metadata in a hash map whose order changes from run to run, so identical
    tensors and metadata gave different bytes. A file is an 8-byte little-endian header length, the
    JSON header (padded with spaces to a multiple of 8) and the tensor data; offsets in the header
    count from the data's start, so re-serialising the header leaves them valid.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + blob[8 + n :]


def parse_layer(text) -> Layers:
    """A file's `layer` metadata: "20" is one layer, "[0, 1]" several; anything else is ValueError."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    try:
        layers = json.loads(text)
    except ValueError:
        layers = None
    if not isinstance(layers, list) or not layers or not all(isinstance(x, int) and x >= 0 for x in layers):
        raise ValueError(f"layer {text!r} is neither a layer index nor a list of them")
    return tuple(layers)


def _module_from_state(meta: dict, tensors: dict) -> torch.nn.Module:
    if meta["intervention"] == "loreft":
        return LoReFT.from_state(tensors)
    layer = parse_layer(meta.get("layer", ""))
    if isinstance(layer, int):
        return SteeringVectors.from_state(tensors)
    return LayeredSteering.from_state(tensors, layer)


def _upgrade(meta: dict) -> dict:
    """Format 1 called the kind `method` and the workflow's name `method_name`."""
    if meta.get("format") == "prosv-vectors/1":
        meta["intervention"] = meta.get("method")
        meta["method"] = meta.pop("method_name", None) or meta["intervention"]
    return meta


def load_vectors(path: str | Path, model=None, *, allow_other_model: bool = False) -> VectorFile:
    """Read a vector file; with `model`, also check that it can steer that model (:func:`check_compatible`).
    A file that is missing, not safetensors, not prosv's or inconsistent raises an error naming it."""
    path = Path(path)
    meta, tensors = _read(path)
    vec = _vector_file(path, dict(meta), tensors)
    return vec if model is None else check_compatible(vec, model, allow_other_model=allow_other_model)


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """A safetensors file's raw metadata and tensors, or an error naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vector file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {}), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise VectorFileError(
            f"{path}: not a readable safetensors file ({err}); it may be truncated or corrupted"
        ) from None


def _vector_file(path: Path, meta: dict, tensors: dict) -> VectorFile:
    """The checked vector file of what :func:`_read` returned (``meta`` is parsed in place)."""
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
        module = _module_from_state(meta, tensors)
        for key in ("hyperparameters", "concepts"):
            meta[key] = json.loads(meta[key])
        if "provenance" in meta:  # files written before provenance was recorded have none
            meta["provenance"] = json.loads(meta["provenance"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise VectorFileError(f"{path}: inconsistent vector file ({err})") from None
    for p in module.parameters():
        p.requires_grad_(False)
    vec = VectorFile(module, meta, path)
    _check_consistent(vec)
    return vec


def _check_consistent(vec: VectorFile) -> None:
    """Metadata that agrees with the tensors, and tensors that are finite."""
    meta, problems = vec.metadata, []
    try:
        as_spec(meta.get("positions"))
    except ValueError as err:
        problems.append(str(err))
    if meta.get("hidden_size") and str(meta["hidden_size"]) != str(vec.hidden_size):
        problems.append(f"metadata says width {meta['hidden_size']}, the tensors have {vec.hidden_size}")
    if len(vec.concepts) != vec.module.num_concepts:
        problems.append(f"{len(vec.concepts)} concept names for {vec.module.num_concepts} concepts")
    bad = [k for k, t in vec.module.state_tensors().items() if not bool(torch.isfinite(t).all())]
    if bad:
        problems.append(f"tensor(s) {bad} hold non-finite values (a training run that diverged?)")
    if problems:
        raise VectorFileError(f"{vec.path}: inconsistent vector file: {'; '.join(problems)}")


def model_name(model) -> str | None:
    """The name a model is recorded under in vector files: its registry source id (hub id or folder),
    else the path transformers loaded it from; None for a model built in memory."""
    ref = getattr(model, "prosv_ref", None)
    if ref is not None:
        return ref.source_id
    return getattr(model.config, "_name_or_path", None) or None


def _same_model(recorded: str, loaded: str) -> bool:
    if recorded == loaded:
        return True
    a, b = Path(recorded).expanduser(), Path(loaded).expanduser()
    return a.is_dir() and b.is_dir() and a.resolve() == b.resolve()


def check_compatible(vec: VectorFile, model, *, allow_other_model: bool = False) -> VectorFile:
    """`vec` itself when it can steer `model`, else :class:`VectorModelMismatch` saying what the file
    was trained for and what is loaded.

    The width must match and the vector's layer must exist in the model, always. The model's name
    (hub id or folder) and depth must also be the recorded ones, unless `allow_other_model` (for a
    model of the same width the user knows to be compatible, e.g. a fine-tune of the same base).
    Fields a file does not record (older files, models built in memory) are not compared.
    """
    from .models import hidden_size, num_layers

    width, depth, name = hidden_size(model), num_layers(model), model_name(model)
    loaded = f"{name or 'an unnamed model'} (width {width}, {depth} layers)"
    head = f"{vec.path or 'vector file'}: trained for {vec.trained_for()}; the loaded model is {loaded}"
    if vec.hidden_size != width:
        raise VectorModelMismatch(f"{head}: the widths differ, so it cannot be applied to this model")
    if max(vec.layers) >= depth:
        raise VectorModelMismatch(f"{head}: it has no layer {max(vec.layers)}, so it cannot be applied to this model")
    recorded, recorded_depth = vec.metadata.get("model"), vec.metadata.get("num_layers")
    other = (recorded and name and not _same_model(recorded, name)) or (recorded_depth and int(recorded_depth) != depth)
    if other and not allow_other_model:
        raise VectorModelMismatch(
            f"{head}: another model; if it is meant to be used on this one, allow it explicitly "
            f"(prosv generate --allow-other-model; allow_other_model=True in Python)"
        )
    return vec
