"""`prosv prepare-model` and `prosv positions`: the embedded model and what a position spec selects."""

from __future__ import annotations

import time

from .help import EXAMPLES


def _cmd_prepare_model(args) -> int:
    from ..models import prepare_embedded_model

    t0 = time.time()
    path = prepare_embedded_model(args.model, args.models_root, force=args.force)
    print(f"{args.model}: {path} ({time.time() - t0:.1f} s)")
    return 0


def _cmd_positions(args) -> int:
    from ..models import load_model
    from ..positions import default_system_prompt, describe, parse_positions, template_ids

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


def add(sub) -> None:
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
