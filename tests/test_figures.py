"""Figures a reader can trust: no overlapping text (measured on matplotlib's text bounding boxes),
honest axes, intervals on every score, titles that describe."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import LineCollection
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from test_report import DEV, MODEL, _ratings, accuracy_frame, all_tables

from prosv.report.render import FIGURES, figure_makers

LONG_JUDGE = "offline:f3:gemma-3-270m@48:0123456789ab"
# the default config's names and placements: the shape a first run produces
RENAME = {"alpha_run": "prosv_lang", "beta_run": "fssv_lang", "gamma_run": "prosv_simpo", "delta_run": "fssv_simpo"}
DEFAULT_POSITIONS = ["all", "prompt", "p1+s1", "p2+s2", "p4+s4", "p4", "s2", "s4", "p8+s8"]


def _renamed(df):
    if df is None or "method" not in df.columns:
        return df
    out = df.copy()
    out["method"] = [next((m.replace(a, b) for a, b in RENAME.items() if m.startswith(a)), m) for m in out["method"]]
    if "judge" in out.columns:
        out["judge"] = LONG_JUDGE
    return out


def default_shape_tables():
    """The synthetic tables reshaped like the default run: 9 placements x 3 layers (``all`` best
    overall, so the choice differs from the best cell), the config's method names, a long judge id,
    overall scores as low as the embedded model's."""
    from prosv.experiments.location import choose_location, location_concepts

    tables, _ = all_tables()
    tables = {k: _renamed(v) for k, v in tables.items()}
    main = tables["main"].copy()
    low = [c for c in main.columns if c.startswith("overall")]
    main[low] = ((main[low] - 1.25) * 0.9).clip(lower=0)  # the embedded model's scores: 0.02-0.5
    tables["main"] = main
    rng = np.random.default_rng(3)
    frames = []
    for layer in (5, 10, 20):
        for i, positions in enumerate(DEFAULT_POSITIONS):
            level = 1.7 if positions == "all" else 0.5 + 0.1 * i
            run = {"positions": positions, "loss": "lang", "alpha": 40.0}
            frames.append(_ratings("locate", rng, level=level, concepts=DEV, run=run).assign(layer=layer))
    ratings = pd.concat(frames, ignore_index=True).assign(judge=LONG_JUDGE)
    choice, tables["locate"] = choose_location(ratings, n_boot=300)
    tables["locate_concepts"] = location_concepts(ratings)
    return tables, choice


SHAPES = {"synthetic": all_tables, "default run": default_shape_tables}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@functools.cache
def _tables(shape: str):
    """Each shape's tables, built once (figures only read them)."""
    return SHAPES[shape]()


def test_the_overlap_check_sees_rotated_text_as_drawn():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    kw = dict(rotation=30, transform=ax.transAxes, ha="center", va="center", rotation_mode="anchor")
    a = ax.text(0.5, 0.5, "a long tick label", **kw)
    same = ax.text(0.5, 0.52, "another long label", **kw)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    height = ax.text(0, 0, "a long tick label", transform=ax.transAxes).get_window_extent(r).height  # unrotated
    # a parallel neighbour two text heights away across the text's direction: its axis-aligned box
    # still overlaps (the text is long and tilted), the glyph rectangles do not
    normal = np.array([-np.sin(np.pi / 6), np.cos(np.pi / 6)]) * 2 * height
    x, y = ax.transAxes.inverted().transform(ax.transAxes.transform((0.5, 0.5)) + normal)
    apart = ax.text(x, y, "a long tick label", **kw)
    fig.canvas.draw()
    assert _overlap(a.get_window_extent(r), apart.get_window_extent(r))
    assert not polygons_overlap(text_box(a, r), text_box(apart, r))
    assert polygons_overlap(text_box(a, r), text_box(same, r))
    # the rectangle keeps the unrotated size: its sides are the text's width and height
    corners = text_box(a, r)
    a.set_rotation(0)
    flat = a.get_window_extent(r)
    assert np.hypot(*(corners[1] - corners[0])) == pytest.approx(flat.width, rel=1e-6)
    assert np.hypot(*(corners[2] - corners[1])) == pytest.approx(flat.height, rel=1e-6)
    plt.close(fig)


def _draw(shape: str, name: str):
    tables, choice = _tables(shape)
    fig = figure_makers(tables, MODEL, choice)[name]()
    fig.canvas.draw()
    return fig, fig.canvas.get_renderer()


def _shown(text: Text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def text_box(text: Text, renderer) -> np.ndarray:
    """The four display-space corners of a text's own (rotated) rectangle.

    ``get_window_extent`` gives the axis-aligned box around a rotated text, far larger than the
    glyphs; the rectangle itself has the unrotated width and height, turned by the rotation about
    the centre of that box (a rectangle's centre is its bounding box's centre)."""
    box = text.get_window_extent(renderer)
    angle = np.deg2rad(text.get_rotation())
    rotation = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    w, h = flat.width / 2, flat.height / 2
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    return corners @ np.array([[c, s], [-s, c]]) + [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]


def polygons_overlap(a: np.ndarray, b: np.ndarray, tol: float = 0.5) -> bool:
    """Two convex polygons overlap by more than ``tol`` pixels along every separating direction."""
    for poly in (a, b):
        for i in range(len(poly)):
            edge = poly[(i + 1) % len(poly)] - poly[i]
            normal = np.array([-edge[1], edge[0]]) / (np.hypot(*edge) or 1.0)
            pa, pb = a @ normal, b @ normal
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= tol:
                return False
    return True


def _tick_labels(fig, renderer):
    """(axes title / axis, label text, corners) of every visible tick label inside its axis limits."""
    out = []
    for ax in fig.axes:
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                label = tick.label1
                if _shown(label) and tick.get_visible() and lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    where = f"{ax.get_title() or ax.get_label()}/{which}"
                    out.append((where, label.get_text(), text_box(label, renderer)))
    return out


def _overlap(a, b, tol: float = 0.5) -> bool:
    """Axis-aligned boxes share more than a sliver (``tol`` pixels each way)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def overlapping_tick_labels(fig, renderer) -> list:
    labels = _tick_labels(fig, renderer)
    return [
        (wa, ta, wb, tb) for (wa, ta, a), (wb, tb, b) in itertools.combinations(labels, 2) if polygons_overlap(a, b)
    ]


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", list(FIGURES))
def test_no_tick_labels_overlap_in_any_figure(name, shape):
    fig, renderer = _draw(shape, name)
    assert _tick_labels(fig, renderer), "the figure has tick labels to check"
    clashes = overlapping_tick_labels(fig, renderer)
    assert not clashes, f"{name} ({shape}): overlapping tick labels {clashes[:5]}"


def _error_bar_paths(fig):
    for ax in fig.axes:
        for coll in ax.collections:
            if isinstance(coll, LineCollection):
                for seg in coll.get_segments():
                    if len(seg) >= 2:
                        yield MplPath(ax.transData.transform(np.asarray(seg)))


def _data_texts(fig, renderer):
    """Value labels and annotations inside the axes (not titles, axis labels or tick labels)."""
    out = []
    for ax in fig.axes:
        for t in ax.texts:
            if _shown(t) and t.get_transform() != ax.transAxes:
                out.append((t.get_text(), t.get_window_extent(renderer)))
    return out


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", list(FIGURES))
def test_value_labels_clear_error_bars_legends_and_each_other(name, shape):
    fig, renderer = _draw(shape, name)
    texts = _data_texts(fig, renderer)
    clashes = [(a, b) for (a, ba), (b, bb) in itertools.combinations(texts, 2) if _overlap(ba, bb)]
    assert not clashes, f"{name} ({shape}): value labels overlap {clashes[:5]}"
    bars = list(_error_bar_paths(fig))
    hit = [t for t, box in texts if any(p.intersects_bbox(box.shrunk(0.9, 0.8), filled=False) for p in bars)]
    assert not hit, f"{name} ({shape}): labels on error bars {hit[:5]}"
    legends = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend()]
    under = [t for t, box in texts for lg in legends if _overlap(box, lg)]
    assert not under, f"{name} ({shape}): labels under a legend {under[:5]}"


# --------------------------------------------------------------------------------------------
# honest titles, axes and uncertainty


def _figure(name, tables=None, choice=None):
    if tables is None:
        tables, choice = _tables("default run")
    fig = figure_makers(tables, MODEL, choice)[name]()
    fig.canvas.draw()
    return fig


def _all_text(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if _shown(t)]


@pytest.mark.parametrize("name", list(FIGURES))
def test_titles_describe_and_the_judge_id_is_a_footnote(name):
    fig = _figure(name)
    title = fig._suptitle.get_text() if fig._suptitle else " ".join(ax.get_title() for ax in fig.axes)
    assert LONG_JUDGE not in title, title
    assert "collapses" not in title.lower(), "a title states what is drawn, not the paper's claim"
    if name in ("main_scores", "locate_heatmap", "robustness_vs_utility"):
        assert any(t.get_text() == f"judge: {LONG_JUDGE}" for t in fig.texts), "the judge's id is a footnote"


@pytest.mark.parametrize("steps", [4, 1])
def test_step_ticks_are_whole_numbers_and_alpha_ticks_plain_numbers(steps):
    tables, choice = all_tables()
    losses = tables["losses"]
    tables["losses"] = losses[losses["step"] < steps]  # a short run: matplotlib would tick fractions of a step
    tables["loreft"] = tables["loreft"][tables["loreft"]["step"] < steps]
    for name in ("loss_curves", "loreft_vs_prosv"):
        fig = _figure(name, tables, choice)
        step_axes = [ax for ax in fig.axes if ax.get_xlabel() == "optimizer step"]
        assert step_axes
        for ax in step_axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)
            # every step is visible: a one-step curve is a marker, not an invisible line
            assert all(line.get_marker() not in (None, "None", "") for line in ax.get_lines()), name
    alpha = next(ax for ax in _figure("loss_curves", tables, choice).axes if "alpha" in ax.get_ylabel())
    labels = [t.get_text() for t in alpha.get_yticklabels() if t.get_text()]
    assert len(labels) >= 2 and all(float(x) > 0 for x in labels), labels  # "20", not "$\\mathdefault{10^{1}}$"


def _heatmap_norms(fig):
    from matplotlib.collections import QuadMesh

    return {ax.get_title(): c.norm for ax in fig.axes for c in ax.collections if isinstance(c, QuadMesh)}


def test_colour_scales_show_scores_on_their_scale_and_say_when_they_stretch():
    fig = _figure("scaling")
    norms = _heatmap_norms(fig)
    score = next(n for t, n in norms.items() if t.startswith("overall score"))
    assert (score.vmin, score.vmax) == (0.0, 2.0)
    loss = next(n for t, n in norms.items() if t.startswith("last-epoch"))
    sc = _tables("default run")[0]["scaling"]
    grid = sc[sc.kind == "grid"]
    assert loss.vmin == pytest.approx(grid.final_loss.min()) and loss.vmax == pytest.approx(grid.final_loss.max())
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert any(f"colours span {grid.final_loss.min():.2f}-{grid.final_loss.max():.2f} only" in x for x in labels)
    for n in _heatmap_norms(_figure("locate_heatmap")).values():
        assert (n.vmin, n.vmax) == (0.0, 2.0)


@pytest.mark.parametrize("name", ["main_scores", "scaling", "loreft_vs_prosv", "utility"])
def test_bar_axes_start_at_zero(name):
    from matplotlib.patches import Rectangle

    fig = _figure(name)
    for ax in fig.axes:
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() > 0 and p.get_height() != 0]
        if not bars:
            continue
        horizontal = len({round(p.get_x(), 6) for p in bars}) == 1 and len(bars) > 1
        low = ax.get_xlim()[0] if horizontal else ax.get_ylim()[0]
        assert low == 0, (name, ax.get_title(), low)


def _error_segments(ax):
    return [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]


def _score_test_bounds(correct: float, n: float, z: float) -> tuple[float, float]:
    """Where (p_hat - p)^2 = z^2 p (1 - p) / n: the roots of a quadratic in p (the Wilson bounds)."""
    p_hat = correct / n
    roots = np.roots([1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat])
    return float(min(roots.real)), float(max(roots.real))


def test_utility_shows_wilson_intervals_and_zero_accuracy():
    from matplotlib.container import BarContainer
    from scipy.stats import norm

    from prosv.report import tables as T

    acc = accuracy_frame()
    zero = (acc.method == "beta_run") & (acc.factor == 1.0) & (acc.task == "arithmetic")
    acc.loc[zero, ["correct", "accuracy"]] = 0.0
    acc["correct"] = acc["correct"].round()
    tables, choice = all_tables()
    tables["utility"] = T.build_utility_table(acc)
    ax = _figure("utility", tables, choice).axes[0]
    z = norm.ppf(0.975)
    pooled = acc.assign(label=[m if f == 1.0 else f"{m} x{f:g}" for m, f in zip(acc.method, acc.factor)])
    pooled = pooled.groupby(["label", "task"])[["correct", "n"]].sum()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    checked = 0
    for bars in (c for c in ax.containers if isinstance(c, BarContainer)):
        segments = bars.errorbar.lines[2][0].get_segments()
        for label, patch, seg in zip(labels, bars.patches, segments):
            k, n = pooled.loc[(label, bars.get_label())]
            lo, hi = sorted((seg[0][1], seg[1][1]))
            assert patch.get_height() == pytest.approx(k / n)
            assert (lo, hi) == pytest.approx(_score_test_bounds(k, n, z), abs=1e-9), (label, bars.get_label())
            checked += 1
    assert checked == len(pooled)
    # the zero bar has no height: a thick mark on the axis shows it
    marks = [s for s in _error_segments(ax) if np.allclose(np.asarray(s)[:, 1], 0)]
    assert marks and all(
        c.get_linewidth()[0] >= 3
        for c in ax.collections
        if any(np.allclose(np.asarray(s)[:, 1], 0) for s in c.get_segments())
    )


def test_every_judge_score_has_an_interval():
    fig = _figure("main_scores")
    ratings = next(ax for ax in fig.axes if ax.get_title().startswith("Concept, instruction"))
    n_bars = len([p for p in ratings.patches if p.get_height() > 0])
    assert len(_error_segments(ratings)) >= n_bars
    for name, title in (
        ("locate_heatmap", "overall score"),
        ("locate_heatmap", "concept score"),
        ("scaling", "overall"),
    ):
        ax = next(a for a in _figure(name).axes if a.get_title().startswith(title))
        cells = [t.get_text() for t in ax.texts if t.get_text()]
        assert cells and all("[" in c and "]" in c for c in cells), (name, title, cells[:3])


def test_two_losses_of_one_family_differ_by_more_than_a_shade():
    def by_run(pairs):
        out = {}
        for label, look in pairs:
            run = next((r for r in ("prosv_lang", "prosv_simpo") if label.startswith(r)), None)
            out.setdefault(run, look)
        return out

    alpha = next(ax for ax in _figure("loss_curves").axes if "alpha" in ax.get_ylabel())
    lines = by_run((line.get_label(), line.get_linestyle()) for line in alpha.get_lines())
    assert lines["prosv_lang"] != lines["prosv_simpo"], lines
    ax = _figure("robustness_vs_utility").axes[0]
    points = by_run(
        (c.get_label(), (c.lines[0].get_linestyle(), c.lines[0].get_markerfacecolor())) for c in ax.containers
    )
    assert points["prosv_lang"][1] != points["prosv_simpo"][1], points
    bars = _figure("main_scores").axes[0]
    hatches = by_run((t.get_text(), p.get_hatch()) for t, p in zip(bars.get_xticklabels(), bars.patches))
    assert hatches["prosv_lang"] != hatches["prosv_simpo"], hatches


def test_location_heatmap_marks_the_choice_and_the_best_cell_of_any_placement():
    from matplotlib.patches import Rectangle

    tables, choice = default_shape_tables()
    assert choice["positions"] != "all"  # the data make `all` the best overall cell, not a candidate
    fig = _figure("locate_heatmap", tables, choice)
    ax = fig.axes[0]
    positions = [t.get_text() for t in ax.get_xticklabels()]
    layers = [int(t.get_text()) for t in ax.get_yticklabels()]
    frames = {
        (p.get_x(), p.get_y()): p.get_linestyle()
        for p in ax.patches
        if isinstance(p, Rectangle) and not p.get_fill() and p.get_linewidth() > 1
    }
    chosen = (positions.index(choice["positions"]), layers.index(choice["layer"]))
    loc = tables["locate"]
    best = loc.sort_values("overall", ascending=False).iloc[0]
    assert best.positions == "all"
    best_cell = (positions.index("all"), layers.index(int(best.layer)))
    assert frames.get(chosen) == "-" and frames.get(best_cell) == "--", frames
    assert "prompt-only" in fig._suptitle.get_text()


def test_zero_scores_are_drawn_not_left_blank():
    tables, choice = all_tables()
    main = tables["main"].copy()
    zero = main.method == "beta_run"
    main.loc[zero, ["overall", "overall_lo", "overall_hi"]] = 0.0
    main.loc[zero, ["concept_score", "concept_score_lo", "concept_score_hi"]] = 0.0
    tables["main"] = main
    for ax in _figure("main_scores", tables, choice).axes[:2]:
        marks = [
            c
            for c in ax.collections
            if isinstance(c, LineCollection) and c.get_linewidth()[0] >= 3
            for seg in c.get_segments()
            if np.allclose(np.asarray(seg)[:, 1], 0)
        ]
        assert marks, ax.get_title()
