"""The examples each `prosv` command's --help ends with (kept apart: they are text, not logic)."""

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
  prosv train --data pairs.parquet --concept lighthouses --layer 10 --out v.safetensors
  prosv train --data pairs.parquet --concept 0 --layer 10 --out v.safetensors --holdout 0.25
  prosv train --data pairs.jsonl --layer 10 --positions all --loss simpo --epochs 4 --out fssv.safetensors
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
}
