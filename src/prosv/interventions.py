"""Interventions on the residual stream and the hook that applies them.

Both modules hold K concepts at once so one batch can mix rows of different concepts: a row's
concept index picks its parameters (-1 leaves the row untouched). Parameters are fp32; the edit
is computed in fp32 and cast back to the model's dtype once.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from .models import check_layer, decoder_layers


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
    """Forward hook on one decoder block; the caller sets what the next forward call steers.

    `rows` picks each batch row's concept (-1: none); `mask` [batch, seq] selects the positions of
    the next call. A mask of None means the call passes through untouched: that is how PrOSV leaves
    every decoding step alone while FSSV sets an all-true mask for each new token.
    """

    def __init__(self, module: nn.Module):
        self.module = module
        self.rows: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self.factor: float = 1.0
        self.last_input: torch.Tensor | None = None  # block output before the edit, if recording
        self.record = False

    def __call__(self, block, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if self.record:
            self.last_input = hidden.detach()
        if self.mask is None or self.rows is None:
            return output
        if tuple(self.mask.shape) != tuple(hidden.shape[:2]):
            raise RuntimeError(
                f"intervention mask {tuple(self.mask.shape)} does not match the hidden states "
                f"{tuple(hidden.shape[:2])}: set the mask for every forward call"
            )
        edited = self.module.edit(hidden, self.rows.to(hidden.device), self.mask.to(hidden.device), self.factor)
        if isinstance(output, tuple):
            return (edited,) + tuple(output[1:])
        return edited


@contextmanager
def attached(model, layer: int, module: nn.Module):
    """Attach `module` to the output of decoder block `layer`; always removed on exit."""
    block = decoder_layers(model)[check_layer(model, layer)]
    hook = InterventionHook(module)
    handle = block.register_forward_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()


@contextmanager
def optional_hook(model, layer: int | None, module: nn.Module | None, factor: float = 1.0):
    """`attached` with a factor set, or a no-op yielding None when there is no module (unsteered runs)."""
    if module is None:
        yield None
        return
    with attached(model, layer, module) as hook:
        hook.factor = factor
        yield hook
