"""The report: tables from raw outputs, claims by paired comparisons, figures and SUMMARY.md (no model)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from prosv.evaluation import add_overall
from prosv.report import claims as C
from prosv.report import tables as T
from prosv.report.families import families, family
from prosv.report.paper import paper_model
from prosv.stats import CONTRADICTED, HELD, INCONCLUSIVE, NOT_MEASURED

MODEL = "smollm2-135m"
JUDGE = "offline-v1"
CONCEPTS = list(range(4, 14))  # 10 evaluation concepts
DEV = [0, 1, 2, 3]
# arbitrary method names: every decision must come from the labels, not the names
RUNS = {
    "alpha_run": {"positions": "p2+s2", "loss": "lang", "alpha": 40.0},
    "beta_run": {"positions": "all", "loss": "lang", "alpha": 2.0},
    "gamma_run": {"positions": "p2+s2", "loss": "simpo", "alpha": 45.0},
    "delta_run": {"positions": "all", "loss": "simpo", "alpha": 2.5},
}


def _ratings(method, rng, *, level, concepts=CONCEPTS, factors=(1.0,), run=None, protocol=None, noise=0.15):
    """Ten responses per concept whose mean overall is about `level` (plus a per-concept effect)."""
    rows = []
    for cid in concepts:
        easy = 0.3 * np.sin(cid)  # the same per-concept effect for every method: what pairing removes
        for factor in factors:
            for idx in range(10):
                target = np.clip(level + easy + rng.normal(0, noise), 0.05, 1.95)
                c = int(rng.random() < target / 2) + int(rng.random() < target / 2)
                row = dict(
                    concept_id=cid,
                    concept=f"c{cid}",
                    instruction_idx=idx,
                    instruction=f"i{idx}",
                    response="r",
                    method=method,
                    factor=float(factor),
                    judge=JUDGE,
                    concept_score=max(c, 1),
                    instruction_score=2,
                    fluency_score=2 if target > 0.5 else 1,
                    protocol=protocol or ("factor_grid" if len(factors) > 1 else "factor_free"),
                )
                if run is not None:
                    row.update(
                        layer=10,
                        positions=run["positions"],
                        loss=run["loss"],
                        intervention="sv",
                        fixed_alpha=None,
                        learned_alpha=run["alpha"],
                    )
                rows.append(row)
    return add_overall(pd.DataFrame(rows))


def rating_frames(rng, prosv_better=True):
    hi, lo = (1.3, 0.7) if prosv_better else (0.7, 1.3)
    return [
        _ratings("unsteered", rng, level=0.4),
        _ratings("prompting", rng, level=1.0),
        _ratings("alpha_run", rng, level=hi, run=RUNS["alpha_run"]),
        _ratings("beta_run", rng, level=lo, run=RUNS["beta_run"]),
        _ratings("beta_run", rng, level=lo, run=RUNS["beta_run"], factors=(0.5, 1.0, 2.0)),
        _ratings("gamma_run", rng, level=hi, run=RUNS["gamma_run"]),
        _ratings("delta_run", rng, level=lo, run=RUNS["delta_run"]),
    ]


def accuracy_frame(prosv_better=True, concepts=CONCEPTS):
    rows = []
    for task, base in (("arithmetic", 0.5), ("multiple_choice", 0.4)):
        rows.append(
            dict(
                method="unsteered",
                factor=1.0,
                concept_id=-1,
                task=task,
                n=30,
                correct=base * 30,
                accuracy=base,
                positions=None,
                layer=None,
            )
        )
        for cid in concepts:
            wobble = 0.05 * np.cos(cid)
            keeps = {
                ("alpha_run", 1.0): 0.8 if prosv_better else 0.2,
                ("gamma_run", 1.0): 0.75 if prosv_better else 0.2,
                ("beta_run", 1.0): 0.25 if prosv_better else 0.85,
                ("beta_run", 0.8): 0.5,
                ("beta_run", 0.5): 0.9,
                ("delta_run", 1.0): 0.3 if prosv_better else 0.9,
                ("delta_run", 0.5): 0.9,
            }
            for (method, factor), keep in keeps.items():
                run = RUNS[method]
                acc = base * (keep + wobble)
                rows.append(
                    dict(
                        method=method,
                        factor=factor,
                        concept_id=cid,
                        task=task,
                        n=30,
                        correct=acc * 30,
                        accuracy=acc,
                        positions=run["positions"],
                        layer=10,
                        loss=run["loss"],
                        intervention="sv",
                        fixed_alpha=None,
                    )
                )
    return pd.DataFrame(rows)


def attack_frame(rng, robust=True):
    frames = []
    for method, factor, level in (
        ("alpha_run", 1.0, 1.1 if robust else 0.2),
        ("gamma_run", 1.0, 1.1 if robust else 0.2),
        ("beta_run", 1.0, 1.3),
        ("beta_run", 0.8, 0.9),
        ("beta_run", 0.5, 0.5),
        ("delta_run", 1.0, 1.3),
        ("delta_run", 0.5, 0.5),
    ):
        frames.append(
            _ratings(method, rng, level=level, run=RUNS[method], protocol="suppression_attack").assign(factor=factor)
        )
    return pd.concat(frames, ignore_index=True)


def scaling_frames(joint_wins=True):
    cells = [
        ("joint (base rates)", "base", 4, 1.0, "adam"),
        ("adam c1 lr0.01", "grid", 1, 0.01, "adam"),
        ("adam c4 lr1", "grid", 4, 1.0, "adam"),
        ("alpha fixed 1", "fixed", 4, 1.0, "adam"),
        ("sgd c1 lr1", "sgd", 1, 1.0, "sgd"),
    ]
    rows = []
    for cell, kind, *_ in cells:
        good = kind in ("base",) or cell == "adam c4 lr1"
        end = (2.2 if good else 2.9) if joint_wins else (2.9 if good else 2.2)
        for concept in DEV:
            for step in range(8):
                rows.append(
                    dict(
                        cell=cell,
                        kind=kind,
                        concept=concept,
                        step=step,
                        epoch=step // 4,
                        loss=3.2 + (end - 3.2) * step / 7 + 0.05 * concept + 0.01 * np.sin(step + concept),
                    )
                )
    losses = pd.DataFrame(rows)
    meta = pd.DataFrame(
        [
            dict(
                cell=cell,
                kind=kind,
                c_alpha=c,
                eta_alpha=e,
                optimizer=opt,
                lr_alpha=e,
                lr_v=0.02,
                fixed_alpha=1.0 if kind == "fixed" else None,
                alpha_final=40.0,
                lr_scaling="raw",
                layer=10,
                positions="p2+s2",
                final_loss=losses[(losses.cell == cell) & (losses.epoch == 1)].loss.mean(),
                first_loss=3.2,
            )
            for cell, kind, c, e, opt in cells
        ]
    )
    ratings = pd.DataFrame(
        [dict(cell=cell, concept_score=1, instruction_score=2, fluency_score=2) for cell, *_ in cells]
    )
    return losses, meta, ratings


def locate_frames(rng, best="p2+s2"):
    frames = []
    for layer in (5, 10):
        for positions, level in (("all", 0.6), ("prompt", 0.4), ("p1+s1", 0.7), ("p2+s2", 1.6), ("p4+s4", 0.7)):
            if best != "p2+s2":
                level = 1.6 if positions == best else (0.4 if positions == "p2+s2" else level)
            run = {"positions": positions, "loss": "lang", "alpha": 40.0}
            frames.append(
                _ratings("locate", rng, level=level - 0.3 * (layer == 5), concepts=DEV, run=run).assign(layer=layer)
            )
    ratings = pd.concat(frames, ignore_index=True)
    from prosv.experiments.location import choose_location, location_concepts

    choice, table = choose_location(ratings, n_boot=500)
    return choice, table, location_concepts(ratings)


def loreft_frames(cos=0.985):
    steps = np.arange(10)
    lo = pd.concat(
        [
            pd.DataFrame(dict(method=m, concept=c, step=steps, loss=3 - 0.15 * steps + 0.01 * (m == "loreft")))
            for m in ("prosv", "loreft")
            for c in (4, 5, 6)
        ],
        ignore_index=True,
    )
    cosine = pd.DataFrame(
        dict(
            concept=[4, 5, 6], cosine=[cos, cos + 0.005, cos - 0.003], signed_cosine=[cos, -(cos + 0.005), cos - 0.003]
        )
    )
    spread = pd.DataFrame(
        dict(
            kind=["intervened"] * 4 + ["content"] * 3,
            position=["p1", "p2", "s2", "s1", "content@0.25", "content@0.5", "content@0.75"],
            mean_pairwise_cosine=[1.0, 0.99, 0.98, 0.99, 0.4, 0.5, 0.45],
            relative_std=[0.0, 0.01, 0.02, 0.01, 0.6, 0.5, 0.55],
        )
    )
    return lo, cosine, spread


def losses_frame():
    rows = []
    for method, run in RUNS.items():
        for concept in CONCEPTS[:2]:
            for step in range(12):
                rows.append(
                    dict(
                        concept=str(concept),
                        concept_index=0,
                        step=step,
                        epoch=step // 4,
                        loss=3.2 - 0.1 * step,
                        lr_scale=1 - step / 12,
                        alpha=8 * (1 + step),
                        v_norm=0.5 + 0.1 * step,
                        method=method,
                        layer=10,
                        positions=run["positions"],
                        split="eval",
                        objective=run["loss"],
                        intervention="sv",
                        fixed_alpha=None,
                    )
                )
    return pd.DataFrame(rows)


def task_answers(prosv_best: bool = True, n: int = 120) -> pd.DataFrame:
    """Scored answers of the task arms: item i is correct for an arm when u_i < its accuracy (errors
    nested across arms); 10% of the unsteered answers are format failures."""
    accuracy = {"unsteered": 0.3, "fssv_layer": 0.45, "fssv_layers": 0.5, "prosv_layer": 0.55, "lora": 0.9}
    accuracy["prosv_layers"] = 0.7 if prosv_best else 0.3
    u = np.random.default_rng(5).random(n)
    rows = []
    for arm, acc in accuracy.items():
        for i in range(n):
            answer, formed = i % 2 == 0, not (arm == "unsteered" and i % 10 == 1)
            correct = formed and u[i] < acc
            parsed = (answer if correct else not answer) if formed else None
            rows.append(dict(arm=arm, item_id=f"r{i}", answer=answer, response=str(parsed), parsed=parsed,
                             format_ok=formed, correct=correct))  # fmt: skip
    return pd.DataFrame(rows).astype({"parsed": "boolean"})


def all_tables(seed=0, **flip) -> tuple[dict, dict]:
    from prosv.report.examples import build_examples_table
    from prosv.report.task import task_table

    rng = np.random.default_rng(seed)
    frames = rating_frames(rng, flip.get("prosv_better", True))
    concepts = T.build_concept_scores(frames)
    acc = accuracy_frame(flip.get("utility_better", True))
    attack = attack_frame(rng, flip.get("robust", True))
    s_losses, s_cells, s_ratings = scaling_frames(flip.get("joint_wins", True))
    choice, locate, locate_concepts = locate_frames(rng, flip.get("best", "p2+s2"))
    lo, cos, spread = loreft_frames(flip.get("cos", 0.985))
    tables = {
        "main_concepts": concepts,
        "main": T.build_main_table(concepts, n_boot=500),
        "losses": T.build_losses_table({"main": [losses_frame()]}),
        "utility": T.build_utility_table(acc),
        "utility_concepts": T.utility_by_concept(acc),
        "robustness": T.build_robustness_table(attack, acc, n_boot=500),
        "robustness_concepts": T.robustness_by_concept(attack),
        "loreft": lo,
        "loreft_cosine": cos,
        "loreft_spread": spread,
        "scaling": T.build_scaling_table(s_cells, s_ratings),
        "scaling_concepts": T.scaling_by_concept(s_losses, s_cells),
        "locate": locate,
        "locate_concepts": locate_concepts,
        "examples": build_examples_table(frames),
    }
    tables["task_items"] = task_answers(flip.get("task", True))
    tables["task"] = task_table(tables["task_items"])
    return tables, choice


def verdicts(tables, **kw) -> dict[int, str]:
    cl, _ = C.claims(tables, model=MODEL, n_boot=1000, **kw)
    return dict(zip(cl["#"], cl["verdict"]))


# --------------------------------------------------------------------------------------------
# families and tables


def test_families_come_from_the_data_not_the_names():
    df = pd.DataFrame(
        {
            "method": ["prosv_lang", "fssv_lang", "x", "y", "z", "fssv_lang", "unsteered"],
            "positions": ["all", "p2+s2", "prompt", "p2+s2", "p2+s2", "all", None],
            "protocol": ["factor_free"] * 5 + ["factor_grid", "factor_free"],
            "intervention": ["sv", "sv", "sv", "loreft", "sv", "sv", None],
            "fixed_alpha": [None, None, None, None, 1.0, None, None],
        }
    )
    assert families(df).tolist() == ["fssv", "prosv", "prompt", "loreft", "fixed", "posthoc", "baseline"]
    assert family("s4") == "prosv" and family(None) == "baseline"


def test_concept_scores_and_main_table_from_ratings():
    frames = rating_frames(np.random.default_rng(0))
    concepts = T.build_concept_scores(frames)
    main = T.build_main_table(concepts, n_boot=300)
    assert set(main.method) == {
        "unsteered",
        "prompting",
        "alpha_run",
        "beta_run",
        "beta_run_posthoc",
        "gamma_run",
        "delta_run",
    }
    assert main.groupby(["method", "protocol"]).size().max() == 1
    post = main.set_index("method").loc["beta_run_posthoc"]
    assert post.protocol == "factor_grid" and post.loss == "lang" and post.positions == "all"
    assert post.mean_alpha == pytest.approx(2.0 * post.mean_factor)
    row = main.set_index("method").loc["alpha_run"]
    assert row.overall_lo <= row.overall <= row.overall_hi and row.n_concepts == 10 and row.mean_alpha == 40.0
    assert pd.isna(main.set_index("method").loc["unsteered", "loss"])
    # the per-concept table is the independent reference: mean of the concept means
    from prosv.evaluation import concept_means

    assert row.overall == pytest.approx(concept_means(frames[2], by=["method"]).overall.mean())
    assert list(main.method[:2]) == ["unsteered", "prompting"]  # baselines first, then by loss and family


def test_utility_robustness_scaling_and_losses_tables():
    acc = accuracy_frame()
    util = T.build_utility_table(acc).set_index(["method", "factor", "task"])
    assert util.loc[("unsteered", 1.0, "arithmetic"), "relative_accuracy_mean"] == pytest.approx(1.0)
    assert util.loc[("beta_run", 0.5, "arithmetic"), "relative_accuracy_mean"] == pytest.approx(
        np.mean([0.9 + 0.05 * np.cos(c) for c in CONCEPTS])
    )
    per = T.utility_by_concept(acc).set_index(["method", "factor", "concept_id"])
    assert per.loc[("alpha_run", 1.0, 4), "relative_accuracy"] == pytest.approx(0.8 + 0.05 * np.cos(4))
    rob = T.build_robustness_table(attack_frame(np.random.default_rng(1)), acc, n_boot=200).set_index(
        ["method", "factor"]
    )
    assert rob.loc[("beta_run", 0.5), "relative_accuracy"] == pytest.approx(
        per.xs(("beta_run", 0.5)).relative_accuracy.mean()
    )
    assert rob.loc[("alpha_run", 1.0), "positions"] == "p2+s2" and rob.loc[("alpha_run", 1.0), "n_concepts"] == 10
    losses, cells, _ = scaling_frames()
    sc = T.scaling_by_concept(losses, cells).set_index(["cell", "concept"])
    expect = losses[(losses.cell == "alpha fixed 1") & (losses.concept == 2) & (losses.epoch == 1)].loss.mean()
    assert sc.loc[("alpha fixed 1", 2), "final_loss"] == pytest.approx(expect)
    assert sc.loc[("alpha fixed 1", 2), "kind"] == "fixed"
    lt = T.build_losses_table({"main": [losses_frame()], "locate": [losses_frame()]})
    assert set(lt.role) == {"main"} and set(lt.objective) == {"lang", "simpo"}


def test_tables_and_claims_import_no_plotting_or_torch():
    code = (
        "import sys; import prosv.report.tables, prosv.report.claims, prosv.report.summary; "
        "print(sorted(m for m in ('matplotlib', 'seaborn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# --------------------------------------------------------------------------------------------
# claims


def test_claims_hold_when_the_data_are_on_the_papers_side():
    tables, _ = all_tables()
    assert verdicts(tables) == dict.fromkeys(range(1, 8), HELD)
    _, comp = C.claims(tables, model=MODEL, n_boot=1000)
    assert (comp["n"] >= 3).all() and (comp["ci_low"] <= comp["difference"]).all()
    overall = comp[comp.comparison.str.startswith("overall score")].set_index("a")
    # the paired difference is the mean of the per-concept differences of the two methods
    mc = tables["main_concepts"]
    ff = mc[mc.protocol == "factor_free"].set_index(["method", "concept_id"]).overall
    assert overall.loc["alpha_run", "difference"] == pytest.approx((ff["alpha_run"] - ff["beta_run"]).mean())


@pytest.mark.parametrize(
    "flip, claim",
    [
        ({"joint_wins": False}, 1),
        ({"prosv_better": False}, 2),
        ({"utility_better": False}, 3),
        ({"robust": False}, 4),
        ({"cos": 0.90}, 5),
        ({"best": "p4+s4"}, 6),
        ({"task": False}, 7),
    ],
)
def test_a_claim_against_the_data_is_contradicted(flip, claim):
    got = verdicts(all_tables(**flip)[0])
    assert got[claim] == CONTRADICTED, got
    coupled = {3: {4}}.get(claim, set())  # robustness is read at PrOSV's utility: it moves with it
    assert all(v == HELD for k, v in got.items() if k != claim and k not in coupled), got


def test_overlapping_data_are_inconclusive_with_a_power_figure():
    tables, _ = all_tables()
    mc = tables["main_concepts"].copy()
    ff = mc.protocol == "factor_free"
    noise = np.random.default_rng(5).normal(0, 0.3, ff.sum())
    base = mc.loc[ff].groupby("concept_id").overall.transform("mean")
    mc.loc[ff, "overall"] = base + noise  # every method the same up to noise
    tables["main_concepts"] = mc
    cl, comp = C.claims(tables, model=MODEL, n_boot=1000)
    row = comp[comp.comparison.str.startswith("overall score")].iloc[0]
    assert row.verdict == INCONCLUSIVE and row.ci_low < 0 < row.ci_high
    assert row.detectable > 0 and row.concepts_needed > row.n
    assert dict(zip(cl["#"], cl["verdict"]))[2] in (INCONCLUSIVE, CONTRADICTED)


def test_missing_measurements_are_stated(tmp_path):
    tables, choice = all_tables()
    for name in ("utility_concepts", "robustness_concepts", "loreft_cosine", "scaling_concepts"):
        tables[name] = None
    got = verdicts(tables)
    assert got[1] == got[3] == got[4] == got[5] == NOT_MEASURED and got[2] == HELD
    from prosv.report.summary import write_summary

    with pytest.raises(ValueError, match="'main'"):
        write_summary({"main": None}, tmp_path / "S.md")


def test_claims_use_prosv_rows_placed_on_the_whole_prompt():
    # the location search may choose the whole prompt for the PrOSV methods: still prompt-only steering
    tables, _ = all_tables()
    for name in ("main_concepts", "utility_concepts", "robustness_concepts"):
        t = tables[name].copy()
        if "positions" not in t:
            continue
        t.loc[t["positions"] == "p2+s2", "positions"] = "prompt"
        tables[name] = t
    got = verdicts(tables)
    assert got[2] == HELD and got[4] == HELD


def test_one_concept_gives_no_verdict():
    tables, _ = all_tables()
    tables["loreft_cosine"] = tables["loreft_cosine"].iloc[:1]
    assert verdicts(tables)[5] == INCONCLUSIVE


def _write_run(folder, tables, *, seed=None, dtype=None):
    """A finished run's folder as `aggregate` leaves it: tables/*.parquet, and a vector file whose
    metadata records the seed and dtype (as prosv's vector files do)."""
    (folder / "tables").mkdir(parents=True)
    for name, df in tables.items():
        if df is not None:
            df.to_parquet(folder / "tables" / f"{name}.parquet", index=False)
    if seed is not None:
        import json

        from safetensors.numpy import save_file

        vectors = folder / "vectors" / "m" / "L20" / "all"
        vectors.mkdir(parents=True)
        meta = {"hyperparameters": json.dumps({"seed": seed}), "provenance": json.dumps({"dtype": dtype})}
        save_file({"v": np.zeros((1, 4), np.float32)}, str(vectors / "eval.safetensors"), metadata=meta)
    return folder


def test_verdicts_across_runs_find_the_flip_and_recompute_from_the_tables(tmp_path):
    from prosv.report.runs import CHANGED, FLIP, SAME, compare_runs

    held = _write_run(tmp_path / "held", all_tables()[0], seed=42, dtype="bfloat16")
    against, _ = all_tables(prosv_better=False)
    contradicted = _write_run(tmp_path / "contradicted", against, seed=43, dtype="float32")
    noisy, _ = all_tables()
    mc = noisy["main_concepts"].copy()
    ff = mc.protocol == "factor_free"
    mc.loc[ff, "overall"] = mc.loc[ff].groupby("concept_id").overall.transform("mean") + np.random.default_rng(
        5
    ).normal(0, 0.3, ff.sum())  # every method the same up to noise: inconclusive
    noisy["main_concepts"] = mc
    inconclusive = _write_run(tmp_path / "inconclusive", noisy)

    table, text = compare_runs([held, contradicted], n_boot=1000, out=tmp_path / "v.md")
    overall = table[table.comparison.str.startswith("overall score")].set_index("comparison")
    assert set(overall["stability"]) == {FLIP}
    assert (table.loc[~table.comparison.str.startswith("overall score"), "stability"] == SAME).all()
    # the difference is recomputed from each run's per-concept table: the mean per-concept difference
    ff_against = against["main_concepts"].query("protocol == 'factor_free'").set_index(["method", "concept_id"])
    diff = (ff_against.overall["alpha_run"] - ff_against.overall["beta_run"]).mean()
    lang = "overall score, PrOSV vs FSSV (lang)"
    assert overall.loc[lang, "difference contradicted"] == pytest.approx(diff)
    assert overall.loc[lang, "verdict held"] == HELD and overall.loc[lang, "verdict contradicted"] == CONTRADICTED
    assert "held (seed 42, dtype bfloat16)" in text and "contradicted (seed 43, dtype float32)" in text
    assert "2 flipped between held and contradicted" in text and (tmp_path / "v.md").read_text() == text

    table, _ = compare_runs([held, inconclusive], ["a", "b"], n_boot=1000)
    assert set(table.loc[table.comparison.str.startswith("overall score"), "stability"]) == {CHANGED}
    with pytest.raises(ValueError, match="labels must differ"):
        compare_runs([held, inconclusive], ["a", "a"])


def test_prosv_verdicts_exits_1_on_a_flip_under_strict_and_names_a_folder_without_tables(tmp_path):
    held = _write_run(tmp_path / "held", all_tables()[0])
    contradicted = _write_run(tmp_path / "contradicted", all_tables(prosv_better=False)[0])
    again = _write_run(tmp_path / "again", all_tables()[0])

    def prosv(*args):
        return subprocess.run([sys.executable, "-m", "prosv.cli", "verdicts", *map(str, args), "--n-boot", "300"],
                              capture_output=True, text=True)  # fmt: skip

    assert prosv(held, contradicted).returncode == 0
    flipped = prosv(held, contradicted, "--strict")
    assert flipped.returncode == 1 and "| flip |" in flipped.stdout
    assert prosv(held, again, "--strict").returncode == 0
    (tmp_path / "empty").mkdir()
    missing = prosv(held, tmp_path / "empty")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"prosv: error: {tmp_path / 'empty'}: no tables/*.parquet (is it a run's results folder, after `aggregate`?)"
    )
    assert prosv(held).returncode == 2


def test_paper_column_follows_the_model():
    assert paper_model("gemma-2-9b-it") == ("G9B", True)
    assert paper_model("Qwen/Qwen2.5-32B-Instruct") == ("Q32B", True)
    assert paper_model("smollm2-135m") == ("G2B", False)
    cl, _ = C.claims(all_tables()[0], model="gemma-2-9b-it", n_boot=200)
    assert "0.859 vs 0.821" in cl.set_index("#").loc[2, "paper"]


# --------------------------------------------------------------------------------------------
# summary and figures


def test_summary_shows_difference_interval_n_and_verdict(tmp_path):
    from prosv.report.summary import write_summary

    tables, choice = all_tables()
    text = write_summary(tables, tmp_path / "SUMMARY.md", model=MODEL, choice=choice, n_boot=500)
    assert text == (tmp_path / "SUMMARY.md").read_text()
    assert "7 held, 0 contradicted, 0 inconclusive, 0 not measured" in text
    assert "paired percentile bootstrap over concepts" in text and "## Comparisons" in text
    task = tables["task_items"]
    acc = task[task.arm == "prosv_layers"].correct.mean()
    assert "## Task steering" in text and f"| PrOSV, every layer | 120 | {100 * acc:.0f}% [" in text
    assert "accuracy, LoRA minus PrOSV (every layer), over test items" in text
    assert "| 2 | overall score, PrOSV vs FSSV (lang) | alpha_run | beta_run |" in text
    assert "runner-up" in text and ("separated" in text)
    assert MODEL in text and JUDGE in text and "## Main table" in text and "factor_grid" in text
    assert "0.758" in text  # the paper's PrOSV lang number beside ours


def test_render_all_writes_readable_pngs_and_markdown(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from prosv.report.render import FIGURES, render_all

    tables, choice = all_tables()
    paths = {name: tmp_path / "figures" / f"{name}.png" for name in FIGURES}
    problems = render_all(
        tables,
        paths,
        main_md=tmp_path / "tables" / "main.md",
        summary=tmp_path / "SUMMARY.md",
        model=MODEL,
        choice=choice,
        summary_html=tmp_path / "report" / "SUMMARY.html",
        tables_html=tmp_path / "report" / "tables.html",
    )
    assert problems == {}
    # the Snakemake report shows HTML: SUMMARY with its tables, and every table the figures use
    page = (tmp_path / "report" / "SUMMARY.html").read_text()
    assert "<h2>Claims</h2>" in page and page.count("<table>") >= 5 and "<td>alpha_run</td>" in page
    listing = (tmp_path / "report" / "tables.html").read_text()
    assert all(f"<h2>{name} (" in listing for name in tables) and "<td>1.72</td>" in listing
    for name, path in paths.items():
        img = imread(path)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, name
        assert img.std() > 0.01, f"{name} looks blank"
    md = (tmp_path / "tables" / "main.md").read_text()
    assert MODEL in md and JUDGE in md and "factor_free" in md and "factor_grid" in md
    assert "| alpha_run |" in md and "0.758" in md  # paper number beside ours
    assert "0.663" in md  # post-hoc FSSV paper number on the _posthoc row
    assert not list(tmp_path.rglob("*.tmp")), "figures are written atomically"


@pytest.mark.parametrize(
    "name",
    ["main_scores", "locate_heatmap", "scaling", "loss_curves", "loreft_vs_prosv", "utility", "robustness_vs_utility"],
)
def test_each_figure_names_its_missing_table(name, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from prosv.report.render import FIGURES, render_all

    tables, choice = all_tables()
    missing = FIGURES[name][-1]
    tables[missing] = tables[missing].iloc[:0]
    with pytest.raises(ValueError, match=f"'{missing}'"):
        render_all(tables, {name: tmp_path / "x.png"}, model=MODEL, choice=choice)
    tables[missing] = None
    with pytest.raises(ValueError, match=f"table '{missing}' is missing"):
        render_all(tables, {name: tmp_path / "x.png"}, model=MODEL, choice=choice)
    problems = render_all(tables, {name: tmp_path / "x.png"}, model=MODEL, choice=choice, strict=False)
    assert missing in problems[name] and imread(tmp_path / "x.png").ndim == 3


def test_summary_utility_table_has_the_interval_its_heading_promises_and_formatted_floats(tmp_path):
    import re

    from scipy.stats import norm

    from prosv.report.summary import write_summary

    tables, choice = all_tables()
    sc = tables["scaling"].copy()
    sc["lr_alpha"] = sc["lr_alpha"] * (1 / 48)  # width-scaled rates are long floats: 0.0208333...
    tables["scaling"] = sc
    text = write_summary(tables, tmp_path / "S.md", model=MODEL, choice=choice, n_boot=200)
    section = text.split("## Utility")[1].split("\n## ")[0]
    assert "95% Wilson interval" in section.splitlines()[0] and "mean +- std over concepts" in section.splitlines()[0]
    # the Wilson bounds, recomputed as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n
    acc = accuracy_frame()
    part = acc[(acc.method == "alpha_run") & (acc.task == "arithmetic")]
    k, n = part.correct.sum(), part.n.sum()
    z = norm.ppf(0.975)
    roots = sorted(np.roots([1 + z * z / n, -(2 * k / n + z * z / n), (k / n) ** 2]).real)
    row = next(line for line in section.splitlines() if line.startswith("| alpha_run | 1.00 | arithmetic |"))
    assert f"{k / n:.3f} [{roots[0]:.3f}, {roots[1]:.3f}] of {n}" in row and " +- " in row
    assert "| unsteered | 1.00 | arithmetic |" in section and "1 (reference)" in section
    raw = re.search(r"(?<![\d.])(?:0\.0*[1-9]\d{4,}|[1-9]\d*\.\d{5,})", text)  # 5+ significant digits
    assert raw is None, text[raw.start() - 40 : raw.end() + 10]
    assert "| 0.0208 |" in text.split("## Scaling study")[1] and "0.020833" not in text


def test_summary_says_what_the_numbers_mean_in_words_by_a_fixed_rule(tmp_path):
    from prosv.report.summary import write_summary

    tables, choice = all_tables()
    frames = rating_frames(np.random.default_rng(0))
    frames[2] = frames[2].assign(response=[f"prosv answer {i}" for i in range(len(frames[2]))])
    from prosv.report.examples import build_examples_table

    tables["examples"] = ex = build_examples_table(frames)
    # the rule, recomputed: PrOSV is the prompt-only lang run; its concepts ranked by concept score,
    # the 25/50/75th percentile by nearest rank; FSSV is the `all` run with the same loss
    prosv = frames[2]
    scores = prosv.groupby("concept_id").concept_score.mean()
    ranked = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]))
    expected = list(dict.fromkeys(ranked[int(np.floor(q * (len(ranked) - 1) + 0.5))][0] for q in (0.25, 0.5, 0.75)))
    assert list(dict.fromkeys(ex.concept_id)) == expected
    assert set(ex.method) == {"unsteered", "beta_run", "alpha_run"} and (ex.instruction_idx == 0).all()
    first = ex[(ex.concept_id == expected[0]) & (ex.condition == "PrOSV")].iloc[0]
    truth = prosv[(prosv.concept_id == expected[0]) & (prosv.instruction_idx == 0)].iloc[0]
    assert first.response == truth.response and first.concept_score == truth.concept_score
    text = write_summary(tables, tmp_path / "S.md", model=MODEL, choice=choice, n_boot=200, provenance={"dtype": "x"})
    words = text.split("## What the numbers mean in words")[1]
    assert truth.response in words and "25th percentile" in words
    assert "| PrOSV | alpha_run |" in words and "| FSSV | beta_run |" in words and "| unsteered | unsteered |" in words
    assert "Made on: dtype x." in text
