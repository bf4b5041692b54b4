"""The paper's reference numbers (Bao et al., ICML 2026) and which of its rows and columns ours match.

Overall scores are the factor-free protocol unless marked post-hoc; location-search cells are
(overall, concept score) on development concepts (docs/method.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from .families import row_family
from .frames import isna

COS_THRESHOLD = 0.96  # the paper's LoReFT-vs-PrOSV direction cosine

PAPER_MODELS = {"G2B": "Gemma-2-2B L10", "G9B": "Gemma-2-9B L20", "Q32B": "Qwen2.5-32B L32"}

# overall score, factor-free protocol unless marked post-hoc
PAPER_MAIN: dict[str, dict[str, float]] = {
    "prompting": {"G2B": 0.698, "G9B": 1.075, "Q32B": 1.060},
    "fssv_lang_posthoc": {"G2B": 0.663, "G9B": 0.788, "Q32B": 0.798},
    "fssv_lang": {"G2B": 0.736, "G9B": 0.821, "Q32B": 0.919},
    "prosv_lang": {"G2B": 0.758, "G9B": 0.859, "Q32B": 1.049},
    "fssv_simpo": {"G2B": 0.756, "G9B": 0.892, "Q32B": 0.947},
    "prosv_simpo": {"G2B": 0.803, "G9B": 0.905, "Q32B": 1.102},
}
PAPER_MAIN_LABEL = {
    "prompting": "prompting",
    "fssv_lang_posthoc": "FSSV lang, post-hoc factor",
    "fssv_lang": "FSSV lang, joint training",
    "prosv_lang": "PrOSV lang",
    "fssv_simpo": "FSSV simpo",
    "prosv_simpo": "PrOSV simpo",
}

# location search, (overall, concept score)
PAPER_LOCATE: dict[str, dict[str, tuple[float, float]]] = {
    "all": {"G2B": (0.65, 0.97), "G9B": (0.86, 1.17), "Q32B": (0.93, 1.27)},
    "prompt": {"G2B": (0.54, 1.12), "G9B": (0.71, 1.41), "Q32B": (0.88, 1.58)},
    "p2+s2": {"G2B": (0.70, 0.82), "G9B": (0.92, 1.14), "Q32B": (1.16, 1.33)},
    "p4+s4": {"G2B": (0.69, 0.85), "G9B": (0.89, 1.09), "Q32B": (1.13, 1.30)},
    "p1+s1": {"G2B": (0.67, 0.79), "G9B": (0.91, 1.12), "Q32B": (1.10, 1.24)},
}


def paper_model(model: str | None) -> tuple[str, bool]:
    """The paper's column for a model name and whether it is the same model.

    Gemma-2-9B -> G9B, Qwen2.5-32B -> Q32B, Gemma-2-2B -> G2B; any other model is compared with
    the Gemma-2-2B column (returned with ``False``: a reference, not a like-for-like number).
    """
    m = (model or "").lower()
    if "gemma-2-9b" in m:
        return "G9B", True
    if "qwen" in m and "32b" in m:
        return "Q32B", True
    if "gemma-2-2b" in m:
        return "G2B", True
    return "G2B", False


def paper_label(model: str | None) -> str:
    col, same = paper_model(model)
    return f"paper, {PAPER_MODELS[col]}" + ("" if same else " (a different model)")


def paper_key(row: Mapping) -> str | None:
    """The PAPER_MAIN row a main-table row corresponds to (None: no paper number)."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    if get("method") == "prompting":
        return "prompting"
    loss, fam = get("loss"), row_family(row)
    if isna(loss):
        return None
    if fam == "posthoc":
        key = f"fssv_{loss}_posthoc"
        return key if get("positions") == "all" and key in PAPER_MAIN else None
    if fam in ("fssv", "prosv") and loss in ("lang", "simpo"):
        return f"{fam}_{loss}"
    return None


# the first author's blog post: BoolQ accuracy (%) of Llama-2-7B, PrOSV (p2+s2) trained at every layer
BLOG_TASK = {"unsteered": 38.0, "fssv": 56.0, "prosv": 63.0, "lora": 68.9}
BLOG_TASK_ARMS = {"unsteered": "unsteered", "fssv_layers": "fssv", "prosv_layers": "prosv", "lora": "lora"}
