"""The scaling study: factor init x factor learning rate (Adam, raw rates), alpha fixed at 1
(direction only), SGD instead of Adam, and raw vs width-scaled transfer of reference rates; every
cell is trained on the same development data from one prefix cache, then all cells generate in one
batch stream (each cell is one "concept" row of a stacked module) for the judge."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd
from tqdm.auto import tqdm

from ..interventions import SteeringVectors
from ..models import hidden_size
from ..training import Example, PrefixCache, TrainConfig, train


@dataclass(frozen=True)
class ScalingCell:
    """One training setting of the scaling study; `kind` says which comparison it belongs to."""

    name: str
    kind: str  # "base" (the base method), "grid" (Adam, raw), "fixed" (alpha frozen), "sgd", "transfer"
    c_alpha: float
    eta_alpha: float
    optimizer: str = "adam"
    fixed_alpha: float | None = None
    lr_scaling: str = "raw"
    c_v: float | None = None  # None: the base method's
    eta_v: float | None = None
    epochs: int | None = None  # None: the base method's budget
    batch_size: int | None = None

    def train_config(self, base: TrainConfig) -> TrainConfig:
        changes = dict(
            c_alpha=self.c_alpha,
            eta_alpha=self.eta_alpha,
            optimizer=self.optimizer,
            fixed_alpha=self.fixed_alpha,
            lr_scaling=self.lr_scaling,
            intervention="sv",
        )
        for key in ("c_v", "eta_v", "epochs", "batch_size"):
            if getattr(self, key) is not None:
                changes[key] = getattr(self, key)
        return replace(base, **changes).validate()


def scaling_cells(spec: dict, base: TrainConfig, hidden: int) -> list[ScalingCell]:
    """The cells of the study from the config's `scaling` section and the base (PrOSV) method.

    Every rate is raw (as applied at width `hidden`); a width-scaled base method contributes the
    rates it applies at this width.

    - base: the base method's own init and rates (large init and rate: the claim's reference);
    - grid: every c_alpha x eta_alpha with Adam and raw rates (the base eta_v and c_v);
    - fixed: alpha frozen at `fixed_alpha` (direction only), the base v rate;
    - sgd: SGD instead of Adam at each c_alpha of `sgd_c_alpha` with the base rates;
    - transfer: reference rates tuned at `reference_width` used as they are ("raw") and scaled to
      this model's width by the rule eta_alpha * sqrt(n / n_ref), eta_v * sqrt(n_ref / n) ("width").
    """
    lr_alpha, lr_v = base.learning_rates(hidden)
    cells = [ScalingCell("joint (base rates)", "base", base.c_alpha, lr_alpha, eta_v=lr_v)]
    cells += [
        ScalingCell(f"adam c{_num(c)} lr{_num(e)}", "grid", float(c), float(e), eta_v=lr_v)
        for c in spec["c_alpha"]
        for e in spec["eta_alpha"]
    ]
    if spec.get("fixed_alpha") is not None:
        cells.append(
            ScalingCell(
                f"alpha fixed {_num(spec['fixed_alpha'])}",
                "fixed",
                base.c_alpha,
                lr_alpha,
                fixed_alpha=float(spec["fixed_alpha"]),
                eta_v=lr_v,
            )
        )
    cells += [
        ScalingCell(f"sgd c{_num(c)} lr{_num(lr_alpha)}", "sgd", float(c), lr_alpha, "sgd", eta_v=lr_v)
        for c in spec.get("sgd_c_alpha", [])
    ]
    ref = spec.get("transfer")
    if ref:
        root = math.sqrt(float(ref["reference_width"]))
        common = dict(c_alpha=float(ref["c_alpha"]), c_v=float(ref["c_v"]))
        cells.append(
            ScalingCell(
                "transfer raw", "transfer", eta_alpha=float(ref["eta_alpha"]), eta_v=float(ref["eta_v"]), **common
            )
        )
        # width-scaled base rates that reproduce the reference rates at the reference width
        cells.append(
            ScalingCell(
                "transfer width",
                "transfer",
                eta_alpha=float(ref["eta_alpha"]) / root,
                eta_v=float(ref["eta_v"]) * root,
                lr_scaling="width",
                **common,
            )
        )
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise ValueError(f"the scaling study has duplicate cells: {names}")
    return cells


def _num(x) -> str:
    return f"{float(x):g}"


def run_scaling(
    model,
    tokenizer,
    layer: int,
    positions: str,
    datasets: list[list[Example]],
    base: TrainConfig,
    cells: Sequence[ScalingCell],
    concept_names: Sequence,
    progress: bool = True,
):
    """Train every cell on the same data (one prefix cache) and stack the results.

    Returns (module, names, losses, cells table): a SteeringVectors with one row per
    (cell, concept) named "<cell>|<concept>", the per-step losses with the cell's settings, and one
    row per cell with its learning rates as applied, its first- and last-epoch mean training loss
    (mean over concepts) and its final alpha.
    """
    hidden = hidden_size(model)
    cache = PrefixCache(layer)  # every cell edits the same block output: one prefix serves them all
    modules, names, frames, rows = [], [], [], []
    trained: list[tuple[TrainConfig, object]] = []  # the base cell is often a grid cell too: trained once
    for cell in tqdm(cells, desc=f"scaling L{layer} {positions}", disable=not progress, unit="cell"):
        cfg = replace(cell.train_config(base), positions=positions)
        res = next((done for seen, done in trained if seen == cfg), None)
        if res is None:
            res = train(
                model, tokenizer, layer, datasets, cfg, progress=False, concept_names=list(concept_names), cache=cache
            )
            trained.append((cfg, res))
        modules.append(res.module)
        names += [f"{cell.name}|{c}" for c in concept_names]
        frames.append(res.losses.assign(cell=cell.name, kind=cell.kind))
        rows.append(_cell_row(cell, cfg, res, layer, positions, hidden))
    module = SteeringVectors.stack(modules).requires_grad_(False)
    return module, names, pd.concat(frames, ignore_index=True), pd.DataFrame(rows)


def _cell_row(cell: ScalingCell, cfg: TrainConfig, res, layer: int, positions: str, hidden: int) -> dict:
    """One cell's row of the cells table: its settings, rates as applied, epoch losses and final alpha."""
    # epoch means, not single steps: every cell sees the same examples in the same order, so an
    # epoch's mean loss compares cells while one step's loss mostly reflects which batch it was
    last = res.losses[res.losses.epoch == res.losses.epoch.max()]
    final = res.losses.sort_values("step").groupby("concept").tail(1)
    return {
        "cell": cell.name,
        "kind": cell.kind,
        "c_alpha": cell.c_alpha,
        "eta_alpha": cell.eta_alpha,
        "optimizer": cell.optimizer,
        "fixed_alpha": cell.fixed_alpha,
        "lr_scaling": cell.lr_scaling,
        "c_v": cfg.c_v,
        "eta_v": cfg.eta_v,
        "lr_alpha": res.lr_alpha,
        "lr_v": res.lr_v,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "alpha_final": float(final["alpha"].mean()),
        "final_loss": float(last.groupby("concept").loss.mean().mean()),
        "first_loss": float(res.losses[res.losses.epoch == 0].groupby("concept").loss.mean().mean()),
        "layer": layer,
        "positions": positions,
        "hidden": hidden,
        "diverged": bool(res.diverged),  # a cell whose loss ran away (prosv.training.loop) stays in the study
    }


def scaling_prompts(prompts: pd.DataFrame, names: Sequence[str]) -> tuple[pd.DataFrame, list[int]]:
    """Every factor-free prompt once per cell, with the stacked module's row for (cell, concept)."""
    index = {n: i for i, n in enumerate(names)}
    cells = list(dict.fromkeys(n.split("|", 1)[0] for n in names))
    parts, rows = [], []
    for cell in cells:
        parts.append(prompts.assign(cell=cell))
        rows += [index[f"{cell}|{c}"] for c in prompts.concept_id]
    return pd.concat(parts, ignore_index=True), rows


def scaling_generations(
    model, tokenizer, module, names: Sequence[str], prompts: pd.DataFrame, layer: int, positions: str, **gen
) -> pd.DataFrame:
    """Every factor-free prompt once per cell, all cells in one batch stream; a prompt samples with the
    same random draws (its ``sample_id``) under every cell."""
    from ..generation import Steering, generate

    plan, rows = scaling_prompts(prompts, names)
    module = module.to(next(model.parameters()).device)
    outs = generate(
        model,
        tokenizer,
        list(plan.user_turn),
        Steering(module, layer, positions, rows=rows),
        desc="scaling generations",
        sample_ids=[int(i) for i in plan.sample_id],
        **gen,
    )
    return plan.assign(
        method="scaling",
        layer=layer,
        positions=positions,
        factor=1.0,
        learned_alpha=[float(module.alpha[r]) for r in rows],
        response=[o.text for o in outs],
    )
