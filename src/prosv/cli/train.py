"""`prosv train`: one concept's vector from a pairs file, at the model's recommended settings."""

from __future__ import annotations

import time
from pathlib import Path

from .errors import UserError
from .help import EXAMPLES


def _select_concept(df, concept: str, path: str):
    """Rows of one concept, by name (``concept`` column) or id (``concept_id``); (rows, name, id)."""
    has_name, has_id = "concept" in df.columns, "concept_id" in df.columns
    if not (has_name or has_id):
        raise UserError(f"--data {path}: --concept given but the file has no 'concept' or 'concept_id' column")
    by_name = df[df["concept"].astype(str) == concept] if has_name else df.iloc[:0]
    by_id = df[df["concept_id"].astype(str) == concept] if has_id else df.iloc[:0]
    rows = by_name if not by_name.empty else by_id
    if rows.empty:
        known = sorted(df["concept"].astype(str).unique())[:10] if has_name else []
        ids = sorted(df["concept_id"].unique().tolist())[:10] if has_id else []
        raise UserError(
            f"--data {path}: no training pairs for concept {concept!r} "
            f"(names {known or '-'}, ids {ids or '-'}{', ...' if len(known) == 10 or len(ids) == 10 else ''})"
        )
    name = str(rows["concept"].iloc[0]) if has_name else concept
    cid = int(rows["concept_id"].iloc[0]) if has_id else None
    return rows, name, cid


def _read_pairs(path: str, concept: str | None, limit: int | None):
    """(examples, concept name, concept id) from a pairs file; name and id None when not known."""
    from ..data.tables import read_table
    from ..training import Example

    if not Path(path).is_file():
        raise UserError(f"--data {path}: file not found")
    df = read_table(Path(path))
    name = cid = None
    if concept is not None:
        df, name, cid = _select_concept(df, concept, path)
    for col, alias in (("instruction", "input"), ("response", "output")):
        if col not in df.columns:
            if alias not in df.columns:
                raise UserError(f"--data {path}: needs an '{col}' column (it has {list(df.columns)})")
            df = df.rename(columns={alias: col})
    if "keep" in df.columns:
        df = df[df["keep"].astype(bool)]
    if df.empty:
        raise UserError(f"--data {path}: no training pairs" + (f" for concept {concept!r}" if concept else ""))
    if limit:
        df = df.head(limit)
    rejected = next((c for c in ("neutral_response", "rejected") if c in df.columns), None)
    examples = [Example(r.instruction, r.response, getattr(r, rejected) if rejected else None) for r in df.itertuples()]
    return examples, name, cid


TRAIN_OPTIONS = ("c_alpha", "eta_alpha", "c_v", "eta_v", "lr_scaling", "fixed_alpha", "epochs", "batch_size", "seed")


def train_settings(args) -> tuple[dict, dict]:
    """(hyper-parameters, the model's recommended ones): TrainConfig defaults < recommended < options."""
    from ..models import recommended_hyperparameters

    recommended = recommended_hyperparameters(args.model, args.positions, args.loss)
    values = dict(recommended)
    values.update({k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None})
    values.update(intervention=args.intervention, positions=args.positions, loss=args.loss)
    return values, recommended


def _check_train_args(args) -> None:
    """What can be checked without the model: layer range (from the model's config), holdout, output."""
    from ..models import model_shape

    if not 0 <= args.holdout < 1:
        raise UserError(f"--holdout {args.holdout}: must be a fraction in [0, 1)")
    if Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: is a directory; give a .safetensors file name")
    shape = model_shape(args.model, args.models_root)
    if shape is not None:
        args.layer = _layers(args.layer, shape.num_layers, args.model)


def _layers(spec, depth: int, model: str):
    from ..models import resolve_layers

    try:
        return resolve_layers(spec, depth, "--layer", model)
    except ValueError as err:
        raise UserError(str(err)) from None


def _cmd_train(args) -> int:
    from ..models import hidden_size, load_model, num_layers
    from ..provenance import of_model
    from ..training import TrainConfig, response_loss, train
    from ..vectors import save_vectors

    values, recommended = train_settings(args)
    cfg = TrainConfig.from_mapping(values, where="prosv train")
    _check_train_args(args)
    examples, name, cid = _read_pairs(args.data, args.concept, args.limit)
    name = name or args.concept or "concept"
    holdout = []
    if args.holdout:
        cut = max(1, int(len(examples) * (1 - args.holdout)))
        examples, holdout = examples[:cut], examples[cut:]
    model, tokenizer = load_model(args.model, device=args.device, root=args.models_root)
    args.layer = _layers(args.layer, num_layers(model), args.model)
    given = sorted(k for k in TRAIN_OPTIONS if getattr(args, k) is not None)
    print(
        f"settings: {'recommended for ' + args.model if recommended else 'library defaults (no recommendation)'}"
        + (f", with {', '.join(f'{k}={values[k]}' for k in given)} from the command line" if given else "")
    )
    t0 = time.time()
    result = train(model, tokenizer, args.layer, [examples], cfg, concept_names=[name])
    last = result.losses.iloc[-1]
    print(
        f"trained on {len(examples)} pairs in {time.time() - t0:.1f} s; final loss {last.loss:.3f}"
        + (f", alpha {last.alpha:.2f}" if cfg.intervention == "sv" else "")
    )
    if result.diverged:
        raise UserError(
            f"{args.out}: not written, training diverged ({result.divergence_report()}); lower --eta-alpha / --eta-v"
        )
    save_vectors(
        args.out,
        result.module,
        model=model.prosv_ref.source_id,
        layer=args.layer,
        positions=cfg.positions,
        loss=cfg.loss,
        hyperparameters=cfg.to_dict(),
        method=args.method,
        concepts=[name],
        hidden_size=hidden_size(model),
        num_layers=num_layers(model),
        provenance=of_model(model),
        extra={"concept_ids": [cid]} if cid is not None else None,
    )
    print(f"wrote {args.out}")
    if args.losses:
        from ..files import write_parquet

        write_parquet(args.losses, result.losses)
    if holdout:
        base = response_loss(model, tokenizer, holdout)
        steered = response_loss(model, tokenizer, holdout, args.layer, result.module, 0, cfg.positions)
        print(f"held-out response loss on {len(holdout)} pairs: unsteered {base:.3f}, steered {steered:.3f}")
    return 0


def add(sub) -> None:
    from ..training import INTERVENTIONS, LOSSES

    s = sub.add_parser(
        "train",
        help="train one concept's steering vector from instruction/response pairs",
        description="Unset hyper-parameters take the model's recommended settings "
        "(src/prosv/recommended.yaml), else the library defaults (TrainConfig).",
        epilog=EXAMPLES["train"],
    )
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument(
        "--data",
        required=True,
        help="parquet, JSON Lines, JSON or CSV with instruction and response columns (AxBench's input/output work too)",
    )
    s.add_argument("--concept", default=None, help="select rows by concept name or concept_id (default: every row)")
    s.add_argument(
        "--layer",
        required=True,
        help="decoder block whose output is steered (0-indexed), or several: 3,7,9 or all (one vector per layer)",
    )
    s.add_argument("--intervention", default="sv", choices=INTERVENTIONS, help="steering vector or LoReFT")
    s.add_argument("--method", default=None, help="a name for the run, recorded in the vector file")
    s.add_argument("--positions", default="p2+s2", help="position spec: p2+s2 (PrOSV), all (FSSV), prompt, s4, ...")
    s.add_argument(
        "--loss",
        default="lang",
        choices=LOSSES,
        help="lang: response cross-entropy; simpo: preference "
        "for the concept response over a concept-neutral one (needs a neutral_response column)",
    )
    for name, kind, text in (
        ("c-alpha", float, "factor init scale: alpha_0 = c_alpha sqrt(n)"),
        ("eta-alpha", float, "factor learning rate"),
        ("c-v", float, "direction init scale"),
        ("eta-v", float, "direction learning rate"),
        ("fixed-alpha", float, "freeze alpha at this value (direction-only ablation)"),
        ("epochs", int, "passes over the pairs"),
        ("batch-size", int, "pairs per step"),
        ("seed", int, "fixes init and shuffling"),
    ):
        s.add_argument(f"--{name}", type=kind, default=None, help=f"{text} (default: recommended)")
    s.add_argument(
        "--lr-scaling",
        default=None,
        choices=["raw", "width"],
        help="raw rates, or base rates scaled by sqrt(n) (alpha) and 1/sqrt(n) (v) (default: recommended)",
    )
    s.add_argument("--limit", type=int, default=None, help="use at most this many pairs")
    s.add_argument("--holdout", type=float, default=0.0, help="fraction kept out to report held-out loss")
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    s.add_argument("--out", required=True, help="output .safetensors")
    s.add_argument("--losses", default=None, help="write the per-step loss log to this parquet")
    s.set_defaults(func=_cmd_train)
