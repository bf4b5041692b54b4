"""Jobs per rule, judge requests and tokens, a price: what a workflow config costs outside the model.

:func:`count_workflow` is the one place that mirrors the rule files (workflow/rules/*.smk) and the
experiments' response counts: a change to either is a change there. Requests follow the API judge
(:mod:`prosv.judges.llm`): one chat request per response and axis. Tokens are estimated, not
measured: no tokenizer of the judge's model is at hand offline, so text is counted at
:data:`CHARS_PER_TOKEN` characters per token. :func:`make_plan` adds the model compute
(:mod:`.compute`).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .compute import (
    DEFAULT_ACCELERATOR,
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_MFU,
    Work,
    compute_notes,
    compute_section,
)

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"

# a common rule of thumb for English text under GPT-style tokenizers
CHARS_PER_TOKEN = 4

# gpt-4o-mini's list price (OpenAI, USD per million tokens): the paper configs' judge
DEFAULT_PRICE_PER_MILLION_INPUT = 0.15
DEFAULT_PRICE_PER_MILLION_OUTPUT = 0.60


def load_config(path: str | Path) -> dict:
    """A workflow config file checked against the workflow's schema, with the schema's defaults filled
    in as the workflow's own validation fills them (a --configfile replaces the default config, so
    nothing else is merged in)."""
    import jsonschema
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not YAML ({' '.join(str(err).split())})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a mapping of config keys")
    schema = yaml.safe_load(SCHEMA.read_text())
    try:
        _validator_with_defaults(jsonschema.Draft202012Validator)(schema).validate(config)
    except jsonschema.ValidationError as err:
        key = ".".join(str(part) for part in err.absolute_path)
        raise ValueError(f"{path}: {f'config key {key!r}: ' if key else ''}{err.message}") from None
    return config


def _validator_with_defaults(validator_class):
    """A validator that sets each property's schema default before checking it (the recipe of the
    jsonschema FAQ, which `snakemake.utils.validate(set_default=True)` uses too)."""
    from jsonschema import validators

    check_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


@dataclass(frozen=True)
class JudgedStage:
    """Generations the judge rates: the rule that writes them, its judge jobs, how many responses."""

    name: str
    rule: str
    judge_jobs: int
    responses: int


@dataclass
class WorkflowCounts:
    jobs: dict[str, int]  # rule -> jobs of the default target, in the order the workflow runs them
    judged: list[JudgedStage]
    shards: int  # of the evaluation concepts (concepts_per_job)


def _section(config: dict, key: str) -> dict:
    if key not in config:
        raise ValueError(f"config key {key!r}: missing (the workflow reads it)")
    return config[key]


def count_workflow(config: dict) -> WorkflowCounts:
    """Jobs per rule of the default target (`snakemake` with no target) and the responses of every
    stage the judge rates, for a config as :func:`load_config` returns it.

    With S shards of the evaluation concepts (`concepts_per_job`), M methods, P of them with
    `posthoc_factor` and B baselines: `train`, `generate` run M*S jobs, `generate_grid` P*S,
    `generate_baseline` B*S, `merge_vectors` M, `merge_ratings` M+B and `merge_grid_ratings` P;
    `utility` and `robustness` one job per shard of their first concepts, each stage one merge;
    `judge` rates every generation file. Sharding multiplies jobs, never responses.
    """
    # long: one entry per rule and judged stage, in the rule files' order, so a rule change is a line here
    from ..experiments import method_factors, scaling_cells
    from ..experiments.task import LORA, task_arms, task_section
    from ..jobs import LOCATED, concept_shards, train_config
    from ..models import model_shape

    data, evaluate, robustness = config["data"], _section(config, "evaluate"), _section(config, "robustness")
    methods = config["methods"]
    eval_concepts, dev_concepts = len(data["eval_concepts"]), len(data["dev_concepts"])
    per_concept = evaluate["instructions_per_concept"]
    shards = len(concept_shards(data["eval_concepts"], config.get("concepts_per_job")))
    # utility and robustness: their first concepts, cut like the split
    stage_shards = {
        stage: len(concept_shards(data["eval_concepts"][: config[stage]["concepts"]], config.get("concepts_per_job")))
        for stage in ("utility", "robustness")
    }
    n_methods = len(methods)
    n_posthoc = sum(bool(entry.get("posthoc_factor")) for entry in methods.values())
    n_baselines = len(evaluate["baselines"])
    n_layers = len(config["layers"])
    variants = len(dict.fromkeys(config["locate"]["positions"]))  # the rule files drop repeats

    # scaling: every cell on the first `scaling.concepts` development concepts; the model's width
    # changes the cells' rates only, so any width counts them when the model's config is not here
    base = train_config(config, config["locate"]["method"], "p2+s2")
    shape = model_shape(config["model"])
    cells = scaling_cells(config["scaling"], base, shape.hidden_size if shape else 1)
    scaling_concepts = min(config["scaling"]["concepts"], dev_concepts)

    # robustness: the first `robustness.concepts` evaluation concepts, each method at its factors
    # (a `located` method takes a prompt-only placement: factor 1 only)
    if robustness["concepts"] > eval_concepts:
        raise ValueError(
            f"config key 'robustness.concepts': {robustness['concepts']} concepts asked for, "
            f"'data.eval_concepts' has {eval_concepts}"
        )
    placements = ["prompt" if entry["positions"] == LOCATED else entry["positions"] for entry in methods.values()]
    attack_runs = sum(len(method_factors(p, robustness["fssv_factors"])) for p in placements)

    judged = [
        JudgedStage(
            "main table: learned factor", "generate", n_methods * shards, n_methods * eval_concepts * per_concept
        ),
        JudgedStage(
            "main table: factor grid",
            "generate_grid",
            n_posthoc * shards,
            n_posthoc * eval_concepts * per_concept * len(evaluate["factor_grid"]),
        ),
        JudgedStage(
            "main table: baselines",
            "generate_baseline",
            n_baselines * shards,
            n_baselines * eval_concepts * per_concept,
        ),
        JudgedStage(
            "location search", "generate_locate", n_layers * variants, n_layers * variants * dev_concepts * per_concept
        ),
        JudgedStage("scaling study", "scaling", 1, len(cells) * scaling_concepts * per_concept),
        JudgedStage(
            "robustness", "robustness", stage_shards["robustness"], attack_runs * robustness["concepts"] * per_concept
        ),
    ]
    written = _writer_responses(data, config["data"]["dev_concepts"] + config["data"]["eval_concepts"])
    if written:  # the data step rates what the model wrote (no judge job of its own)
        judged.insert(0, JudgedStage("training data (at most)", "prepare_data", 0, written))
    jobs = {
        "prepare_model": 1,
        "prepare_concepts": 1,
        "prepare_data": 2,  # one per split (dev, eval)
        "merge_pairs": 1,
        "train_locate": n_layers * variants,
        "generate_locate": n_layers * variants,
        "judge": sum(stage.judge_jobs for stage in judged),
        "locate": 1,
        "train": n_methods * shards,
        "merge_vectors": n_methods,
        "generate": n_methods * shards,
        "generate_grid": n_posthoc * shards,
        "generate_baseline": n_baselines * shards,
        "merge_ratings": n_methods + n_baselines,
        "merge_grid_ratings": n_posthoc,
        "scaling": 1,
        "utility": stage_shards["utility"],
        "merge_utility": 1,
        "robustness": stage_shards["robustness"],
        "merge_robustness_ratings": 1,
        "compare_loreft": 1,
        "aggregate": 1,
        "figures": 1,
    }
    task = task_section(config)
    if task.get("in_default"):
        arms = task_arms(task)
        jobs["task_data"] = 1
        jobs["task_train"] = sum(arm.kind == "sv" for arm in arms)
        jobs["task_train_lora"] = sum(arm.name == LORA for arm in arms)
        jobs["task_answer"] = len(arms)  # the unsteered model answers too
        jobs["task_steering"] = 1
    jobs["all"] = 1
    return WorkflowCounts({rule: n for rule, n in jobs.items() if n}, judged, shards)


def _writer_responses(data: dict, concept_ids: list[int]) -> int:
    """Responses the embedded data step's judge filter rates at most: every attempt at every drawn
    instruction (the judge sees only those that pass the keyword filters) and every exemplar."""
    writer = data.get("writer") or {}
    if data["source"] != "embedded" or writer.get("min_concept_rating") is None:
        return 0
    from ..data.embedded import load_embedded

    embedded = load_embedded(data.get("data_dir"))
    drawn = min(data["instructions_per_concept"], len(embedded["instructions_train"]))
    exemplars = int(embedded["exemplars"].concept_id.isin(concept_ids).sum())
    return len(concept_ids) * drawn * writer.get("attempts", 1) + exemplars


def judge_settings(config: dict) -> dict[str, Any]:
    """The API judge's settings that set its cost: the config's `judge` keys over OpenAIJudge's own
    defaults (what the judge job would use)."""
    from ..judges.llm import OpenAIJudge

    defaults = {
        name: p.default
        for name, p in inspect.signature(OpenAIJudge.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, **config["judge"]}


def typical_lengths() -> tuple[float, float]:
    """Mean characters of a concept description and of an evaluation instruction in the shipped data
    (data/): the stand-ins for the texts the rubric prompts carry."""
    from ..data import read_concepts, read_instructions

    concepts, instructions = read_concepts(), read_instructions("eval")
    return float(concepts.concept.str.len().mean()), float(instructions.instruction.str.len().mean())


def input_tokens_per_request(system_prompt: str | None, response_tokens: int) -> dict[str, float]:
    """Estimated prompt tokens of one request per axis: the real rubric messages (judge_messages) with
    the typical concept and instruction, at CHARS_PER_TOKEN, plus the response at its token budget.
    The chat format's few tokens per message are not counted."""
    from ..judges.base import AXES
    from ..judges.llm import RUBRICS, judge_messages

    concept_chars, instruction_chars = typical_lengths()
    out = {}
    for axis in AXES:
        chars = sum(len(m["content"]) for m in judge_messages(axis, "", "", "", system_prompt))
        chars += concept_chars * ("{concept}" in RUBRICS[axis]) + instruction_chars * ("{instruction}" in RUBRICS[axis])
        out[axis] = chars / CHARS_PER_TOKEN + response_tokens
    return out


@dataclass
class Plan:
    config: str
    jobs: dict[str, int]
    judged: list[JudgedStage]
    judge: dict[str, Any]  # kind, model, requests, tokens, how they were estimated
    price: dict[str, float]  # rates and USD
    notes: list[str] = field(default_factory=list)
    compute: dict[str, Any] | None = None  # compute_section: tokens, FLOPs, accelerator hours per stage

    @property
    def total_jobs(self) -> int:
        return sum(self.jobs.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "jobs": dict(self.jobs),
            "total_jobs": self.total_jobs,
            "judged": [
                {**asdict(s), "requests": s.responses * self.judge["requests_per_response"]} for s in self.judged
            ],
            "judge": dict(self.judge),
            "price": dict(self.price),
            "compute": self.compute,
            "notes": list(self.notes),
        }

    def format(self) -> str:
        lines = [f"plan for {self.config}", ""]
        width = max(len(r) for r in [*self.jobs, "total"])
        lines += [f"{'rule':<{width}}  {'jobs':>6}", f"{'-' * width}  {'-' * 6}"]
        lines += [f"{rule:<{width}}  {n:>6}" for rule, n in self.jobs.items()]
        lines += [f"{'total':<{width}}  {self.total_jobs:>6}", ""]

        per = self.judge["requests_per_response"]
        rows = [(s.name, s.judge_jobs, s.responses, s.responses * per) for s in self.judged]
        rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)))
        width = max(len(r[0]) for r in rows)
        head = f"{'judged stage':<{width}}  {'judge jobs':>10}  {'responses':>10}  {'requests':>10}"
        lines += [head, "-" * len(head)]
        lines += [f"{name:<{width}}  {jobs:>10,}  {resp:>10,}  {req:>10,}" for name, jobs, resp, req in rows]
        lines.append("")

        j, p = self.judge, self.price
        who = f"{j['kind']} ({j['model']})" if j.get("model") else j["kind"]
        lines.append(f"judge: {who}; {per} requests per response ({', '.join(j['axes'])})")
        lines.append(f"judge requests: {j['requests']:,}")
        lines.append(
            f"input tokens:   {j['input_tokens']:,} (estimate: about {j['input_tokens_per_request']:,.0f} per request)"
        )
        lines.append(
            f"output tokens:  {j['output_tokens']:,} at most (judge.max_tokens = {j['max_tokens']} per request)"
        )
        if j["api"]:
            lines.append(
                f"price: ${p['input_usd']:,.2f} input + ${p['output_usd']:,.2f} output = ${p['total_usd']:,.2f} "
                f"(USD {p['per_million_input']:g} / {p['per_million_output']:g} per million input / output tokens)"
            )
        else:
            lines.append("price: $0 (the offline judge sends no API requests)")
        if j.get("hours_at_rate_limit") is not None:
            lines.append(
                f"judging time at requests_per_minute = {j['requests_per_minute']}: at least "
                f"{j['hours_at_rate_limit']:,.1f} h for one judge job at a time (each job keeps its own limit)"
            )
        if self.compute and "stages" in self.compute:
            lines += ["", *format_compute(self.compute)]
        lines += ["", *(f"note: {n}" for n in self.notes)]
        return "\n".join(lines)


def format_compute(section: dict) -> list[str]:
    """The compute section as a table: tokens in millions, FLOPs in PFLOP, hours on the accelerator."""
    chip = section["accelerator"]
    lines = [
        f"model compute on one {chip['name']} (projection: MFU {section['mfu']:g}, "
        f"{section['bandwidth_efficiency']:g} of memory bandwidth while decoding)"
    ]
    head = ["stage", "jobs", "train fwd Mtok", "train bwd Mtok", "prefill Mtok", "decoded Mtok", "PFLOP", "GPU-h"]
    head.append("max h/job")
    rows = []
    for s in [*section["stages"], {"name": "total", **_stage_totals(section["stages"])}]:
        rows.append(
            [
                s["name"],
                f"{s['jobs']:,}",
                f"{(s['prefix_tokens'] + s['forward_tokens']) / 1e6:,.1f}",
                f"{s['backward_tokens'] / 1e6:,.1f}",
                f"{s['prefill_tokens'] / 1e6:,.2f}",
                f"{s['decoded_tokens'] / 1e6:,.2f}",
                f"{(s['compute_flops'] + s['decode_flops']) / 1e15:,.1f}",
                f"{s['gpu_hours']:,.3f}",
                f"{s['max_hours_per_job']:,.3f}",
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    lines += [line(head), "-" * len(line(head)), *map(line, rows[:-1]), "-" * len(line(head)), line(rows[-1])]
    lines.append(
        "train fwd: blocks 0..L once per sequence (the prefix cache), then the unsteered reference and every "
        "epoch through the blocks after L; train bwd: every epoch back through the blocks after L"
    )
    return lines


def _stage_totals(stages: list[dict]) -> dict:
    keys = ["jobs", *Work.__dataclass_fields__, "gpu_hours"]
    out = {k: sum(s[k] for s in stages) for k in keys}
    out["max_hours_per_job"] = max((s["max_hours_per_job"] for s in stages), default=0.0)
    return out


def _price(api: bool, input_tokens: int, output_tokens: int, per_million_input: float, per_million_output: float):
    """USD at the given rates; nothing for the offline judge, which sends no request."""
    input_usd = input_tokens / 1e6 * per_million_input if api else 0.0
    output_usd = output_tokens / 1e6 * per_million_output if api else 0.0
    return {
        "per_million_input": per_million_input,
        "per_million_output": per_million_output,
        "input_usd": input_usd,
        "output_usd": output_usd,
        "total_usd": input_usd + output_usd,
    }


def make_plan(
    config: dict,
    source: str = "config",
    *,
    price_per_million_input: float = DEFAULT_PRICE_PER_MILLION_INPUT,
    price_per_million_output: float = DEFAULT_PRICE_PER_MILLION_OUTPUT,
    accelerator: str = DEFAULT_ACCELERATOR,
    mfu: float = DEFAULT_MFU,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
) -> Plan:
    """Jobs, judge requests, tokens and price of a loaded config (``source`` names it in the output),
    and the model compute of its stages on one `accelerator` (:func:`compute_section`)."""
    from ..judges.base import AXES

    counts = count_workflow(config)
    settings = judge_settings(config)
    api = settings["kind"] != "offline"
    responses = sum(s.responses for s in counts.judged)
    requests = responses * len(AXES)  # OpenAIJudge.rate_many: one request per response and axis
    per_axis = input_tokens_per_request(settings["system_prompt"], config["evaluate"]["max_new_tokens"])
    input_tokens = round(responses * sum(per_axis.values()))
    output_tokens = requests * int(settings["max_tokens"])
    rpm = settings.get("requests_per_minute")
    judge = {
        "kind": settings["kind"],
        "api": api,
        "model": settings.get("model"),
        "axes": list(AXES),
        "requests_per_response": len(AXES),
        "requests": requests,
        "input_tokens": input_tokens,
        "input_tokens_per_request": input_tokens / requests if requests else 0.0,
        "output_tokens": output_tokens,
        "max_tokens": int(settings["max_tokens"]),
        "chars_per_token": CHARS_PER_TOKEN,
        "requests_per_minute": rpm if api else None,
        "hours_at_rate_limit": requests / rpm / 60 if api and rpm else None,
    }
    price = _price(api, input_tokens, output_tokens, price_per_million_input, price_per_million_output)
    notes = [
        f"tokens are estimated at {CHARS_PER_TOKEN} characters per token (no tokenizer of the judge is loaded): "
        f"the rubric prompts with the shipped data's mean concept and instruction lengths, each response "
        f"at evaluate.max_new_tokens = {config['evaluate']['max_new_tokens']} tokens (shorter when it stops early); "
        f"output at judge.max_tokens, an upper bound",
        "counts assume an empty judge cache: a request answered from the cache costs nothing",
    ]
    if not api:
        notes.insert(
            0,
            "the offline judge sends no API requests: the requests and tokens are what an API judge would send",
        )
    if counts.shards > 1:
        notes.append(
            f"concepts_per_job = {config['concepts_per_job']}: the evaluation concepts run in {counts.shards} shards"
        )
    compute = compute_section(config, accelerator, mfu, bandwidth_efficiency)
    notes += compute_notes(compute)
    return Plan(source, counts.jobs, counts.judged, judge, price, notes, compute)
