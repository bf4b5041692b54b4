"""Figures, tables and SUMMARY.md from small synthetic tables (no model; seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("seaborn")

from matplotlib.image import imread  # noqa: E402

from prosv import figures as F  # noqa: E402

MODEL = "smollm2-135m"
JUDGE = "offline-v1"
METHODS = {
    "prosv_lang": {"positions": "p2+s2", "loss": "lang"},
    "fssv_lang": {"positions": "all", "loss": "lang", "posthoc_factor": True},
    "prosv_simpo": {"positions": "p2+s2", "loss": "simpo"},
    "fssv_simpo": {"positions": "all", "loss": "simpo"},
}


# --------------------------------------------------------------------------------------------
# synthetic tables in the aggregate rule's schemas


def main_table(prosv_better: bool = True) -> pd.DataFrame:
    hi, lo = (0.80, 0.60) if prosv_better else (0.60, 0.80)
    rows = [
        ("unsteered", None, None, None, "factor_free", 0.20, np.nan),
        ("prompting", None, None, None, "factor_free", 0.70, np.nan),
        ("fssv_lang_posthoc", "lang", 10, "all", "factor_grid", 0.55, 3.0),
        ("fssv_lang", "lang", 10, "all", "factor_free", lo, 2.0),
        ("prosv_lang", "lang", 10, "p2+s2", "factor_free", hi, 40.0),
        ("fssv_simpo", "simpo", 10, "all", "factor_free", lo - 0.05, 2.5),
        ("prosv_simpo", "simpo", 10, "p2+s2", "factor_free", hi + 0.05, 45.0),
    ]
    out = pd.DataFrame(rows, columns=["method", "loss", "layer", "positions", "protocol", "overall", "mean_alpha"])
    out["layer"] = out["layer"].astype("Int64")
    out["judge"] = JUDGE
    out["n_concepts"] = 6
    out["overall_lo"] = out["overall"] - 0.05
    out["overall_hi"] = out["overall"] + 0.05
    out["concept_score"] = out["overall"] + 0.3
    out["instruction_score"] = 1.5
    out["fluency_score"] = 1.6
    out["mean_factor"] = np.where(out["positions"].isna(), np.nan, 1.0)
    return out


def losses_table(with_fixed: bool = True, fixed_better: bool = False) -> pd.DataFrame:
    rows = []
    runs = [("prosv_lang", "p2+s2", "lang"), ("fssv_lang", "all", "lang"), ("prosv_simpo", "p2+s2", "simpo")]
    if with_fixed:
        runs.append(("prosv_lang_fixed", "p2+s2", "lang"))
    for method, positions, objective in runs:
        for concept in (4, 5):
            for step in range(12):
                end = 1.2 if "fixed" not in method else 2.9
                if fixed_better:
                    end = 2.9 if "fixed" not in method else 1.2
                loss = 3.2 + (end - 3.2) * step / 11 + 0.05 * concept
                rows.append(dict(concept=str(concept), concept_index=concept - 4, step=step, epoch=step // 4,
                                 loss=loss, lr_scale=1 - step / 12,
                                 alpha=1.0 if "fixed" in method else 8 * (1 + step), v_norm=0.5 + 0.1 * step,
                                 method=method, layer=10, positions=positions, split="eval", role="main",
                                 objective=objective))
    return pd.DataFrame(rows)


def locate_table(best: str = "p2+s2") -> pd.DataFrame:
    rows = []
    for layer in (5, 10):
        for positions, overall in (("all", 0.60), ("prompt", 0.50), ("p1+s1", 0.62), ("p2+s2", 0.66),
                                   ("p4+s4", 0.64)):
            if best != "p2+s2" and positions == best:
                overall = 0.9
            rows.append(dict(layer=layer, positions=positions, overall=overall - (layer == 5) * 0.1,
                             concept_score=overall + 0.3, instruction_score=1.4, fluency_score=1.5, n_concepts=2))
    df = pd.DataFrame(rows)
    top = df[df.positions != "all"].sort_values("overall", ascending=False).iloc[0]
    df["chosen"] = (df.layer == top.layer) & (df.positions == top.positions)
    return df


def utility_table(prosv_better: bool = True) -> pd.DataFrame:
    rows = []
    for method, positions, loss, factor, rel in [
        ("unsteered", None, None, 1.0, 1.0),
        ("prompting", None, None, 1.0, 0.95),
        ("prosv_lang", "p2+s2", "lang", 1.0, 0.80 if prosv_better else 0.20),
        ("fssv_lang", "all", "lang", 1.0, 0.25 if prosv_better else 0.85),
        ("fssv_lang", "all", "lang", 0.8, 0.50),
        ("fssv_lang", "all", "lang", 0.5, 0.90),
    ]:
        for task, base in (("gsm8k", 0.4), ("mmlu", 0.5)):
            rows.append(dict(method=method, loss=loss, layer=None if positions is None else 10, positions=positions,
                             factor=factor, task=task, n_concepts=1 if method == "unsteered" else 3, n_questions=30,
                             accuracy_mean=base * rel, accuracy_std=0.02, relative_accuracy_mean=rel,
                             relative_accuracy_std=0.05))
    out = pd.DataFrame(rows)
    out["layer"] = out["layer"].astype("Int64")
    return out


def robustness_table(prosv_robust: bool = True) -> pd.DataFrame:
    rows = [
        ("unsteered", None, None, 1.0, 0.05, 1.0),
        ("prosv_lang", "lang", "p2+s2", 1.0, 0.60 if prosv_robust else 0.20, 0.80),
        ("fssv_lang", "lang", "all", 1.0, 0.70, 0.25),
        ("fssv_lang", "lang", "all", 0.8, 0.50, 0.50),
        ("fssv_lang", "lang", "all", 0.5, 0.30, 0.90),
    ]
    out = pd.DataFrame(rows, columns=["method", "loss", "positions", "factor", "overall", "relative_accuracy"])
    out["layer"] = pd.array([None if p is None else 10 for p in out.positions], dtype="Int64")
    out["protocol"] = "suppression_attack"
    out["judge"] = JUDGE
    out["n_concepts"] = 3
    out["overall_lo"] = out["overall"] - 0.04
    out["overall_hi"] = out["overall"] + 0.04
    out["concept_score"] = out["overall"] + 0.2
    out["instruction_score"] = 1.2
    out["fluency_score"] = 1.4
    out["relative_accuracy_std"] = 0.05
    return out


def loreft_tables(cos: float = 0.985):
    steps = np.arange(10)
    lo = pd.concat([pd.DataFrame(dict(method=m, concept=c, step=steps, loss=3 - 0.15 * steps + 0.01 * (m == "loreft")))
                    for m in ("prosv", "loreft") for c in (4, 5)], ignore_index=True)
    cosine = pd.DataFrame(dict(concept=[4, 5], cosine=[cos, cos + 0.005], signed_cosine=[cos, -(cos + 0.005)]))
    spread = pd.DataFrame(dict(kind=["intervened"] * 4 + ["content"] * 3,
                               position=["p0", "p1", "s-2", "s-1", "c0", "c1", "c2"],
                               mean_pairwise_cosine=[1.0, 0.99, 0.98, 0.99, 0.4, 0.5, 0.45],
                               relative_std=[0.0, 0.01, 0.02, 0.01, 0.6, 0.5, 0.55]))
    return lo, cosine, spread


def scaling_table(large_wins: bool = True) -> pd.DataFrame:
    """Grid losses fall with init and rate (or rise, flipped); ablations sit between."""
    rows = []
    for c in (1, 4, 16):
        for e in (0.01, 0.1, 1.0, 10.0):
            gain = 0.25 * np.log2(c) / 2 + 0.2 * (np.log10(e) + 2)
            loss = 3.0 - gain if large_wins else 1.9 + gain
            rows.append(dict(cell=f"adam c{c:g} lr{e:g}", kind="grid", c_alpha=c, eta_alpha=e, optimizer="adam",
                             final_loss=loss, overall=(3.2 - loss) / 1.4))
    rows += [dict(cell="alpha fixed 1", kind="fixed", c_alpha=4, eta_alpha=1.0, optimizer="adam", final_loss=2.9,
                  overall=0.2)]
    rows += [dict(cell=f"sgd c{c} lr1", kind="sgd", c_alpha=c, eta_alpha=1.0, optimizer="sgd", final_loss=3.1 - 0.02 * c,
                  overall=0.1) for c in (1, 4, 16)]
    rows += [dict(cell="transfer raw", kind="transfer", c_alpha=4, eta_alpha=10, optimizer="adam", final_loss=2.5,
                  overall=0.5),
             dict(cell="transfer width", kind="transfer", c_alpha=4, eta_alpha=0.2083, optimizer="adam",
                  final_loss=2.2, overall=0.7)]
    df = pd.DataFrame(rows)
    return df.assign(fixed_alpha=np.where(df.kind == "fixed", 1.0, np.nan), lr_scaling="raw", lr_alpha=df.eta_alpha,
                     lr_v=0.02, alpha_final=40.0, first_loss=3.2, layer=10, positions="p2+s2")


def all_tables(**flip) -> dict[str, pd.DataFrame]:
    lo, cos, spread = loreft_tables(flip.get("cos", 0.985))
    return {
        "scaling": scaling_table(flip.get("large_wins", True)),
        "main": main_table(flip.get("prosv_better", True)),
        "losses": losses_table(flip.get("with_fixed", True), flip.get("fixed_better", False)),
        "locate": locate_table(flip.get("best", "p2+s2")),
        "utility": utility_table(flip.get("utility_better", True)),
        "robustness": robustness_table(flip.get("robust", True)),
        "loreft": lo,
        "loreft_cosine": cos,
        "loreft_spread": spread,
    }


CHOICE = {"layer": 10, "positions": "p2+s2", "overall": 0.66, "concept_score": 0.96, "judge": JUDGE}


# --------------------------------------------------------------------------------------------
# figures, markdown, summary


def test_render_all_writes_readable_pngs_and_markdown(tmp_path):
    tables = all_tables()
    paths = {name: tmp_path / "figures" / f"{name}.png" for name in F.FIGURES}
    problems = F.render_all(tables, paths, main_md=tmp_path / "tables" / "main.md",
                            summary=tmp_path / "SUMMARY.md", model=MODEL, choice=CHOICE)
    assert problems == {}
    for name, path in paths.items():
        img = imread(path)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, name
        assert img.std() > 0.01, f"{name} looks blank"
    md = (tmp_path / "tables" / "main.md").read_text()
    assert MODEL in md and JUDGE in md and "factor_free" in md and "factor_grid" in md
    assert "| prosv_lang |" in md and "0.758" in md  # paper number beside ours
    assert "0.663" in md  # post-hoc FSSV paper number on the _posthoc row


@pytest.mark.parametrize("name", list(F.FIGURES))
def test_each_figure_names_its_missing_table(name, tmp_path):
    tables = all_tables()
    missing = F.FIGURES[name][-1]
    tables[missing] = tables[missing].iloc[:0]
    with pytest.raises(ValueError, match=f"'{missing}'"):
        F.render_all(tables, {name: tmp_path / "x.png"}, model=MODEL, choice=CHOICE)
    tables[missing] = None
    with pytest.raises(ValueError, match=f"table '{missing}' is missing"):
        F.render_all(tables, {name: tmp_path / "x.png"}, model=MODEL, choice=CHOICE)
    problems = F.render_all(tables, {name: tmp_path / "x.png"}, model=MODEL, choice=CHOICE, strict=False)
    assert missing in problems[name] and imread(tmp_path / "x.png").ndim == 3


def _claim_lines(text: str) -> dict[int, str]:
    lines = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].isdigit():
            lines[int(cells[0])] = line
    return lines


def _verdict(line: str) -> str:
    return line.rstrip().rstrip("|").rsplit("|", 1)[-1].strip().strip("*")


def test_summary_claims_with_values_and_verdicts(tmp_path):
    text = F.write_summary(all_tables(), tmp_path / "SUMMARY.md", model=MODEL, choice=CHOICE)
    assert text == (tmp_path / "SUMMARY.md").read_text()
    lines = _claim_lines(text)
    assert sorted(lines) == [1, 2, 3, 4, 5, 6]
    assert all(_verdict(l) == F.HELD for l in lines.values()), lines
    # our value and the paper's value on each line
    assert "c_alpha=16, eta_alpha=10: final loss 1.900" in lines[1] and "3.000" in lines[1] and "2.025" in lines[1]
    assert "alpha fixed (alpha fixed 1) 2.900" in lines[1] and "raw 2.500 vs width-scaled 2.200" in lines[1]
    assert "## Scaling study" in text
    assert "prosv_lang 0.800 vs fssv_lang 0.600, 95% CIs apart (held)" in lines[2] and "0.758 vs 0.736" in lines[2]
    assert "0.803 vs 0.756" in lines[2] and "prosv_simpo 0.850 vs fssv_simpo 0.550" in lines[2]
    assert "0.80 vs fssv_lang 0.25" in lines[3] and "18-29%" in lines[3]
    assert "0.600 at utility 0.80" in lines[4]
    assert "0.985" in lines[5] and "0.96" in lines[5]
    assert "p2+s2 0.66" in lines[6] and "p2+s2 0.70 vs FSSV 0.65" in lines[6]
    assert MODEL in text and JUDGE in text and "## Main table" in text and "factor_grid" in text


@pytest.mark.parametrize("flip, claim", [
    ({"large_wins": False}, 1),
    ({"prosv_better": False}, 2),
    ({"utility_better": False}, 3),
    ({"robust": False}, 4),
    ({"cos": 0.90}, 5),
    ({"best": "p4+s4"}, 6),
])
def test_verdict_follows_the_data(flip, claim, tmp_path):
    text = F.write_summary(all_tables(**flip), tmp_path / "SUMMARY.md", model=MODEL)
    lines = _claim_lines(text)
    assert _verdict(lines[claim]) == F.NOT_HELD, lines[claim]
    assert all(_verdict(l) == F.HELD for k, l in lines.items() if k != claim)


def test_joint_training_claim_from_training_logs_without_a_scaling_study(tmp_path):
    """Without the scaling table, claim 1 compares alpha-fixed runs found in the training logs."""
    for fixed_better, verdict in ((False, F.HELD), (True, F.NOT_HELD)):
        tables = all_tables(fixed_better=fixed_better)
        tables["scaling"] = None
        line = _claim_lines(F.write_summary(tables, tmp_path / "S.md", model=MODEL))[1]
        assert "1.425" in line and "3.125" in line and _verdict(line) == verdict, line


def test_missing_measurements_are_stated(tmp_path):
    tables = all_tables(with_fixed=False)
    tables["scaling"] = None
    for name in ("utility", "robustness", "loreft_cosine"):
        tables[name] = None
    lines = _claim_lines(F.write_summary(tables, tmp_path / "S.md", model=MODEL))
    assert "not measured in this run" in lines[1] and _verdict(lines[1]) == F.NOT_MEASURED
    for k in (3, 4, 5):
        assert _verdict(lines[k]) == F.NOT_MEASURED
    assert _verdict(lines[2]) == F.HELD
    with pytest.raises(ValueError, match="'main'"):
        F.write_summary({"main": None}, tmp_path / "S.md")


def test_paper_column_follows_the_model():
    assert F.paper_model("gemma-2-9b-it") == ("G9B", True)
    assert F.paper_model("Qwen/Qwen2.5-32B-Instruct") == ("Q32B", True)
    assert F.paper_model("smollm2-135m") == ("G2B", False)
    lines = _claim_lines(F.claims(all_tables(), model="gemma-2-9b-it").assign(
        **{"#": lambda d: d["#"].astype(str)}).pipe(F._markdown))
    assert "0.859 vs 0.821" in lines[2]


# --------------------------------------------------------------------------------------------
# tables from raw outputs


def _ratings(method, concepts, rng, *, factors=(1.0,), positions=None, alpha=None, boost=0.0):
    rows = []
    for cid in concepts:
        for factor in factors:
            for idx in range(10):
                c = int(np.clip(rng.integers(0, 3) + boost * (factor > 1), 0, 2))
                row = dict(concept_id=cid, concept=f"c{cid}", instruction_idx=idx, instruction=f"i{idx}",
                           response="r", method=method, factor=float(factor),
                           protocol="factor_grid" if len(factors) > 1 else "factor_free", judge=JUDGE,
                           concept_score=c, instruction_score=int(rng.integers(1, 3)), fluency_score=2)
                if positions is not None:
                    row.update(layer=10, positions=positions, learned_alpha=alpha)
                rows.append(row)
    df = pd.DataFrame(rows)
    from prosv.evaluation import add_overall

    return add_overall(df)


def test_build_tables_from_raw_outputs(tmp_path):
    rng = np.random.default_rng(0)
    concepts = [4, 5, 6, 7]
    frames = [
        _ratings("unsteered", concepts, rng),
        _ratings("prompting", concepts, rng),
        _ratings("prosv_lang", concepts, rng, positions="p2+s2", alpha=40.0),
        _ratings("fssv_lang", concepts, rng, positions="all", alpha=2.0),
        _ratings("fssv_lang", concepts, rng, positions="all", alpha=2.0, factors=(0.5, 1.0, 2.0), boost=1),
    ]
    main = F.build_main_table(frames, METHODS, n_boot=200)
    assert set(main.method) == {"unsteered", "prompting", "prosv_lang", "fssv_lang", "fssv_lang_posthoc"}
    assert main.groupby(["method", "protocol"]).size().max() == 1
    post = main.set_index("method").loc["fssv_lang_posthoc"]
    assert post.protocol == "factor_grid" and post.loss == "lang" and post.positions == "all"
    assert post.mean_alpha == pytest.approx(2.0 * post.mean_factor)
    row = main.set_index("method").loc["prosv_lang"]
    assert row.overall_lo <= row.overall <= row.overall_hi and row.n_concepts == 4 and row.mean_alpha == 40.0
    assert pd.isna(main.set_index("method").loc["unsteered", "loss"])
    from prosv.evaluation import concept_means

    expect = concept_means(frames[2], by=["method"]).overall.mean()
    assert row.overall == pytest.approx(expect)

    acc = []
    for task, base in (("gsm8k", 0.5), ("mmlu", 0.4)):
        acc.append(dict(method="unsteered", factor=1.0, concept_id=-1, task=task, n=30, correct=base * 30,
                        accuracy=base, positions=None, layer=None))
        for cid in concepts[:2]:
            acc.append(dict(method="prosv_lang", factor=1.0, concept_id=cid, task=task, n=30, correct=0,
                            accuracy=base * 0.8, positions="p2+s2", layer=10))
            for f, keep in ((1.0, 0.2), (0.5, 0.9)):
                acc.append(dict(method="fssv_lang", factor=f, concept_id=cid, task=task, n=30, correct=0,
                                accuracy=base * keep, positions="all", layer=10))
    acc = pd.DataFrame(acc)
    util = F.build_utility_table(acc, METHODS, main)
    u = util.set_index(["method", "factor", "task"])
    assert u.loc[("prosv_lang", 1.0, "gsm8k"), "relative_accuracy_mean"] == pytest.approx(0.8)
    assert u.loc[("fssv_lang", 0.5, "mmlu"), "relative_accuracy_mean"] == pytest.approx(0.9)
    assert u.loc[("unsteered", 1.0, "mmlu"), "relative_accuracy_mean"] == pytest.approx(1.0)
    assert u.loc[("prosv_lang", 1.0, "gsm8k"), "loss"] == "lang"

    attack = pd.concat([_ratings("prosv_lang", concepts[:3], rng), _ratings("fssv_lang", concepts[:3], rng),
                        _ratings("fssv_lang", concepts[:3], rng).assign(factor=0.5)], ignore_index=True)
    attack["protocol"] = "suppression_attack"
    rob = F.build_robustness_table(attack, acc, METHODS, main, n_boot=200)
    r = rob.set_index(["method", "factor"])
    assert r.loc[("fssv_lang", 0.5), "relative_accuracy"] == pytest.approx(0.9)
    assert r.loc[("prosv_lang", 1.0), "positions"] == "p2+s2" and r.loc[("prosv_lang", 1.0), "n_concepts"] == 3

    losses = F.build_losses_table({"main": [losses_table(False).drop(columns=["role", "objective"])]}, METHODS)
    assert set(losses.role) == {"main"} and set(losses.objective) == {"lang", "simpo"}

    # the built tables feed the figures and the summary directly
    tables = {**all_tables(), "main": main, "utility": util, "robustness": rob, "losses": losses}
    text = F.write_summary(tables, tmp_path / "S.md", model=MODEL)
    assert "prosv_lang" in _claim_lines(text)[3]
    F.plt.close(F.plot_robustness_vs_utility(rob, model=MODEL))


def test_figures_module_needs_no_torch():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(F))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"torch", "transformers"}, imported


def test_claims_use_prosv_rows_placed_on_the_whole_prompt(tmp_path):
    # the location search may choose the whole prompt for the PrOSV methods: still prompt-only steering
    tables = all_tables()
    for name in ("main", "utility", "robustness"):
        t = tables[name].copy()
        t.loc[t["method"].str.startswith("prosv_") & (t["positions"] == "p2+s2"), "positions"] = "prompt"
        assert (t["positions"] == "prompt").any(), name
        tables[name] = t
    lines = _claim_lines(F.write_summary(tables, tmp_path / "SUMMARY.md", model=MODEL, choice=CHOICE))
    assert "prosv_lang 0.800 vs fssv_lang 0.600" in lines[2] and _verdict(lines[2]) == F.HELD
    assert "0.80 vs fssv_lang 0.25" in lines[3] and _verdict(lines[3]) == F.HELD
    assert "0.600 at utility 0.80" in lines[4] and _verdict(lines[4]) == F.HELD
