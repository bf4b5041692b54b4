"""Model compute of a workflow config: tokens, FLOPs and hours on one accelerator, stage by stage.

:func:`count_compute` mirrors what the training loop (:mod:`prosv.training`: the prefix cache, the
unsteered references, the epochs, the LM head on response positions) and the generation loop
(:mod:`prosv.generation`: a prefill, then one decode step per new token) run for every stage
:func:`prosv.plan.count_workflow` counts, and turns tokens into FLOPs from the model's shape
(:class:`ModelDims`); :func:`compute_section` turns FLOPs and bytes into hours on an
:class:`Accelerator`. A projection under stated assumptions (typical lengths, an MFU, a bandwidth
efficiency), checked against measured times on a CPU by benchmarks/gpu_projection.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Accelerator:
    """What bounds a chip: dense bf16 matmul throughput (FLOP/s) and memory bandwidth (bytes/s)."""

    name: str
    peak_flops: float
    bandwidth: float


# the vendors' data-sheet figures (dense bf16, no sparsity); `prosv plan --accelerator` picks one
ACCELERATORS = {
    "h100": Accelerator("NVIDIA H100 SXM", 989e12, 3.35e12),
    "a100": Accelerator("NVIDIA A100 SXM 80GB", 312e12, 2.039e12),
}
DEFAULT_ACCELERATOR = "h100"
# share of peak FLOP/s that training and prefill reach: an assumption for a 2B-9B model at micro-batches
# of a few thousand tokens in eager PyTorch, not a measurement on that hardware
DEFAULT_MFU = 0.4
# share of peak bandwidth that a decode step reaches while it streams the weights and the KV cache
DEFAULT_BANDWIDTH_EFFICIENCY = 0.6
BYTES_PER_VALUE = 2  # bf16 weights and KV cache

# Prompt tokens of a chat-templated instruction. Measured on the shipped data/instructions (eval and
# train): SmolLM2-135M's chat template makes them 40.5 and 40.8 tokens on average, 30 of them its
# system prompt. Other models' templates are shorter and AlpacaEval's instructions longer than ours:
# 40 stands for every model and prompt (prompting and attack prompts carry a sentence more, uncounted).
TYPICAL_PROMPT_TOKENS = 40


@dataclass(frozen=True)
class ModelDims:
    """The shape of a decoder-only transformer, as far as its cost goes."""

    num_layers: int
    hidden_size: int
    intermediate_size: int  # of the gated MLP (three matrices)
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    norms_per_layer: int = 2
    qkv_bias: bool = False
    sliding_window: int | None = None  # on every other layer (Gemma-2)

    @property
    def attention_width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def block_matmul_params(self) -> int:
        """Weights of one block's matrix products: q, k, v, o and the three MLP matrices."""
        d, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        return 2 * d * self.attention_width + 2 * d * kv + 3 * d * self.intermediate_size

    @property
    def block_params(self) -> int:
        bias = self.attention_width + 2 * self.num_kv_heads * self.head_dim if self.qkv_bias else 0
        return self.block_matmul_params + bias + self.norms_per_layer * self.hidden_size

    @property
    def head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        """Blocks, embedding, final norm and (when not tied) the LM head."""
        head = 0 if self.tied_embeddings else self.head_params
        return self.num_layers * self.block_params + self.head_params + head + self.hidden_size

    @property
    def kv_bytes_per_token(self) -> int:
        return self.num_layers * 2 * self.num_kv_heads * self.head_dim * BYTES_PER_VALUE

    @property
    def decode_weight_bytes(self) -> int:
        """What one decode step reads of the weights: every block and the LM head (the embedding
        lookup reads a row per sequence: nothing, beside them)."""
        return (self.num_layers * self.block_params + self.head_params) * BYTES_PER_VALUE

    def attended_keys(self, mean_keys: float) -> float:
        """Keys a query attends to, averaged over layers: the sliding-window layers see at most the window."""
        if self.sliding_window is None:
            return mean_keys
        return (mean_keys + min(mean_keys, self.sliding_window)) / 2

    def block_flops(self, tokens: float, blocks: int, mean_keys: float) -> float:
        """Forward FLOPs of `tokens` through `blocks` blocks: 2 per weight and token, and the score and
        value products, 4 x attention width per attended key."""
        per_token = 2 * self.block_matmul_params + 4 * self.attention_width * self.attended_keys(mean_keys)
        return tokens * blocks * per_token

    def block_backward_flops(self, tokens: float, blocks: int, mean_keys: float) -> float:
        """Backward FLOPs with frozen weights: each weight product needs its input gradient only (one
        product, as many FLOPs as forward; no weight gradient), the score and value products need
        gradients for both of their operands, both activations (twice their forward)."""
        per_token = 2 * self.block_matmul_params + 8 * self.attention_width * self.attended_keys(mean_keys)
        return tokens * blocks * per_token

    def head_flops(self, positions: float) -> float:
        """The LM head at `positions` (forward; the backward's input gradient costs the same)."""
        return positions * 2 * self.hidden_size * self.vocab_size


# Shapes from the models' public config.json, for when the config is not on this machine (the hub is
# not reached for a plan). Keyed by hub id.
KNOWN_SHAPES = {
    "google/gemma-2-2b-it": ModelDims(26, 2304, 9216, 8, 4, 256, 256000, True, 4, sliding_window=4096),
    "google/gemma-2-9b-it": ModelDims(42, 3584, 14336, 16, 8, 256, 256000, True, 4, sliding_window=4096),
    "Qwen/Qwen2.5-32B-Instruct": ModelDims(64, 5120, 27648, 40, 8, 128, 152064, False, qkv_bias=True),
    "meta-llama/Llama-2-7b-chat-hf": ModelDims(32, 4096, 11008, 32, 32, 128, 32000, False),
}


def dims_from_config(config) -> ModelDims:
    """The shape of a transformers config (its text part for a multimodal model)."""
    text = config.get_text_config()
    heads = int(text.num_attention_heads)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    gemma2 = getattr(text, "model_type", "") in ("gemma2", "gemma3_text")
    window = getattr(text, "sliding_window", None) if gemma2 else None
    return ModelDims(
        num_layers=int(text.num_hidden_layers),
        hidden_size=int(text.hidden_size),
        intermediate_size=int(text.intermediate_size),
        num_heads=heads,
        num_kv_heads=int(getattr(text, "num_key_value_heads", None) or heads),
        head_dim=int(head_dim),
        vocab_size=int(text.vocab_size),
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
        norms_per_layer=4 if gemma2 else 2,
        qkv_bias=bool(getattr(text, "attention_bias", False) or getattr(text, "model_type", "") == "qwen2"),
        sliding_window=int(window) if window else None,
    )


def model_dims(name: str) -> tuple[ModelDims | None, str]:
    """The model's shape and where it came from: its own config.json where one is here (a converted
    embedded model, a local folder, the Hugging Face cache), else :data:`KNOWN_SHAPES`; None when neither."""
    from transformers import AutoConfig

    from ..models import resolve_model

    ref = resolve_model(name)
    try:
        return dims_from_config(AutoConfig.from_pretrained(ref.location, local_files_only=True)), "config.json"
    except (OSError, ValueError):
        pass
    if ref.source_id in KNOWN_SHAPES:
        return KNOWN_SHAPES[ref.source_id], f"the known shape of {ref.source_id}"
    return None, "no config.json here and no known shape"


@dataclass
class Work:
    """Model work of one job: tokens by kind, the compute-bound FLOPs, and the decode steps' FLOPs and
    bytes read (a decode step is bound by whichever of the two takes longer)."""

    prefix_tokens: float = 0.0  # through blocks 0..L once, no gradient (the prefix cache)
    forward_tokens: float = 0.0  # through the blocks after L: unsteered references and every epoch
    backward_tokens: float = 0.0  # back through the blocks after L, every epoch
    head_positions: float = 0.0  # LM-head rows while training (response tokens)
    prefill_tokens: float = 0.0
    decoded_tokens: float = 0.0
    decode_steps: float = 0.0  # forward calls of a batch after the prefill
    compute_flops: float = 0.0  # training and prefill
    decode_flops: float = 0.0
    decode_bytes: float = 0.0

    def __add__(self, other: Work) -> Work:
        return Work(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def seconds(self, chip: Accelerator, mfu: float, bandwidth_efficiency: float) -> float:
        compute = self.compute_flops / (chip.peak_flops * mfu)
        decode_compute = self.decode_flops / (chip.peak_flops * mfu)
        decode = max(decode_compute, self.decode_bytes / (chip.bandwidth * bandwidth_efficiency))
        return compute + decode


def training_work(
    dims: ModelDims,
    layer: int,
    sequences: float,
    epochs: int,
    response_tokens: float,
    prompt_tokens: float = TYPICAL_PROMPT_TOKENS,
    *,
    new_sequences: float | None = None,
) -> Work:
    """One `train()` run at `layer` over `sequences` (prompt, response) sequences (two per example
    for simpo), as :mod:`prosv.training` computes it with the prefix cache: blocks 0..L once per
    sequence, the unsteered reference pass through blocks L+1..N once per sequence, then every epoch
    forward and backward through blocks L+1..N, the LM head on response positions only. Runs that
    share a cache (one job's variants or cells) pay the first two only for the sequences not cached
    yet: ``new_sequences`` (default: all of them).
    """
    new = sequences if new_sequences is None else new_sequences
    length = prompt_tokens + response_tokens
    keys, above = (length + 1) / 2, dims.num_layers - layer - 1
    work = Work(
        prefix_tokens=new * length,
        forward_tokens=(new + sequences * epochs) * length,
        backward_tokens=sequences * epochs * length,
        head_positions=(new + sequences * epochs) * response_tokens,
    )
    work.compute_flops = (
        dims.block_flops(work.prefix_tokens, layer + 1, keys)
        + dims.block_flops(work.forward_tokens, above, keys)
        + dims.block_backward_flops(work.backward_tokens, above, keys)
        + dims.head_flops(work.head_positions + sequences * response_tokens * epochs)  # + input gradients
    )
    return work


def generation_work(
    dims: ModelDims, batches: list[int], max_new_tokens: int, prompt_tokens: float = TYPICAL_PROMPT_TOKENS
) -> Work:
    """Batched generation as :func:`prosv.generation.generate` runs it, every response at its full
    `max_new_tokens` (an upper bound: a batch stops early once every row has ended): per batch, one
    prefill over the prompts (the LM head on the last position only) and `max_new_tokens - 1` decode
    steps, each reading every weight once and the batch's KV cache."""
    steps = max_new_tokens - 1
    mean_context = prompt_tokens + max_new_tokens / 2
    work = Work()
    for b in batches:
        work.prefill_tokens += b * prompt_tokens
        work.decoded_tokens += b * max_new_tokens
        work.decode_steps += steps
        work.compute_flops += dims.block_flops(b * prompt_tokens, dims.num_layers, (prompt_tokens + 1) / 2)
        work.compute_flops += dims.head_flops(b)
        work.decode_flops += dims.block_flops(b * steps, dims.num_layers, mean_context) + dims.head_flops(b * steps)
        work.decode_bytes += steps * (dims.decode_weight_bytes + b * mean_context * dims.kv_bytes_per_token)
    return work


def scoring_work(dims: ModelDims, sequences: int, prompt_tokens: float = TYPICAL_PROMPT_TOKENS) -> Work:
    """Forward passes without generation (cloze scoring of answer options), all blocks, a few LM-head rows."""
    tokens = sequences * prompt_tokens
    flops = dims.block_flops(tokens, dims.num_layers, (prompt_tokens + 1) / 2) + dims.head_flops(sequences)
    return Work(prefill_tokens=tokens, compute_flops=flops)


def part_batches(concepts: int, per_concept: int, batch_size: int) -> list[int]:
    """Batch sizes of one generation job: its concepts' prompts in parts of whole concepts of at least
    `batch_size` rows (:func:`prosv.jobs.concepts_in_parts`), each part's rows cut into batches of
    `batch_size`."""
    per_part = -(-batch_size // per_concept)  # concepts per full part
    parts = [per_part] * (concepts // per_part) + ([concepts % per_part] if concepts % per_part else [])
    return stream_batches([n * per_concept for n in parts], batch_size)


def stream_batches(rows: list[int], batch_size: int) -> list[int]:
    """Batch sizes of generate() calls over `rows` prompts each."""
    out = []
    for n in rows:
        out += [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    return out


@dataclass
class ComputeStage:
    """One stage of the workflow: its rule and the model work of each of its jobs."""

    name: str
    rule: str
    jobs: list[Work]

    @property
    def total(self) -> Work:
        return sum(self.jobs, Work())


def training_pairs_per_concept(config: dict) -> int:
    """Training pairs of a concept: AxBench's 72 positives, or the embedded source's generated pairs
    plus its exemplars (4 a concept); capped by `train.max_examples`. An upper bound: the data step
    may drop a few (pairs.keep)."""
    from ..data.axbench import AXBENCH_POSITIVES_PER_CONCEPT

    data = config["data"]
    if data["source"] == "axbench":
        pairs = AXBENCH_POSITIVES_PER_CONCEPT
    else:
        from ..data import read_concepts

        exemplars_path = Path(data.get("data_dir") or Path(__file__).resolve().parents[3] / "data")
        exemplars = sum(1 for line in (exemplars_path / "concepts" / "exemplars.jsonl").open() if line.strip())
        pairs = data["instructions_per_concept"] + round(exemplars / len(read_concepts()))
    cap = config.get("train", {}).get("max_examples")
    return min(pairs, cap) if cap else pairs


def count_compute(config: dict, dims: ModelDims) -> list[ComputeStage]:
    """The model work of every stage of the default target that runs the model, job by job.

    The main methods train at the location search's chosen layer, unknown before it runs: they are
    counted at the lowest searched layer (the most blocks after it: an upper bound). Not counted: the
    data step (no model work for AxBench; the embedded source's writer generates), LoReFT's hidden-state
    spread (16 prompts), merges, judging and the task-steering experiment.
    """
    # long: one block per stage, in the rule files' order, as count_workflow has them
    from ..experiments import method_factors, scaling_cells
    from ..experiments.utility import UTILITY_TASKS
    from ..jobs import LOCATED, concept_shards, train_config

    data, evaluate = config["data"], config["evaluate"]
    per_concept, batch = evaluate["instructions_per_concept"], evaluate["batch_size"]
    new_tokens = evaluate["max_new_tokens"]
    pairs = training_pairs_per_concept(config)
    response = data.get("response_tokens", 128)
    main_layer = min(config["layers"])
    shards = concept_shards(data["eval_concepts"], config.get("concepts_per_job"))
    n_dev = len(data["dev_concepts"])

    def runs(cfgs, concepts, layer) -> Work:
        """`train()` runs one after another on one prefix cache: a sequence is cached once (simpo's
        rejected responses join when the first simpo run comes)."""
        work, cached = Work(), 0
        for cfg in cfgs:
            sequences = concepts * pairs * (2 if cfg.loss == "simpo" else 1)
            new = max(0, sequences - cached)
            work += training_work(dims, layer, sequences, cfg.epochs, response, new_sequences=new)
            cached += new
        return work

    def generation(batches, max_new=new_tokens):
        return generation_work(dims, batches, max_new)

    # location search: one job per (layer, positions) variant trains it, one generates for it
    locate = config["locate"]
    variants = list(dict.fromkeys(locate["positions"]))
    method_of = {p: locate.get("fssv_method", locate["method"]) if p == "all" else locate["method"] for p in variants}
    locate_cfgs = [train_config(config, method_of[p], p) for p in variants]
    locate_runs = [runs([cfg], n_dev, x) for x in config["layers"] for cfg in locate_cfgs]
    stages = [
        ComputeStage("location search: training", "train_locate", locate_runs),
        ComputeStage(
            "location search: generation",
            "generate_locate",
            [generation(part_batches(n_dev, per_concept, batch)) for _ in config["layers"] for _ in variants],
        ),
    ]
    methods = config["methods"]
    placed = {m: "p2+s2" if e["positions"] == LOCATED else e["positions"] for m, e in methods.items()}
    method_cfgs = {m: train_config(config, m, placed[m]) for m in methods}
    stages.append(
        ComputeStage(
            "main table: training",
            "train",
            [runs([method_cfgs[m]], len(s), main_layer) for m in methods for s in shards],
        )
    )
    stages.append(
        ComputeStage(
            "main table: learned factor",
            "generate",
            [generation(part_batches(len(s), per_concept, batch)) for _ in methods for s in shards],
        )
    )
    grid = len(evaluate["factor_grid"])
    posthoc = [m for m, e in methods.items() if e.get("posthoc_factor")]
    stages.append(
        ComputeStage(
            "main table: factor grid",
            "generate_grid",
            [generation(part_batches(len(s), per_concept, batch) * grid) for _ in posthoc for s in shards],
        )
    )
    stages.append(
        ComputeStage(
            "main table: baselines",
            "generate_baseline",
            [generation(part_batches(len(s), per_concept, batch)) for _ in evaluate["baselines"] for s in shards],
        )
    )

    # scaling: every cell trains from one cache on the first development concepts, then all generate at once
    base = train_config(config, locate["method"], "p2+s2")
    cells = scaling_cells(config["scaling"], base, dims.hidden_size)
    scaling_concepts = min(config["scaling"]["concepts"], n_dev)
    work = runs([cell.train_config(base) for cell in cells], scaling_concepts, main_layer)
    work += generation(stream_batches([len(cells) * scaling_concepts * per_concept], batch))
    stages.append(ComputeStage("scaling study (train + generate)", "scaling", [work]))

    # utility, per shard of its first concepts: every question once per concept and steered condition, once unsteered
    utility, per_job = config["utility"], config.get("concepts_per_job")
    steered = 1 + sum(len(method_factors(p, utility["fssv_factors"])) for p in placed.values())  # prompting, methods
    jobs = []
    for i, shard in enumerate(concept_shards(data["eval_concepts"][: utility["concepts"]], per_job)):
        copies, work = [1] * (i == 0) + [len(shard)] * steered, Work()
        for task in UTILITY_TASKS[utility["source"]]:
            questions = [utility["questions_per_task"] * c for c in copies]
            if task.scoring == "cloze":
                work += scoring_work(dims, 4 * sum(questions))  # one sequence per option
            else:
                work += generation(stream_batches(questions, batch), task.max_new_tokens)
        jobs.append(work)
    stages.append(ComputeStage("utility", "utility", jobs))
    # robustness, per shard of its first concepts: every method at its factors over the attacked prompts
    robustness = config["robustness"]
    attack_runs = sum(len(method_factors(p, robustness["fssv_factors"])) for p in placed.values())
    cut = concept_shards(data["eval_concepts"][: robustness["concepts"]], per_job)
    jobs = [generation(stream_batches([len(s) * per_concept] * attack_runs, batch)) for s in cut]
    stages.append(ComputeStage("robustness", "robustness", jobs))

    # LoReFT against PrOSV: two runs from one cache (the rank-1 edit adds nothing measurable)
    compare = min(config["compare_loreft"]["concepts"], len(data["eval_concepts"]))
    work = runs([base, replace(base, intervention="loreft")], compare, main_layer)  # same loss, epochs, data
    stages.append(ComputeStage("LoReFT comparison", "compare_loreft", [work]))
    return stages


def compute_section(
    config: dict,
    accelerator: str = DEFAULT_ACCELERATOR,
    mfu: float = DEFAULT_MFU,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
) -> dict[str, Any]:
    """Tokens, FLOPs and hours on one `accelerator` of every stage that runs the model (a projection
    from the model's shape, not a measurement); ``{"model": ..., "unknown": reason}`` when the model's
    shape cannot be had here."""
    if accelerator not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {accelerator!r}; known: {sorted(ACCELERATORS)}")
    if not 0 < mfu <= 1 or not 0 < bandwidth_efficiency <= 1:
        raise ValueError(f"mfu and bandwidth efficiency must be in (0, 1], got {mfu:g} and {bandwidth_efficiency:g}")
    dims, source = model_dims(config["model"])
    if dims is None:
        return {"model": config["model"], "unknown": source}
    chip = ACCELERATORS[accelerator]
    stages = []
    for stage in count_compute(config, dims):
        total = stage.total
        hours = [job.seconds(chip, mfu, bandwidth_efficiency) / 3600 for job in stage.jobs]
        stages.append(
            {
                "name": stage.name,
                "rule": stage.rule,
                "jobs": len(stage.jobs),
                **asdict(total),
                "gpu_hours": sum(hours),
                "max_hours_per_job": max(hours, default=0.0),
            }
        )
    per_job = config.get("concepts_per_job")
    return {
        "model": config["model"],
        "shape_source": source,
        "shape": asdict(dims),
        "parameters": dims.total_params,
        "accelerator": {"key": accelerator, **asdict(chip)},
        "mfu": mfu,
        "bandwidth_efficiency": bandwidth_efficiency,
        "prompt_tokens": TYPICAL_PROMPT_TOKENS,
        "training_pairs_per_concept": training_pairs_per_concept(config),
        "main_layer": min(config["layers"]),
        "concepts_per_job": per_job,
        "stages": stages,
        "gpu_hours": sum(s["gpu_hours"] for s in stages),
        "max_hours_per_job": max(s["max_hours_per_job"] for s in stages),
    }


def compute_notes(section: dict) -> list[str]:
    """The projection's assumptions, in words, for the printed plan."""
    if "unknown" in section:
        return [f"model compute: not projected for {section['model']} ({section['unknown']})"]
    chip = section["accelerator"]
    return [
        f"model compute is a projection from the shape ({section['shape_source']}; {section['parameters']:,} "
        f"parameters), not a measurement: forward 2 FLOPs per weight and token plus 4 x attention width per "
        f"attended key; backward with frozen weights costs one forward for the weight products (input "
        f"gradients only) and two for the score and value products",
        f"training and prefill at {section['mfu']:g} of {chip['name']}'s {chip['peak_flops'] / 1e12:g} TFLOP/s "
        f"(dense bf16); a decode step reads every weight and the KV cache in bf16 at "
        f"{section['bandwidth_efficiency']:g} of {chip['bandwidth'] / 1e12:g} TB/s, or takes its FLOPs at the "
        f"same MFU if that is longer; nothing for host work (sampling, Python, kernel launches) or model loading",
        f"every prompt {section['prompt_tokens']} tokens, every training response at data.response_tokens, every "
        f"generated response at its full max_new_tokens (upper bounds), {section['training_pairs_per_concept']} "
        f"training pairs per concept; the main methods at layer {section['main_layer']}, the lowest searched "
        f"(the choice is not known before the location search runs)",
        "not counted: the data step, the task-steering experiment, LoReFT's hidden-state spread, judging",
    ]
