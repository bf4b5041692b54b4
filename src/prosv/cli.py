"""`prosv` command line: prepare the embedded model, inspect positions, train one concept, generate."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch


def set_threads(n: int | None) -> None:
    """Pin torch's CPU threads; oversubscribed OpenMP threads slow small models down many times."""
    if n:
        torch.set_num_threads(n)


def _cmd_prepare_model(args) -> int:
    from .models import prepare_embedded_model

    t0 = time.time()
    path = prepare_embedded_model(args.model, args.models_root, force=args.force)
    print(f"{args.model}: {path} ({time.time() - t0:.1f} s)")
    return 0


def _cmd_positions(args) -> int:
    from .models import load_model
    from .positions import describe, template_ids

    _, tokenizer = load_model(args.model, device="cpu", root=args.models_root)
    ids = template_ids(tokenizer, args.instruction)
    print(f"prompt: {len(ids)} tokens; spec {args.spec!r} selects:")
    for index, token_id, token in describe(tokenizer, args.instruction, args.spec):
        print(f"  {index:4d}  {token_id:7d}  {token!r}")
    return 0


def _read_pairs(path: str, concept: str | None, limit: int | None):
    import pandas as pd

    from .training import Example

    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_json(path, lines=True)
    if concept is not None:
        key = "concept_id" if "concept_id" in df.columns and concept.lstrip("-").isdigit() else "concept"
        if key not in df.columns:
            raise SystemExit(f"--concept given but {path} has no 'concept' or 'concept_id' column")
        df = df[df[key].astype(str) == concept]
    for col in ("instruction", "response"):
        if col not in df.columns:
            alias = {"instruction": "input", "response": "output"}[col]
            if alias not in df.columns:
                raise SystemExit(f"{path} needs an '{col}' column (columns: {list(df.columns)})")
            df = df.rename(columns={alias: col})
    if "keep" in df.columns:
        df = df[df["keep"]]
    if df.empty:
        raise SystemExit(f"no training pairs in {path}" + (f" for concept {concept!r}" if concept else ""))
    if limit:
        df = df.head(limit)
    rejected = "neutral_response" if "neutral_response" in df.columns else ("rejected" if "rejected" in df.columns else None)
    return [Example(r.instruction, r.response, getattr(r, rejected) if rejected else None) for r in df.itertuples()]


def _cmd_train(args) -> int:
    from .models import load_model
    from .training import TrainConfig, response_loss, train
    from .vectors import save_vectors

    examples = _read_pairs(args.data, args.concept, args.limit)
    holdout = []
    if args.holdout:
        cut = max(1, int(len(examples) * (1 - args.holdout)))
        examples, holdout = examples[:cut], examples[cut:]
    cfg = TrainConfig(method=args.method, positions=args.positions, loss=args.loss, c_alpha=args.c_alpha,
                      eta_alpha=args.eta_alpha, c_v=args.c_v, eta_v=args.eta_v, lr_scaling=args.lr_scaling,
                      fixed_alpha=args.fixed_alpha, epochs=args.epochs, batch_size=args.batch_size,
                      seed=args.seed).validate()
    model, tokenizer = load_model(args.model, device=args.device, root=args.models_root)
    t0 = time.time()
    result = train(model, tokenizer, args.layer, [examples], cfg, concept_names=[args.concept or "concept"])
    print(f"trained on {len(examples)} pairs in {time.time() - t0:.1f} s; final loss "
          f"{result.losses.loss.iloc[-1]:.3f}" + (f", alpha {result.losses.alpha.iloc[-1]:.2f}" if args.method == "sv" else ""))
    ref = model.prosv_ref
    save_vectors(args.out, result.module, model=ref.source_id, model_revision=None, layer=args.layer,
                 positions=args.positions, loss=args.loss, hyperparameters=cfg.to_dict(),
                 concepts=[args.concept or "concept"])
    print(f"wrote {args.out}")
    if args.losses:
        result.losses.to_parquet(args.losses)
    if holdout:
        base = response_loss(model, tokenizer, holdout)
        steered = response_loss(model, tokenizer, holdout, args.layer, result.module, 0, args.positions)
        print(f"held-out response loss on {len(holdout)} pairs: unsteered {base:.3f}, steered {steered:.3f}")
    return 0


def _cmd_generate(args) -> int:
    from .generation import Steering, generate
    from .models import load_model
    from .vectors import load_vectors

    vec = load_vectors(args.vector)
    model_name = args.model or vec.metadata["model"]
    model, tokenizer = load_model(model_name if args.model else _local_name(model_name), device=args.device,
                                  root=args.models_root)
    k = vec.index_of(args.concept) if args.concept is not None else 0
    module = vec.module.to(next(model.parameters()).device)
    prompts = args.prompt
    steering = Steering(module, vec.layer, vec.positions, rows=[k] * len(prompts) + [-1] * len(prompts),
                        factor=args.factor)
    outs = generate(model, tokenizer, prompts + prompts, steering, max_new_tokens=args.max_new_tokens,
                    temperature=args.temperature, seed=args.seed)
    n = len(prompts)
    for i, prompt in enumerate(prompts):
        print(f"=== prompt: {prompt}")
        print(f"--- steered ({vec.metadata['method']} at L{vec.layer} {vec.positions}, factor {args.factor}):")
        print(outs[i].text.strip())
        print("--- unsteered:")
        print(outs[n + i].text.strip())
    return 0


def _local_name(source_id: str) -> str:
    """Map a vector file's recorded model id back to a registry name where one exists."""
    from .models import EMBEDDED_MODELS, HUB_ALIASES

    for name, spec in EMBEDDED_MODELS.items():
        if spec.source_id == source_id:
            return name
    for name, hub_id in HUB_ALIASES.items():
        if hub_id == source_id:
            return name
    return source_id


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prosv", description=__doc__)
    p.add_argument("--models-root", default="resources/models", help="where embedded models are converted to")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("prepare-model", help="convert the embedded GGUF model into a safetensors folder")
    s.add_argument("--model", default="smollm2-135m")
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=_cmd_prepare_model)

    s = sub.add_parser("positions", help="show which prompt tokens a position spec selects")
    s.add_argument("--model", default="smollm2-135m")
    s.add_argument("--spec", default="p2+s2")
    s.add_argument("instruction")
    s.set_defaults(func=_cmd_positions)

    s = sub.add_parser("train", help="train one concept's steering vector from instruction/response pairs")
    s.add_argument("--model", default="smollm2-135m")
    s.add_argument("--data", required=True, help="parquet or jsonl with instruction and response columns")
    s.add_argument("--concept", default=None, help="select rows by concept or concept_id")
    s.add_argument("--layer", type=int, required=True)
    s.add_argument("--method", default="sv", choices=["sv", "loreft"])
    s.add_argument("--positions", default="p2+s2")
    s.add_argument("--loss", default="lang", choices=["lang", "simpo"])
    s.add_argument("--c-alpha", type=float, default=4.0)
    s.add_argument("--eta-alpha", type=float, default=10.0)
    s.add_argument("--c-v", type=float, default=8.0)
    s.add_argument("--eta-v", type=float, default=0.04)
    s.add_argument("--lr-scaling", default="raw", choices=["raw", "width"])
    s.add_argument("--fixed-alpha", type=float, default=None)
    s.add_argument("--epochs", type=int, default=12)
    s.add_argument("--batch-size", type=int, default=12)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--limit", type=int, default=None, help="use at most this many pairs")
    s.add_argument("--holdout", type=float, default=0.0, help="fraction kept out to report held-out loss")
    s.add_argument("--device", default=None)
    s.add_argument("--out", required=True, help="output .safetensors")
    s.add_argument("--losses", default=None, help="write the per-step loss log to this parquet")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("generate", help="steered and unsteered responses side by side")
    s.add_argument("--vector", required=True)
    s.add_argument("--concept", default=None)
    s.add_argument("--model", default=None, help="default: the model recorded in the vector file")
    s.add_argument("--factor", type=float, default=1.0)
    s.add_argument("--max-new-tokens", type=int, default=128)
    s.add_argument("--temperature", type=float, default=0.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=None)
    s.add_argument("prompt", nargs="+")
    s.set_defaults(func=_cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    set_threads(args.threads)
    from .jobs import keep_freed_memory

    keep_freed_memory()
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"prosv: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
