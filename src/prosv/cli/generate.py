"""`prosv generate`: steered and unsteered responses side by side."""

from __future__ import annotations

import json

from .errors import UserError
from .help import EXAMPLES


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
    from ..generation import Steering, generate
    from ..models import layers_text, load_model, resolve_model
    from ..vectors import load_vectors, model_name

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
    where = layers_text(vec.layer)
    print(
        f"steering: method {vec.method} ({vec.intervention}, loss {vec.metadata.get('loss')}) at layer {where}, "
        f"positions {vec.positions}, concept {_concept_label(vec, k)}" + (f", {strength}" if strength else "")
    )
    for i, prompt in enumerate(prompts):
        print(f"=== prompt: {prompt}")
        print(f"--- steered ({vec.method}: {vec.intervention} at L{where} {vec.positions}, factor {args.factor}):")
        print(outs[i].text.strip())
        print("--- unsteered:")
        print(outs[n + i].text.strip())
    return 0


def _local_name(source_id: str) -> str:
    """Map a vector file's recorded model id back to a registry name where one exists."""
    from ..models import EMBEDDED_MODELS, HUB_ALIASES

    for name, spec in EMBEDDED_MODELS.items():
        if spec.source_id == source_id:
            return name
    for name, hub_id in HUB_ALIASES.items():
        if hub_id == source_id:
            return name
    return source_id


def add(sub) -> None:
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
