"""What `--help` shows: each option's default, and examples at the end of every command (text, not logic)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, unless it has none or its help already says it; examples keep their lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        # identity, not equality: a default of 0 or 0.0 is a value to show, unlike None or a flag's False
        none = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if none or "default:" in text or action.required:
            return text
        return super()._get_help_string(action)


EXAMPLES = {
    "prepare-model": """examples:
  prosv prepare-model                       # into $PROSV_MODELS_ROOT, else ~/.cache/prosv/models
  prosv --models-root /scratch/models prepare-model --force
""",
    "positions": """examples:
  prosv positions "Write a haiku about rain."              # PrOSV's p2+s2
  prosv positions --spec s4 "Write a haiku about rain."
  prosv positions --model ./my-model --spec prompt "Hi"
""",
    "train": """examples:
  prosv train --data pairs.parquet --concept lighthouses --layer 20 --out v.safetensors
  prosv train --data pairs.parquet --concept 0 --layer 20 --out v.safetensors --holdout 0.25
  prosv train --data pairs.jsonl --layer 20 --positions all --loss simpo --epochs 4 --out fssv.safetensors
  prosv train --data pairs.parquet --concept 0 --layer all --c-alpha 0.25 --out every-layer.safetensors
""",
    "generate": """examples:
  prosv generate --vector v.safetensors "Give me a tip for studying."
  prosv generate --vector results/vectors/prosv_lang/L20/prompt/eval.safetensors --concept 4 "Hi"
  prosv generate --vector v.safetensors --factor 0.5 --temperature 1 --seed 3 "Tell me a story."
""",
    "judge": """examples:
  prosv judge evaluate --split heldout
  prosv judge rate generations.parquet ratings.parquet
""",
    "judge calibrate": """examples:
  prosv judge calibrate --out /tmp/thresholds.json --metrics-out /tmp/metrics.json
""",
    "judge evaluate": """examples:
  prosv judge evaluate --split heldout
  prosv judge evaluate --config '{"kind": "openai", "base_url": "http://localhost:8000/v1", "model": "m"}'
""",
    "judge rate": """examples:
  prosv judge rate generations.parquet ratings.parquet
""",
    "serve": """examples:
  prosv serve --vectors results/vectors/prosv_lang/L20/p2+s2            # http://127.0.0.1:8000/ is the playground
  prosv serve --vectors ./vectors --port 9000 --max-batch 16 --api-key-env PROSV_KEY
""",
}

# one example per command on `prosv --help`; each command's --help has more
EPILOG = "examples (more in prosv COMMAND --help):\n" + "".join(
    EXAMPLES[c].split("\n", 2)[1] + "\n" for c in ("prepare-model", "positions", "train", "generate", "judge", "serve")
)
