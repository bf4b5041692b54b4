"""The vectors a server may apply: the steering-vector files of one folder, checked against the model once.

A request names a vector by the file's stem (`owls` for `owls.safetensors`); a file that holds
several concepts (the workflow writes one file per split) is named `stem@concept`. Files that
cannot serve this model (another model or width, a layer it does not have, a LoReFT file, an
unreadable file) are kept aside with the reason, so a request that names one is told why. All
vectors at one layer are stacked into one module, so one hook per layer serves a batch that mixes
them (`prosv.interventions.SteeringVectors.stack`); vectors at a set of layers (LayeredSteering
files) are stacked with the others at the same set, and their hook acts at each of those layers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..interventions import Layers, layers_text
from ..models import hidden_size, num_layers
from ..positions import PositionSpec, as_spec
from ..vectors import VectorFile, VectorFileError, load_vectors

log = logging.getLogger(__name__)

CONCEPT_SEP = "@"


class VectorLookupError(LookupError):
    """A vector name a request may not use; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_vector"):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ServedVector:
    name: str
    path: Path
    concept: str
    layer: Layers  # a tuple for a vector at several layers
    spec: PositionSpec
    row: int  # this concept's row in the stacked module of its layer
    alpha: float  # the learned factor (mean over layers for several); a request's factor multiplies it
    method: str
    loss: str

    def describe(self) -> dict:
        """What /v1/models shows about this vector."""
        return {
            "vector": self.name,
            "file": self.path.name,
            "concept": self.concept,
            "layer": self.layer,
            "positions": self.spec.text,
            "prompt_only": self.spec.prompt_only,
            "method": self.method,
            "loss": self.loss,
            "alpha": self.alpha,
        }


def check_name(name: str) -> None:
    """Vectors load only from the server's folder: a name that could point elsewhere is refused."""
    if not isinstance(name, str) or not name.strip():
        raise VectorLookupError(f"vector name {name!r} is empty")
    if "/" in name or "\\" in name or ".." in name or "\0" in name:
        raise VectorLookupError(
            f"vector name {name!r} is refused: names are file stems in the server's vector folder, "
            "without path separators or '..'"
        )


def _model_ids(model, model_name: str) -> set[str]:
    """The names a vector file may record for the served model (registry name, hub id, folder)."""
    ref = getattr(model, "prosv_ref", None)
    ids = {model_name}
    if ref is not None:
        ids |= {ref.name, ref.source_id, ref.location}
    for value in list(ids):
        path = Path(value).expanduser()
        if path.is_dir():
            ids.add(str(path.resolve()))
    return ids


def _mismatch(vec: VectorFile, model, accepted: set[str]) -> str | None:
    """Why `vec` cannot steer `model`, or None."""
    meta = vec.metadata
    if vec.intervention != "sv":
        return f"is a {vec.intervention} file; prosv serve applies steering vectors (intervention sv) only"
    recorded = meta.get("model", "")
    resolved = str(Path(recorded).expanduser().resolve()) if Path(recorded).expanduser().is_dir() else recorded
    if recorded and recorded not in accepted and resolved not in accepted:
        return f"was trained for model {recorded!r}, not the served model ({sorted(accepted)[0]!r})"
    width, depth = hidden_size(model), num_layers(model)
    if vec.module.hidden != width or int(meta.get("hidden_size") or width) != width:
        return f"has width {vec.module.hidden}, the served model {width}"
    if int(meta.get("num_layers") or depth) != depth or not 0 <= max(vec.layers) < depth:
        where = layers_text(vec.layer)
        return f"acts at layer {where} of {meta.get('num_layers', '?')}; the served model has {depth} layers"
    if not all(bool(torch.isfinite(t).all()) for t in vec.module.state_tensors().values()):
        return "holds non-finite values (NaN or inf)"
    return None


class VectorRegistry:
    """Every servable vector of `folder`, and per layer the stacked module that applies them."""

    def __init__(self, folder: str | Path, model, model_name: str):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"--vectors {folder}: not a folder")
        accepted = _model_ids(model, model_name)
        self.vectors: dict[str, ServedVector] = {}
        self.refused: dict[str, str] = {}  # file stem -> why it is not served
        by_layer: dict[Layers, list[VectorFile]] = {}
        for path in sorted(self.folder.glob("*.safetensors")):
            try:
                vec = load_vectors(path)
            except (VectorFileError, OSError) as err:
                self.refused[path.stem] = f"cannot be read ({err})"
                continue
            why = _mismatch(vec, model, accepted)
            if why:
                self.refused[path.stem] = why
            else:
                by_layer.setdefault(vec.layer, []).append(vec)
        for stem, why in self.refused.items():
            log.warning("not serving %s: %s", stem, why)
        device = next(model.parameters()).device
        self.modules: dict[Layers, torch.nn.Module] = {}
        for layer, files in sorted(by_layer.items(), key=lambda item: str(item[0])):
            modules = [f.module for f in files]
            self.modules[layer] = type(modules[0]).stack(modules).to(device)
            self._add_rows(files, layer)

    def _add_rows(self, files: list[VectorFile], layer: Layers) -> None:
        row = 0
        for vec in files:
            concepts = [str(c) for c in vec.concepts]
            alphas = vec.module.state_tensors()["alpha"]
            alphas = alphas.mean(0) if alphas.dim() == 2 else alphas
            for k, concept in enumerate(concepts):
                name = vec.path.stem if len(concepts) == 1 else f"{vec.path.stem}{CONCEPT_SEP}{concept}"
                self.vectors[name] = ServedVector(
                    name, vec.path, concept, layer, as_spec(vec.positions), row, float(alphas[k]), vec.method,
                    vec.metadata.get("loss", ""),
                )  # fmt: skip
                row += 1

    def resolve(self, name: str) -> ServedVector:
        """The vector a request names; a clear 4xx error otherwise."""
        check_name(name)
        if name in self.vectors:
            return self.vectors[name]
        stem = name.split(CONCEPT_SEP, 1)[0]
        if stem in self.refused:
            raise VectorLookupError(f"vector {name!r} ({stem}.safetensors) {self.refused[stem]}")
        choices = sorted(v for v in self.vectors if v.split(CONCEPT_SEP, 1)[0] == stem)
        if choices:
            raise VectorLookupError(
                f"vector {name!r}: {stem}.safetensors holds several concepts; name one of {choices}"
            )
        raise VectorLookupError(
            f"unknown vector {name!r}: {self.folder} has {sorted(self.vectors)[:20] or 'no servable vector'}",
            status=404,
            code="vector_not_found",
        )
