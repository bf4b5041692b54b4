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

from .cli_examples import EXAMPLES

# one example per command; each command's --help has more
EPILOG = "examples (more in prosv COMMAND --help):\n" + "".join(
    EXAMPLES[c].split("\n", 2)[1] + "\n" for c in ("prepare-model", "positions", "train", "generate", "judge")
)


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, unless it has none or its help already says it; examples keep their lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        # identity, not equality: a default of 0 or 0.0 is a value to show, unlike None or a flag's False
        none = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if none or "default:" in text or action.required:
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
    from .positions import default_system_prompt, describe, parse_positions, template_ids

    spec = parse_positions(args.spec)  # a bad spec fails before the model loads
    _, tokenizer = load_model(args.model, device="cpu", root=args.models_root)
    ids = template_ids(tokenizer, args.instruction)
    print(f"prompt: {len(ids)} tokens after {args.model}'s chat template (user turn only, generation prompt added)")
    default = default_system_prompt(tokenizer)
    if default:
        print(f"note: the chat template inserts a default system prompt before the user turn: {default!r}")
    print(f"text: {tokenizer.decode(ids)!r}")
    picked = describe(tokenizer, args.instruction, spec)
    print(f"spec {args.spec!r} selects {len(picked)} tokens:")
    print(f"  {'index':>5}  {'id':>7}  {'token':<20}  text")
    for index, token_id, token in picked:
        print(f"  {index:5d}  {token_id:7d}  {token!r:<20}  {tokenizer.decode([token_id])!r}")
    return 0


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
    from .data.tables import read_table
    from .training import Example

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
    from .models import recommended_hyperparameters

    recommended = recommended_hyperparameters(args.model, args.positions, args.loss)
    values = dict(recommended)
    values.update({k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None})
    values.update(intervention=args.intervention, positions=args.positions, loss=args.loss)
    return values, recommended


def _check_train_args(args) -> None:
    """What can be checked without the model: layer range (from the model's config), holdout, output."""
    from .models import model_shape

    if not 0 <= args.holdout < 1:
        raise UserError(f"--holdout {args.holdout}: must be a fraction in [0, 1)")
    if Path(args.out).is_dir():
        raise UserError(f"--out {args.out}: is a directory; give a .safetensors file name")
    shape = model_shape(args.model, args.models_root)
    if shape is not None and not 0 <= args.layer < shape.num_layers:
        raise UserError(
            f"--layer {args.layer}: out of range for {args.model} ({shape.num_layers} decoder layers, "
            f"0..{shape.num_layers - 1})"
        )


def _cmd_train(args) -> int:
    from .models import hidden_size, load_model, num_layers
    from .provenance import of_model
    from .training import TrainConfig, response_loss, train
    from .vectors import save_vectors

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
        from .files import write_parquet

        write_parquet(args.losses, result.losses)
    if holdout:
        base = response_loss(model, tokenizer, holdout)
        steered = response_loss(model, tokenizer, holdout, args.layer, result.module, 0, cfg.positions)
        print(f"held-out response loss on {len(holdout)} pairs: unsteered {base:.3f}, steered {steered:.3f}")
    return 0


def concept_index(vec, concept: str | None) -> int:
    """A concept of a vector file by name, by concept id, or by its position in the file (0, 1, ...)."""
    if concept is None:
        return 0
    names = [str(c) for c in vec.concepts]
    extra = {k: json.loads(vec.metadata[k]) for k in ("concept_names", "concept_ids") if k in vec.metadata}
    for labels in (names, *([str(x) for x in v] for v in extra.values())):
        if concept in labels:
            return labels.index(concept)
    if concept.isdigit() and int(concept) < len(names):
        return int(concept)
    known = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    also = "".join(f"; {k}: {', '.join(map(str, v[:10]))}" for k, v in extra.items())
    raise UserError(
        f"--concept {concept!r}: not in {vec.path} (concepts: {known}{also}; or an index 0..{len(names) - 1})"
    )


def _concept_label(vec, k: int) -> str:
    names = vec.metadata.get("concept_names")
    name = json.loads(names)[k] if names else None
    label = str(vec.concepts[k])
    return f"{name!r} (concept {label})" if name and str(name) != label else repr(label)


def _cmd_generate(args) -> int:
    from .generation import Steering, generate
    from .models import load_model, resolve_model
    from .vectors import load_vectors, model_name

    if args.max_new_tokens < 1 or args.temperature < 0:
        raise UserError("--max-new-tokens must be >= 1 and --temperature >= 0")
    vec = load_vectors(args.vector)  # the file and the concept are checked before the model loads
    k = concept_index(vec, args.concept)
    name = args.model or _local_name(vec.metadata["model"])
    resolve_model(name, args.models_root)
    model, tokenizer = load_model(name, device=args.device, root=args.models_root)
    vec.check_compatible(model, allow_other_model=args.allow_other_model)
    module = vec.module.to(next(model.parameters()).device)
    prompts = args.prompt
    steering = Steering(
        module, vec.layer, vec.positions, rows=[k] * len(prompts) + [-1] * len(prompts), factor=args.factor
    )
    gen = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    outs = generate(model, tokenizer, prompts + prompts, steering, **gen)
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
    alpha = getattr(vec.module, "alpha", None)
    strength = f"alpha {float(alpha[k]) * args.factor:.2f} = learned x{args.factor:g}" if alpha is not None else ""
    print(
        f"steering: method {vec.method} ({vec.intervention}, loss {vec.metadata.get('loss')}) at layer {vec.layer}, "
        f"positions {vec.positions}, concept {_concept_label(vec, k)}" + (f", {strength}" if strength else "")
    )
    for i, prompt in enumerate(prompts):
        print(f"=== prompt: {prompt}")
        print(f"--- steered ({vec.method}: {vec.intervention} at L{vec.layer} {vec.positions}, factor {args.factor}):")
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
        epilog=EXAMPLES["train"],
    )
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument(
        "--data",
        required=True,
        help="parquet, JSON Lines, JSON or CSV with instruction and response columns (AxBench's input/output work too)",
    )
    s.add_argument("--concept", default=None, help="select rows by concept name or concept_id (default: every row)")
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

    s = sub.add_parser(
        "judge", help="calibrate or check the offline judge; rate a table with any judge", epilog=EXAMPLES["judge"]
    )
    jsub = s.add_subparsers(dest="judge_command", required=True)
    add = jsub.add_parser
    jsub.add_parser = lambda name, **kw: add(name, formatter_class=_Help, **kw)
    c = jsub.add_parser(
        "calibrate",
        help="fit the offline judge on the calibrate split, report held-out agreement",
        epilog=EXAMPLES["judge calibrate"],
    )
    c.add_argument("--data", default=None, help="labelled responses (default: data/judge_calibration)")
    c.add_argument("--out", default=str(DEFAULT_THRESHOLDS), help="thresholds file to write")
    c.add_argument(
        "--fluency-lm", default=DEFAULT_FLUENCY_LM, choices=sorted(FLUENCY_LMS), help="LM whose loss rates fluency"
    )
    c.add_argument(
        "--lm-max-tokens", type=int, default=DEFAULT_LM_MAX_TOKENS, help="tokens of each response the fluency LM reads"
    )
    c.add_argument("--l2", type=float, default=1.0, help="ridge penalty of the ordinal models")
    c.add_argument("--metrics-out", default=None, help="also write the metrics as JSON here")
    e = jsub.add_parser("evaluate", help="agreement of a judge with the hand labels", epilog=EXAMPLES["judge evaluate"])
    e.add_argument("--data", default=None, help="labelled responses (default: data/judge_calibration)")
    e.add_argument(
        "--split", default="heldout", choices=["heldout", "calibrate", "all"], help="which labelled responses"
    )
    e.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    r = jsub.add_parser(
        "rate", help="rate a table with columns concept, instruction, response", epilog=EXAMPLES["judge rate"]
    )
    r.add_argument("input", help="parquet, JSON Lines or CSV with concept, instruction and response columns")
    r.add_argument("output", help="where the rated table goes (parquet); its stats beside it")
    r.add_argument("--config", default='{"kind": "offline"}', help="judge config as JSON")
    s.set_defaults(func=_cmd_judge)


def _cmd_serve(args) -> int:
    from .serve import ServeSettings, run

    settings = ServeSettings(
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        max_waiting=args.max_waiting,
        max_tokens_limit=args.max_tokens_limit,
        api_key_env=args.api_key_env,
    )
    try:
        run(args.model, args.vectors, settings, device=args.device, dtype=args.dtype)
    except ImportError as err:
        raise UserError(str(err)) from None
    return 0


def _add_serve(sub) -> None:
    from .serve.settings import ServeSettings

    d = ServeSettings()
    s = sub.add_parser(
        "serve",
        help="an OpenAI-compatible server that steers each request with its own vector, and a playground page",
        description="Model ids: <model> unsteered, <model>:<vector> steered by DIR/<vector>.safetensors "
        "(<vector>@<concept> for files of several concepts). Needs the serve extra.",
    )
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument("--vectors", required=True, metavar="DIR", help="folder of .safetensors vector files to serve")
    s.add_argument("--host", default=d.host, help="address to bind (loopback unless told otherwise)")
    s.add_argument("--port", type=int, default=d.port, help="port to listen on")
    s.add_argument("--max-batch", type=int, default=d.max_batch, help="rows decoded together")
    s.add_argument("--max-waiting", type=int, default=d.max_waiting, help="queued requests before 503")
    s.add_argument("--max-tokens-limit", type=int, default=d.max_tokens_limit, help="largest max_tokens allowed")
    s.add_argument(
        "--api-key-env", default=d.api_key_env, help="environment variable whose value, when set, requests must send"
    )
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when present)")
    s.add_argument("--dtype", default=None, help="float32, bfloat16, ... (default: the device's)")
    s.set_defaults(func=_cmd_serve)


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
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser
    sub.add_parser = lambda name, **kw: add(name, formatter_class=fmt, **kw)  # every command shows its defaults

    s = sub.add_parser(
        "prepare-model",
        help="convert the embedded GGUF model into a safetensors folder",
        epilog=EXAMPLES["prepare-model"],
    )
    s.add_argument("--model", default="smollm2-135m", help="embedded model name")
    s.add_argument("--force", action="store_true", help="convert again even if the folder exists")
    s.set_defaults(func=_cmd_prepare_model)

    s = sub.add_parser(
        "positions", help="show which prompt tokens a position spec selects", epilog=EXAMPLES["positions"]
    )
    s.add_argument("--model", default="smollm2-135m", help="registry name, hub id or local folder")
    s.add_argument("--spec", default="p2+s2", help="position spec: p<k>, s<k>, p<k>+s<m>, prompt or all")
    s.add_argument("instruction", help="the user turn")
    s.set_defaults(func=_cmd_positions)

    _add_train(sub)

    s = sub.add_parser("generate", help="steered and unsteered responses side by side", epilog=EXAMPLES["generate"])
    s.add_argument("--vector", required=True, help="a .safetensors vector file")
    s.add_argument(
        "--concept", default=None, help="concept name, concept id, or index in the file (default: the first)"
    )
    s.add_argument("--model", default=None, help="default: the model recorded in the vector file")
    s.add_argument("--factor", type=float, default=1.0, help="multiplies the learned alpha")
    s.add_argument("--max-new-tokens", type=int, default=128, help="length limit of each response")
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
    _add_serve(sub)
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
