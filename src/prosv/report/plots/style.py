"""What every figure shares: the theme, titles and footnotes, colours by family, styles by loss,
readable ticks, colour scales that say what they span, and atomic saving."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ...files import atomic_write

SCORE_RANGE = (0.0, 2.0)  # every judge rating and the overall score live on 0-2
FOOTNOTE_FONT = 7


def style():
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.15)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "axes.titleweight": "bold",
            "axes.titlesize": 11,
            "legend.frameon": False,
        }
    )


def figure_title(what: str, model: str | None = None, protocol: str | None = None) -> str:
    """A title that describes what is drawn (never what it should show), with model and protocol."""
    bits = [b for b in (model and f"model {model}", protocol and f"protocol {protocol}") if b]
    return what + ("\n" + ", ".join(bits) if bits else "")


def count(n, noun: str) -> str:
    """``1 concept``, ``4 concepts`` (n as the tables give it: a number or a joined string)."""
    return f"{n} {noun}" if str(n) == "1" else f"{n} {noun}s"


def finish(fig, title: str, notes: Sequence[str | None] = (), legend: Sequence | None = None) -> None:
    """Suptitle, layout, a figure-wide legend (``legend``: handles) under the axes, and footnotes (the
    judge's id, how to read the figure) under that."""
    notes = [n for n in notes if n]
    fig.suptitle(title, fontsize=11)
    height = fig.get_figheight()
    line = 0.15  # inches per footnote line
    legend_room = 0.4 if legend else 0.0
    bottom = (0.04 + line * len(notes) + legend_room) / height if notes or legend else 0
    fig.tight_layout(rect=(0, bottom, 1, 1))
    for i, note in enumerate(reversed(notes)):
        fig.text(0.005, (0.02 + line * i) / height, note, ha="left", va="bottom", fontsize=FOOTNOTE_FONT, color="#555")
    if legend:
        y = (0.04 + line * len(notes)) / height
        fig.legend(handles=list(legend), loc="lower center", bbox_to_anchor=(0.5, y), ncol=len(legend), fontsize=8)


def judge_note(judge: str | None) -> str | None:
    return f"judge: {judge}" if judge else None


FAMILY_COLOURS = {
    "fssv": "Reds",
    "posthoc": "Reds",
    "prosv": "Blues",
    "prompt": "Purples",
    "fixed": "Greens",
    "loreft": "Oranges",
}


def palette(families_by_name: dict[str, str]) -> dict[str, tuple]:
    """Stable colours by family: FSSV reds, PrOSV blues, whole prompt purples, baselines greys."""
    fixed = {"unsteered": "#9e9e9e", "prompting": "#616161"}
    counters: dict[str, int] = {}
    other = sns.color_palette("Set2", 8)
    out = {}
    for name, fam in families_by_name.items():
        if name in fixed:
            out[name] = fixed[name]
            continue
        k = counters.get(fam, 0)
        counters[fam] = k + 1
        out[name] = sns.color_palette(FAMILY_COLOURS[fam], 6)[2 + k % 4] if fam in FAMILY_COLOURS else other[k % 8]
    return out


LINESTYLES = ("-", "--", ":", "-.")
HATCHES = ("", "..", "xx", "oo")


def loss_styles(losses: Iterable) -> dict[str, dict]:
    """Per loss (from the data, in sorted order): a line style, a bar hatch and filled or open markers,
    so two losses of one family differ by more than a shade of its colour."""
    names = sorted({str(x) for x in losses if x is not None and str(x) not in ("", "None", "nan", "<NA>")})
    return {
        name: {"ls": LINESTYLES[i % 4], "hatch": HATCHES[i % 4], "filled": i % 2 == 0} for i, name in enumerate(names)
    }


def loss_style(styles: dict[str, dict], loss) -> dict:
    return styles.get(str(loss), {"ls": "-", "hatch": "", "filled": True})


def integer_ticks(axis) -> None:
    """Whole-number ticks (optimizer steps, epochs), even over a range holding a single step."""
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    lo, hi = axis.get_view_interval()
    if hi - lo < 2:  # one or two steps: matplotlib would zoom in to fractions of a step
        centre = round((lo + hi) / 2)
        axis.set_view_interval(min(lo, centre - 1), max(hi, centre + 1), ignore=True)


def step_marker(n_steps: int) -> str | None:
    """Markers on curves too short to read as lines (a single step draws no line at all)."""
    return "o" if n_steps <= 12 else None


def mark_zero_bars(ax, xs, heights, width: float, colours) -> None:
    """A bar of height 0 draws nothing: a thick mark on the axis shows it is there."""
    heights = np.asarray(heights, dtype=float)
    zero = np.isclose(heights, 0.0)
    if zero.any():
        xs = np.asarray(xs, dtype=float)
        colours = colours if isinstance(colours, (list, tuple)) and len(colours) == len(xs) else [colours] * len(xs)
        picked = [c for c, z in zip(colours, zero) if z]
        ax.hlines(np.zeros(zero.sum()), xs[zero] - width / 2, xs[zero] + width / 2, colors=picked, lw=4, zorder=4)


def readable_log_ticks(axis) -> None:
    """Log-scale ticks at 1, 2 and 5 per decade, written as plain numbers (not 10^k)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def colour_span_label(what: str, values, full: tuple[float, float] | None = None) -> tuple[dict, str]:
    """Colour limits and a colourbar label. Scores take their full scale; anything else spans only its
    data, and the label says so (a 2.91-3.04 spread must not look like 0-2)."""
    if full is not None:
        return {"vmin": full[0], "vmax": full[1]}, f"{what} (full {full[0]:g}-{full[1]:g} scale)"
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {}, what
    lo, hi = float(v.min()), float(v.max())
    return {"vmin": lo, "vmax": hi}, f"{what}\n(colours span {lo:.2f}-{hi:.2f} only)"


def interval_annotations(means, lo, hi) -> pd.DataFrame:
    """Heatmap cell text: the mean over its interval ("1.23\n[1.10, 1.35]"); empty where there is no mean."""
    text = pd.DataFrame("", index=means.index, columns=means.columns, dtype=object)
    for i in means.index:
        for c in means.columns:
            m = means.loc[i, c]
            if not pd.isna(m):
                text.loc[i, c] = f"{m:.2f}\n[{lo.loc[i, c]:.2f}, {hi.loc[i, c]:.2f}]"
    return text


def save_figure(fig, path) -> Path:
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, bbox_inches="tight", format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def placeholder(message: str):
    """A small figure that says why the real one could not be drawn."""
    style()
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def error_bars(mean, lo, hi) -> np.ndarray:
    """Asymmetric error bar lengths from an interval (never negative)."""
    mean, lo, hi = (np.asarray(x, dtype=float) for x in (mean, lo, hi))
    return np.vstack([np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)])
