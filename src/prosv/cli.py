"""`prosv` command line: prepare the embedded model, inspect positions, train one concept, generate, judge.

Every user error prints one line, ``prosv: error: <what>: <problem>``, and exits 2 (``--debug`` shows
the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

EPILOG = """examples:
  prosv prepare-model
  prosv positions --spec p2+s2 "Write a haiku about rain."
  prosv train --data pairs.parquet --concept 0 --layer 10 --out v.safetensors --holdout 0.25
  prosv generate --vector v.safetensors "Give me a tip for studying."
  prosv judge evaluate --split heldout
"""


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none or its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default:" in text or action.required:
            return text
        return super()._get_help_string(action)


class UserError(Exception):
    """A mistake in what the user asked for: reported as one line, exit status 2."""


def set_threads(n: int | None) -> None:
    """Pin torch's CPU threads; oversubscribed OpenMP threads slow small models down many times."""
    if n:
        import torch

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
    from .data.tables import read_table
    from .training import Example

    if not Path(path).is_file():
        raise UserError(f"--data {path}: file not found")
    df = read_table(Path(path))
    if concept is not None:
        key = "concept_id" if "concept_id" in df.columns and concept.lstrip("-").isdigit() else "concept"
        if key not in df.columns:
            raise UserError(f"--data {path}: --concept given but the file has no 'concept' or 'concept_id' column")
        df = df[df[key].astype(str) == concept]
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
    return [Example(r.instruction, r.response, getattr(r, rejected) if rejected else None) for r in df.itertuples()]


TRAIN_OPTIONS = ("c_alpha", "eta_alpha", "c_v", "eta_v", "lr_scaling", "fixed_alpha", "epochs", "batch_size", "seed")


def train_settings(args) -> tuple[dict, dict]:
    """(hyper-parameters, the model's recommended ones): TrainConfig defaults < recommended < options."""
    from .models import recommended_hyperparameters

    recommended = recommended_hyperparameters(args.model, args.positions, args.loss)
    values = dict(recommended)
    values.update({k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None})
    values.update(intervention=args.intervention, positions=args.positions, loss=args.loss)
    return values, recommended


def _cmd_train(args) -> int:
    from .models import hidden_size, load_model, num_layers
    from .training import TrainConfig, response_loss, train
    from .vectors import save_vectors

    values, recommended = train_settings(args)
    cfg = TrainConfig.from_mapping(values, where="prosv train")
    examples = _read_pairs(args.data, args.concept, args.limit)
    holdout = []
    if args.holdout:
        cut = max(1, int(len(examples) * (1 - args.holdout)))
        examples, holdout = examples[:cut], examples[cut:]
    model, tokenizer = load_model(args.model, device=args.device, root=args.models_root)
    given = sorted(k for k in TRAIN_OPTIONS if getattr(args, k) is not None)
    print(
        f"settings: {'recommended for ' + args.model if recommended else 'library defaults (no recommendation)'}"
        + (f", with {', '.join(f'{k}={values[k]}' for k in given)} from the command line" if given else "")
    )
    t0 = time.time()
    result = train(model, tokenizer, args.layer, [examples], cfg, concept_names=[args.concept or "concept"])
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
        concepts=[args.concept or "concept"],
        hidden_size=hidden_size(model),
        num_layers=num_layers(model),
    )
    print(f"wrote {args.out}")
    if args.losses:
        from .files import write_parquet

        write_parquet(args.losses, result.losses)
    if holdout:
        base = response_loss(model, tokenizer, holdout)
        steered = response_loss(model, tokenizer, holdout, args.layer, result.module, 0, cfg.positions)
        print(f"held-out response loss on {len(holdout)} pairs: unsteered {base:.3f}, steered {steered:.3f}")
    return 0


def _cmd_generate(args) -> int:
    from .generation import Steering, generate
    from .models import load_model
    from .vectors import load_vectors, model_name

    vec = load_vectors(args.vector)
    model, tokenizer = load_model(
        args.model or _local_name(vec.metadata["model"]), device=args.device, root=args.models_root
    )
    vec.check_compatible(model, allow_other_model=args.allow_other_model)
    k = vec.index_of(args.concept) if args.concept is not None else 0
    module = vec.module.to(next(model.parameters()).device)
    prompts = args.prompt
    steering = Steering(
        module, vec.layer, vec.positions, rows=[k] * len(prompts) + [-1] * len(prompts), factor=args.factor
    )
    outs = generate(
        model,
        tokenizer,
        prompts + prompts,
        steering,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
    )
    n = len(prompts)
    if args.json:
        report = {
            "vector": str(args.vector),
            "concept": vec.concepts[k],
            "model": model_name(model),
            "trained_on": vec.metadata.get("model"),
            "layer": vec.layer,
            "positions": vec.positions,
            "factor": args.factor,
            "alpha": float(module.alpha[k]) if hasattr(module, "alpha") else None,
            "seed": args.seed,
            "temperature": args.temperature,
            "max_new_tokens": args.max_new_tokens,
            "responses": [
                {"prompt": p, "steered": outs[i].text, "unsteered": outs[n + i].text} for i, p in enumerate(prompts)
            ],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    for i, prompt in enumerate(prompts):
        print(f"=== prompt: {prompt}")
        print(f"--- steered ({vec.intervention} at L{vec.layer} {vec.positions}, factor {args.factor}):")
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


def _cmd_judge(args) -> int:
    from . import judges as J
    from .data.tables import read_table
    from .files import write_json

    if args.judge_command == "calibrate":
        res = J.calibrate_offline_judge(
            args.data, args.out, fluency_lm=args.fluency_lm, lm_max_tokens=args.lm_max_tokens, l2=args.l2
        )
        if args.metrics_out:
            write_json(args.metrics_out, res["calibration"]["metrics"])
        return 0
    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as err:
        raise UserError(f"--config: not JSON ({err.msg})") from None
    judge = J.make_judge(config)
    if args.judge_command == "evaluate":
        metrics = J.evaluate_judge(judge, args.data, None if args.split == "all" else args.split)
        print(J.format_metrics(metrics))
        print(json.dumps(judge.stats.as_dict()))
        return 0
    rated = judge.rate_dataframe(read_table(Path(args.input)), progress=True)
    stats_path = J.save_ratings(rated, args.output, judge)
    print(json.dumps(judge.stats.as_dict()))
    print(f"wrote {args.output} and {stats_path}")
    return 0


def _add_train(sub) -> None:
    from .training import INTERVENTIONS, LOSSES

    s = sub.add_parser(
        "train",
        help="train one concept's steering vector from instruction/response pairs",
        description="Unset hyper-parameters take the model's recommended settings "
        "(src/prosv/recommended.yaml), else the library defaults (TrainConfig).",
    )
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument(
        "--data",
        required=True,
        help="parquet, JSON Lines, JSON or CSV with instruction and response columns (AxBench's input/output work too)",
    )
    s.add_argument("--concept", default=None, help="select rows by concept name or concept_id")
    s.add_argument("--layer", type=int, required=True, help="decoder block whose output is steered (0-indexed)")
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


def _add_judge(sub) -> None:
    from .judges.offline import DEFAULT_FLUENCY_LM, DEFAULT_LM_MAX_TOKENS, DEFAULT_THRESHOLDS, FLUENCY_LMS

    s = sub.add_parser("judge", help="calibrate or check the offline judge; rate a table with any judge")
    jsub = s.add_subparsers(dest="judge_command", required=True)
    c = jsub.add_parser("calibrate", help="fit the offline judge on the calibrate split, report held-out agreement")
    c.add_argument("--data", default=None, help="labelled responses (default: data/judge_calibration)")
    c.add_argument("--out", default=str(DEFAULT_THRESHOLDS), help="thresholds file to write")
    c.add_argument("--fluency-lm", default=DEFAULT_FLUENCY_LM, choices=sorted(FLUENCY_LMS))
    c.add_argument("--lm-max-tokens", type=int, default=DEFAULT_LM_MAX_TOKENS)
    c.add_argument("--l2", type=float, default=1.0, help="ridge penalty of the ordinal models")
    c.add_argument("--metrics-out", default=None, help="also write the metrics as JSON here")
    e = jsub.add_parser("evaluate", help="agreement of a judge with the hand labels")
    e.add_argument("--data", default=None, help="labelled responses (default: data/judge_calibration)")
    e.add_argument("--split", default="heldout", choices=["heldout", "calibrate", "all"])
    e.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    r = jsub.add_parser("rate", help="rate a table with columns concept, instruction, response")
    r.add_argument("input")
    r.add_argument("output")
    r.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    s.set_defaults(func=_cmd_judge)


def build_parser() -> argparse.ArgumentParser:
    fmt = _Help
    p = argparse.ArgumentParser(
        prog="prosv",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models-root",
        default=None,
        help="where embedded models are converted to "
        "(default: $PROSV_MODELS_ROOT, else $PROSV_CACHE_DIR/models, else ~/.cache/prosv/models)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser
    sub.add_parser = lambda name, **kw: add(name, formatter_class=fmt, **kw)  # every command shows its defaults

    s = sub.add_parser("prepare-model", help="convert the embedded GGUF model into a safetensors folder")
    s.add_argument("--model", default="smollm2-135m", help="embedded model name")
    s.add_argument("--force", action="store_true", help="convert again even if the folder exists")
    s.set_defaults(func=_cmd_prepare_model)

    s = sub.add_parser("positions", help="show which prompt tokens a position spec selects")
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument("--spec", default="p2+s2", help="position spec")
    s.add_argument("instruction", help="the user turn")
    s.set_defaults(func=_cmd_positions)

    _add_train(sub)

    s = sub.add_parser("generate", help="steered and unsteered responses side by side")
    s.add_argument("--vector", required=True, help="a .safetensors vector file")
    s.add_argument("--concept", default=None, help="concept name or index in the file (default: the first)")
    s.add_argument("--model", default=None, help="default: the model recorded in the vector file")
    s.add_argument("--factor", type=float, default=1.0, help="multiplies the learned alpha")
    s.add_argument("--max-new-tokens", type=int, default=128)
    s.add_argument("--temperature", type=float, default=0.0, help="0 is greedy decoding")
    s.add_argument("--seed", type=int, default=0, help="seeds sampling")
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    s.add_argument(
        "--allow-other-model",
        action="store_true",
        help="apply the vector to a model of the same width other than the one it was trained on",
    )
    s.add_argument("--json", action="store_true", help="print prompts, responses, vector, factor and seed as JSON")
    s.add_argument("prompt", nargs="+", help="one or more user turns")
    s.set_defaults(func=_cmd_generate)

    _add_judge(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    set_threads(args.threads)
    from .jobs import keep_freed_memory

    keep_freed_memory()
    try:
        return args.func(args)
    except Exception as err:
        if args.debug or not _is_user_error(err):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"prosv: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2


def _is_user_error(err: Exception) -> bool:
    """Errors that come from what the user asked for or gave (files, options, models, servers), not from
    a bug in prosv: reported in one line."""
    from .data.tables import DataValidationError
    from .judges import JudgeAPIError
    from .models import ModelNotAvailable
    from .training import TrainingError
    from .vectors import VectorFileError, VectorModelMismatch

    return isinstance(
        err,
        (
            UserError,
            ValueError,
            KeyError,
            FileNotFoundError,
            DataValidationError,
            ModelNotAvailable,
            VectorFileError,
            VectorModelMismatch,
            TrainingError,
            JudgeAPIError,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
