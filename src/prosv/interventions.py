"""Interventions on the residual stream and the hook that applies them.

Every module holds K concepts at once so one batch can mix rows of different concepts: a row's
concept index picks its parameters (-1 leaves the row untouched). Parameters are fp32; the edit
is computed in fp32 and cast back to the model's dtype once. A module acts at one layer, except
:class:`LayeredSteering`, which holds one steering vector per layer of a set and is attached to
all of them by the same call.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from .models import Layers, check_layer, decoder_layers, layer_tuple, layers_text

__all__ = [
    "Layers",
    "LayeredSteering",
    "LoReFT",
    "SteeringVectors",
    "attached",
    "layer_tuple",
    "layers_text",
    "optional_hook",
]


class SteeringVectors(nn.Module):
    """K steering vectors: h + factor * alpha_k * v_k at the selected positions.

    alpha_k and v_k are separate parameters per concept, so each concept can have its own optimizer
    state and learning-rate schedule while sharing forward passes with the others.
    """

    kind = "sv"

    def __init__(self, alphas: torch.Tensor, vectors: torch.Tensor):
        super().__init__()
        if vectors.dim() != 2 or alphas.shape != (vectors.shape[0],):
            raise ValueError(
                f"expected alphas [K] and vectors [K, n], got {tuple(alphas.shape)} and {tuple(vectors.shape)}"
            )
        self.alpha = nn.ParameterList([nn.Parameter(a.detach().float().clone()) for a in alphas])
        self.v = nn.ParameterList([nn.Parameter(x.detach().float().clone()) for x in vectors])

    @classmethod
    def initialise(
        cls, num_concepts: int, hidden: int, c_alpha: float, c_v: float, v_init: str = "uniform", seed: int = 42
    ) -> SteeringVectors:
        """alpha_0 = c_alpha * sqrt(n); v_0 ~ U(-c_v/sqrt(n), c_v/sqrt(n)) or N(0, c_v/n).

        Every concept starts from the same draw of `seed`, as a concept trained alone would, which
        is what makes a multi-concept job reproduce single-concept runs.
        """
        gen = torch.Generator().manual_seed(seed)
        if v_init == "uniform":
            bound = c_v / math.sqrt(hidden)
            v0 = (torch.rand(hidden, generator=gen) * 2 - 1) * bound
        elif v_init == "gaussian":
            v0 = torch.randn(hidden, generator=gen) * math.sqrt(c_v / hidden)
        else:
            raise ValueError(f"unknown v_init {v_init!r}; use 'uniform' or 'gaussian'")
        alpha0 = torch.full((num_concepts,), c_alpha * math.sqrt(hidden))
        return cls(alpha0, v0.expand(num_concepts, hidden))

    @classmethod
    def stack(cls, modules: list[SteeringVectors]) -> SteeringVectors:
        """One module holding every concept of `modules`, in order (so one batch can mix their rows)."""
        states = [m.state_tensors() for m in modules]
        return cls(torch.cat([st["alpha"] for st in states]), torch.cat([st["v"] for st in states]))

    @property
    def num_concepts(self) -> int:
        return len(self.v)

    @property
    def hidden(self) -> int:
        return self.v[0].shape[0]

    def concept_parameters(self, k: int) -> dict[str, list[nn.Parameter]]:
        return {"alpha": [self.alpha[k]], "v": [self.v[k]]}

    def direction_groups(self, k: int) -> list[list[nn.Parameter]]:
        """Concept k's directions, one list per clipping group (one vector here)."""
        return [[self.v[k]]]

    def trace(self, k: int) -> tuple[float, float]:
        """(alpha, ||v||) of concept k, as the loss table logs them."""
        return float(self.alpha[k].detach()), float(self.v[k].detach().norm())

    def edit(self, h: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
        alphas = torch.stack(list(self.alpha)).to(h.device)
        vectors = torch.stack(list(self.v)).to(h.device)
        safe = rows.clamp(min=0)
        shift = (factor * alphas[safe]).unsqueeze(-1) * vectors[safe]  # [B, n]
        keep = mask & (rows >= 0).unsqueeze(-1)
        h32 = h.float()
        return torch.where(keep.unsqueeze(-1), h32 + shift.unsqueeze(1), h32).to(h.dtype)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"alpha": torch.stack([a.detach() for a in self.alpha]), "v": torch.stack([x.detach() for x in self.v])}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor]) -> SteeringVectors:
        return cls(tensors["alpha"], tensors["v"])


class LayeredSteering(nn.Module):
    """K concepts' steering vectors at several layers, trained as one object.

    Layer l adds factor * alpha_{l,k} * v_{l,k} at the same positions; each layer's vector follows
    the single-layer rules (its own init, rates and clipping), and the concept's optimizer steps them
    together. Tensors stack on a leading layer axis: `alpha` [L, K], `v` [L, K, n].
    """

    kind = "sv"

    def __init__(self, layers, per_layer: list[SteeringVectors]):
        super().__init__()
        layers = layer_tuple(layers)
        if not layers or list(layers) != sorted(set(layers)):
            raise ValueError(f"layers must be distinct and increasing, got {list(layers)}")
        if len(per_layer) != len(layers):
            raise ValueError(f"{len(per_layer)} steering modules for {len(layers)} layers")
        if len({(m.num_concepts, m.hidden) for m in per_layer}) != 1:
            raise ValueError("every layer's module must hold the same concepts at the same width")
        self.layers = layers
        self.per_layer = nn.ModuleList(per_layer)

    @classmethod
    def initialise(cls, layers, num_concepts: int, hidden: int, **init) -> LayeredSteering:
        """Each layer starts as a single-layer vector would (:meth:`SteeringVectors.initialise`)."""
        layers = layer_tuple(layers)
        return cls(layers, [SteeringVectors.initialise(num_concepts, hidden, **init) for _ in layers])

    @classmethod
    def stack(cls, modules: list[LayeredSteering]) -> LayeredSteering:
        """Every concept of `modules` (all at the same layers), in order."""
        layers = {m.layers for m in modules}
        if len(layers) != 1:
            raise ValueError(f"cannot stack modules at different layers: {sorted(layers)}")
        per = [SteeringVectors.stack([m.per_layer[i] for m in modules]) for i in range(len(modules[0].layers))]
        return cls(modules[0].layers, per)

    def at(self, layer: int) -> SteeringVectors:
        return self.per_layer[self.layers.index(layer)]

    @property
    def num_concepts(self) -> int:
        return self.per_layer[0].num_concepts

    @property
    def hidden(self) -> int:
        return self.per_layer[0].hidden

    @property
    def alpha(self) -> list[nn.Parameter]:
        """Per concept, the mean factor over layers (what a one-number summary of the strength shows)."""
        return [torch.stack([m.alpha[k] for m in self.per_layer]).mean() for k in range(self.num_concepts)]

    def concept_parameters(self, k: int) -> dict[str, list[nn.Parameter]]:
        return {"alpha": [m.alpha[k] for m in self.per_layer], "v": [m.v[k] for m in self.per_layer]}

    def direction_groups(self, k: int) -> list[list[nn.Parameter]]:
        return [[m.v[k]] for m in self.per_layer]

    def trace(self, k: int) -> tuple[float, float]:
        """Mean alpha and mean ||v|| over the layers."""
        pairs = [m.trace(k) for m in self.per_layer]
        return sum(a for a, _ in pairs) / len(pairs), sum(n for _, n in pairs) / len(pairs)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        states = [m.state_tensors() for m in self.per_layer]
        return {key: torch.stack([st[key] for st in states]) for key in ("alpha", "v")}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], layers) -> LayeredSteering:
        layers = layer_tuple(layers)
        if tensors["alpha"].dim() != 2 or tensors["alpha"].shape[0] != len(layers):
            raise ValueError(f"alpha {tuple(tensors['alpha'].shape)} does not hold {len(layers)} layers")
        return cls(layers, [SteeringVectors(a, v) for a, v in zip(tensors["alpha"], tensors["v"])])


class LoReFT(nn.Module):
    """K rank-r LoReFT edits: h + R^T (W h + b - R h), R with orthonormal rows.

    R is kept orthonormal by torch's orthogonal parametrization, so it stays on the manifold
    through any optimizer step. W has nn.Linear's default (Kaiming-uniform) init and b starts at 0.
    """

    kind = "loreft"

    def __init__(self, num_concepts: int, hidden: int, rank: int = 1, seed: int = 42):
        super().__init__()
        if not 1 <= rank <= hidden:
            raise ValueError(f"LoReFT rank must be in 1..{hidden}, got {rank}")
        self.rank = rank
        self.R = nn.ModuleList()
        self.W = nn.ModuleList()
        for _ in range(num_concepts):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # same init for every concept, as for steering vectors
                proj = nn.Linear(hidden, rank, bias=False)
                nn.utils.parametrizations.orthogonal(proj)
                learned = nn.Linear(hidden, rank)
            nn.init.zeros_(learned.bias)
            self.R.append(proj)
            self.W.append(learned)

    @property
    def num_concepts(self) -> int:
        return len(self.R)

    def concept_parameters(self, k: int) -> dict[str, list[nn.Parameter]]:
        return {"R": list(self.R[k].parameters()), "W": list(self.W[k].parameters())}

    def directions(self) -> torch.Tensor:
        """[K, r, n]: the rows of R (the output directions of each edit)."""
        return torch.stack([m.weight.detach() for m in self.R])

    def edit(self, h: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
        h32 = h.float()
        out = h32
        for k in rows.unique().tolist():
            if k < 0:
                continue
            sel = (rows == k).nonzero(as_tuple=True)[0]
            hk = h32[sel]
            R = self.R[k].weight  # [r, n], orthonormal rows
            delta = (self.W[k](hk) - hk @ R.T) @ R  # [b, T, n]
            keep = mask[sel].unsqueeze(-1)
            out = out.index_put((sel,), torch.where(keep, hk + factor * delta, hk))
        return out.to(h.dtype)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "R": torch.stack([m.weight.detach() for m in self.R]),
            "W": torch.stack([m.weight.detach() for m in self.W]),
            "b": torch.stack([m.bias.detach() for m in self.W]),
        }

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor]) -> LoReFT:
        K, r, n = tensors["R"].shape
        module = cls(K, n, r)
        with torch.no_grad():
            for k in range(K):
                module.R[k].weight = tensors["R"][k].float()  # orthogonal parametrization accepts a matrix
                module.W[k].weight.copy_(tensors["W"][k])
                module.W[k].bias.copy_(tensors["b"][k])
        return module


class InterventionHook:
    """Forward hook on decoder blocks; the caller sets what the next forward call steers.

    `rows` picks each batch row's concept (-1: none); `mask` [batch, seq] selects the positions of
    the next call. A mask of None means the call passes through untouched: that is how PrOSV leaves
    every decoding step alone while FSSV sets an all-true mask for each new token.
    """

    def __init__(self, module: nn.Module, targets: dict | None = None):
        self.module = module
        # block -> the module that edits its output (a LayeredSteering's layer); None: `module` everywhere
        self.targets = targets or {}
        self.rows: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self.factor: float = 1.0

    def __call__(self, block, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if self.mask is None or self.rows is None:
            return output
        if tuple(self.mask.shape) != tuple(hidden.shape[:2]):
            raise RuntimeError(
                f"intervention mask {tuple(self.mask.shape)} does not match the hidden states "
                f"{tuple(hidden.shape[:2])}: set the mask for every forward call"
            )
        module = self.targets.get(block, self.module)
        edited = module.edit(hidden, self.rows.to(hidden.device), self.mask.to(hidden.device), self.factor)
        if isinstance(output, tuple):
            return (edited,) + tuple(output[1:])
        return edited


@contextmanager
def attached(model, layer: Layers, module: nn.Module):
    """Attach `module` to the output of decoder block `layer` (every layer of a LayeredSteering, one
    hook shared by them, so the caller sets rows and masks once); always removed on exit."""
    layers = layer_tuple(layer)
    layered = isinstance(module, LayeredSteering)
    if layered and layers != module.layers:
        raise ValueError(f"the module acts at layers {layers_text(module.layers)}, not at {layers_text(layers)}")
    if not layered and len(layers) != 1:
        raise ValueError(f"a {type(module).__name__} acts at one layer, not at {layers_text(layers)}")
    blocks = decoder_layers(model)
    targets = {blocks[check_layer(model, x)]: module.at(x) if layered else module for x in layers}
    hook = InterventionHook(module, targets if layered else None)
    handles = [block.register_forward_hook(hook) for block in targets]
    try:
        yield hook
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def optional_hook(model, layer: Layers | None, module: nn.Module | None, factor: float = 1.0):
    """`attached` with a factor set, or a no-op yielding None when there is no module (unsteered runs)."""
    if module is None:
        yield None
        return
    with attached(model, layer, module) as hook:
        hook.factor = factor
        yield hook
