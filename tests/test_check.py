"""`python -m benchmark check`: the statistical regression gate against a baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark import check, cli, sources

SPREAD = [-0.01, 0.0, 0.01]  # per-seed offsets: std 0.01 over 3 seeds
CELLS = [
    ("simclr", "ntxent", 64, 126, True, "method", 0.85),
    ("simclr", "ntxent", 64, 126, False, "method", 0.82),
    ("simclr", "triplet", 64, 126, True, "method", 0.78),
    ("simclr", "ntxent", 128, 254, True, "batch", 0.86),
    ("moco", "infonce", 64, 256, True, "queue", 0.80),
    ("byol", "none", 64, 0, False, "method", 0.79),
]


def results_table() -> pd.DataFrame:
    rows = []
    for method, objective, batch, neg, tuned, sweep, acc in CELLS:
        for seed, off in enumerate(SPREAD):
            rows.append(
                dict(
                    suite="core",
                    method=method,
                    objective=objective,
                    dataset="digits",
                    encoder="mlp",
                    batch_size=batch,
                    negatives=neg,
                    seed=seed,
                    temperature=0.2,
                    margin=np.nan,
                    tuned=tuned,
                    epochs=2,
                    linear_acc=acc + off,
                    knn_acc=acc - 0.02 + off,
                    val_acc=acc,
                    train_seconds=1.0,
                    views_per_second=100.0,
                    diverged=False,
                    config_hash="h",
                    sweep=sweep,
                    code_digest=f"d-{method}-{objective}",
                )
            )
    return pd.DataFrame(rows)


def cell_mask(df: pd.DataFrame, objective: str = "triplet") -> pd.Series:
    return (df.method == "simclr") & (df.objective == objective) & (df.sweep == "method")


def reseed(df: pd.DataFrame, mask: pd.Series, metric: str, offsets: list[float]) -> None:
    """Add per-seed offsets (seed 0, 1, 2) to one metric of the masked rows, in place."""
    for seed, off in enumerate(offsets):
        df.loc[mask & (df.seed == seed), metric] += off


def fake_cell_files(method: str, objective: str) -> dict[str, str]:
    """A stand-in for benchmark.sources.cell_files: independent of the tree's current files."""
    files = [f"benchmark/methods/{method}.py", "benchmark/train.py", "benchmark/probe.py"]
    files += [f"benchmark/objectives/{objective}.py"] if objective != "none" else []
    return {f: f"{abs(hash(f)) % 16**12:012x}" for f in sorted(files)}


@pytest.fixture(autouse=True)
def stable_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "cell_files", fake_cell_files)


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    return cli.main(argv)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Baseline written from results_table(); returns a runner for `check` on a given table."""
    results_table().to_csv(tmp_path / "base.csv", index=False)
    paths = ["--baseline", str(tmp_path / "baseline.json"), "--summary", str(tmp_path / "c.json")]
    argv = ["check", "--results", str(tmp_path / "base.csv"), "--update-baseline", *paths]
    assert run_cli(argv, monkeypatch) == 0

    def run(df: pd.DataFrame, *extra: str) -> tuple[int, dict]:
        df.to_csv(tmp_path / "results.csv", index=False)
        argv = ["check", "--results", str(tmp_path / "results.csv"), *paths, *extra]
        code = run_cli(argv, monkeypatch)
        return code, json.loads((tmp_path / "c.json").read_text())

    run.path = tmp_path
    return run


# ----------------------------------------------------------------------------- baseline


def test_update_baseline_writes_per_seed_values_digest_and_sources(workdir) -> None:
    data = json.loads((workdir.path / "baseline.json").read_text())
    assert data["version"] == 2 and data["suite"] == "core" and len(data["cells"]) == 6
    cell = next(c for c in data["cells"] if c["objective"] == "triplet")
    lin = cell["linear_acc"]
    assert lin["seeds"] == pytest.approx({"0": 0.77, "1": 0.78, "2": 0.79})
    assert lin["n"] == 3 and lin["mean"] == pytest.approx(0.78)
    assert lin["std"] == pytest.approx(0.01) and cell["knn_acc"]["n"] == 3
    assert cell["diverged"] == 0 and cell["code_digest"] == "d-simclr-triplet"
    assert cell["tuned"] is True and cell["negatives"] == 126
    assert cell["sources"] == fake_cell_files("simclr", "triplet")
    assert "benchmark/objectives/triplet.py" in cell["sources"]
    assert not list(workdir.path.glob(".*.tmp"))


def test_results_without_code_digest_are_checked(workdir) -> None:
    code, summary = workdir(results_table().drop(columns=["code_digest"]))
    assert code == 0 and summary["passed"]


def test_cell_stats_code_digest_and_non_finite_rows() -> None:
    df = results_table()
    df.loc[cell_mask(df) & (df.seed == 2), "code_digest"] = "another"
    df.loc[cell_mask(df, "ntxent") & (df.seed == 1), "knn_acc"] = np.inf
    st = check.cell_stats(df)
    trip = next(v for k, v in st.items() if k[1] == "triplet")
    assert trip["code_digest"] == ["another", "d-simclr-triplet"]
    bad = next(v for k, v in st.items() if k[1] == "ntxent" and k[6] and k[7] == "method")
    assert bad["diverged"] == 1 and set(bad["linear_acc"]["seeds"]) == {"0", "2"}
    # a table without the column (older results): unknown, not an error
    st = check.cell_stats(results_table().drop(columns=["code_digest"]))
    assert {v["code_digest"] for v in st.values()} == {None}


def test_v1_baseline_is_a_one_line_error(workdir, monkeypatch, capsys) -> None:
    path = workdir.path / "baseline.json"
    v1 = {"version": 1, "suite": "core", "cells": [{"linear_acc": {"mean": 0.8, "std": 0.01}}]}
    path.write_text(json.dumps(v1))
    results_table().to_csv(workdir.path / "results.csv", index=False)
    argv = ["check", "--results", str(workdir.path / "results.csv"), "--baseline", str(path)]
    code = run_cli([*argv, "--summary", str(workdir.path / "c.json")], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "version 1" in err and "--update-baseline" in err and str(path) in err


# ----------------------------------------------------------------------------- statistics


def test_drop_test_matches_scipy_paired_and_welch() -> None:
    base = {"0": 0.85, "1": 0.86, "2": 0.84}
    cur = {"0": 0.80, "1": 0.83, "2": 0.78}
    t = check.drop_test(base, cur)
    ref = stats.ttest_rel(list(cur.values()), list(base.values()), alternative="less")
    assert t["test"] == "paired" and t["df"] == 2
    assert t["p_drop"] == pytest.approx(ref.pvalue) and t["p_gain"] == pytest.approx(1 - ref.pvalue)
    ci = stats.ttest_rel(list(base.values()), list(cur.values())).confidence_interval()
    assert t["ci"] == pytest.approx([ci.low, ci.high])
    cur = {"3": 0.80, "4": 0.83, "5": 0.78, "6": 0.80}  # no common seed: Welch
    t = check.drop_test(base, cur)
    ref = stats.ttest_ind(
        list(cur.values()), list(base.values()), equal_var=False, alternative="less"
    )
    assert t["test"] == "welch" and t["p_drop"] == pytest.approx(ref.pvalue)
    assert t["df"] == pytest.approx(ref.df)
    half = stats.t.ppf(0.975, ref.df) * t["se"]
    assert t["ci"] == pytest.approx([t["drop"] - half, t["drop"] + half])


def test_drop_test_zero_spread_and_single_value() -> None:
    base = {"0": 0.85, "1": 0.86, "2": 0.84}
    same = check.drop_test(base, dict(base))
    assert same["drop"] == 0 and same["p_drop"] == 1.0 and same["p_gain"] == 1.0
    # a constant paired difference: exact, with or without a variance prior
    for prior in [(0.0, 0.0), (1e6, 1e-4)]:
        lower = check.drop_test(base, {k: v - 0.02 for k, v in base.items()}, prior)
        assert lower["p_drop"] == 0.0 and lower["p_gain"] == 1.0 and lower["ci"][0] > 0.019
        higher = check.drop_test(base, {k: v + 0.02 for k, v in base.items()}, prior)
        assert higher["p_drop"] == 1.0 and higher["p_gain"] == 0.0
    single = check.drop_test(base, {"0": 0.70})
    assert single["test"] == "single" and single["p_drop"] is None
    assert single["drop"] == pytest.approx(0.15)
    assert check.drop_test(base, {})["test"] is None


def test_moderated_variance_never_below_the_cells_own() -> None:
    base = {"0": 0.80, "1": 0.90, "2": 0.85}  # a noisy cell (std 5 points)
    cur = {"0": 0.78, "1": 0.84, "2": 0.80}
    plain, mod = check.drop_test(base, cur), check.drop_test(base, cur, (1e6, 1e-4))
    assert mod["se"] == pytest.approx(plain["se"]) and mod["df"] > 1e5
    quiet = {k: v - 0.03 + 0.001 * i for i, (k, v) in enumerate(base.items())}
    mod = check.drop_test(base, quiet, (1e6, 1e-4))  # own spread tiny: the prior's
    assert mod["se"] == pytest.approx(np.sqrt(2e-4 / 3), rel=1e-3)


def test_variance_prior_recovers_a_known_prior() -> None:
    rng = np.random.default_rng(0)
    d0, s0 = 8.0, 1e-4
    sigma2 = d0 * s0 / rng.chisquare(d0, 3000)  # scaled inverse chi-square
    s2 = sigma2 * rng.chisquare(2, 3000) / 2  # 3 seeds: 2 df
    cells = {("m", str(i), "digits"): {"x": {"n": 3, "std": v**0.5}} for i, v in enumerate(s2)}
    fit_d0, fit_s0 = check.variance_prior(cells, "x")["digits"]
    assert 5 < fit_d0 < 13 and fit_s0 == pytest.approx(s0, rel=0.15)
    same = {("m", str(i), "csbm"): {"x": {"n": 3, "std": 0.01}} for i in range(5)}
    assert check.variance_prior(same, "x")["csbm"][0] == 10  # capped: 5 cells x 2 df
    assert check.variance_prior(dict(list(same.items())[:2]), "x") == {}  # too few cells


def test_holm_and_bh_against_hand_computed_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, max(0.04, 0.06)
    assert check.adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p_(i) * 4 / i -> 0.02, 0.02, 0.04, 0.04, then running minimum from the top
    assert check.adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert check.adjust([0.5, 0.9], "holm") == pytest.approx([1.0, 1.0])
    assert check.adjust([], "bh") == []
    with pytest.raises(ValueError, match="holm"):
        check.adjust([0.1], "none")


def _noise_cells(rng: np.random.Generator, n: int = 140) -> dict[tuple, dict]:
    cells = {}
    for i in range(n):
        vals = 0.8 + 0.01 * rng.standard_normal((2, 3))
        cells[("m", f"o{i}", "digits", "mlp", 64, 10, True, "method")] = {
            m: check.metric_entry({str(s): float(v) for s, v in enumerate(vals[j])})
            for j, m in enumerate(check.METRICS)
        } | {"diverged": 0}
    return cells


@pytest.mark.parametrize("correction", ["bh", "holm"])
def test_pure_noise_fails_at_most_5_percent_of_suites(correction: str) -> None:
    """~140 cells x 2 metrics of pure seed noise (std 0.01, 3 seeds), 100 seeded suites."""
    rng = np.random.default_rng(20240601)
    failed = 0
    for _ in range(100):
        rows = check.compare(_noise_cells(rng), _noise_cells(rng), correction=correction)
        failed += any(r["status"] in check.FAILING for r in rows)
    assert failed <= 5


def test_a_5_point_drop_in_one_of_140_noisy_cells_is_caught() -> None:
    rng = np.random.default_rng(7)
    caught = 0
    for _ in range(20):
        base, cur = _noise_cells(rng), _noise_cells(rng)
        key = next(iter(cur))
        seeds = {s: v - 0.05 for s, v in cur[key]["linear_acc"]["seeds"].items()}
        cur[key]["linear_acc"] = check.metric_entry(seeds)
        rows = {tuple(r[c] for c in check.CELL): r for r in check.compare(base, cur)}
        caught += rows[key]["status"] == "DROP"
    assert caught >= 12  # moderated variance; the plain 2-df t catches ~none (gate_perf)


# ----------------------------------------------------------------------------- the gate


def test_identical_results_pass(workdir, capsys) -> None:
    code, summary = workdir(results_table())
    assert code == 0 and summary["passed"] and summary["counts"]["ok"] == 6
    assert summary["tests"] == 12 and summary["correction"] == "bh"
    assert summary["alpha"] == 0.05 and summary["min_drop"] == 0.005
    out = capsys.readouterr().out
    assert "base lin%" in out and "d knn" in out and out.count(" ok") >= 6
    assert "-0.00" not in out  # an exact zero delta prints as +0.00
    assert out.strip().splitlines()[-1].startswith("check: PASS: 0 of 6 cells failing")


def test_drop_within_seed_spread_passes(workdir) -> None:
    df = results_table()
    reseed(df, cell_mask(df), "linear_acc", [0.01, -0.015, -0.019])  # mean drop 0.8 point
    for variance in ["moderated", "cell"]:
        code, summary = workdir(df, "--variance", variance)
        assert code == 0 and summary["passed"], variance


def test_planted_5_point_drop_fails_naming_cell_drop_interval_p_and_source(workdir, capsys) -> None:
    df = results_table()
    reseed(df, cell_mask(df), "linear_acc", [-0.052, -0.047, -0.051])
    code, summary = workdir(df)
    assert code == 1 and not summary["passed"] and summary["counts"]["drop"] == 1
    (fail,) = summary["failing"]
    assert (fail["objective"], fail["status"], fail["failed_metrics"]) == (
        "triplet",
        "DROP",
        ["linear_acc"],
    )
    t = fail["tests"]["linear_acc"]
    assert t["test"] == "paired" and t["drop"] == pytest.approx(0.05)
    assert t["ci"][0] < 0.05 < t["ci"][1] and t["p_drop_adj"] < 0.05
    assert fail["source_change"] == {"changed": [], "added": [], "removed": []}
    out = capsys.readouterr().out
    assert "simclr/triplet digits mlp batch=64 neg=126 tuned sweep=method" in out
    assert "linear_acc: drop 5.00 points, 95% CI [" in out and "adjusted p" in out
    assert "no source change" in out
    assert out.strip().splitlines()[-1].startswith("check: FAIL: 1 of 6 cells failing (1 drop")


def test_flagged_cell_names_the_changed_source_file(workdir, monkeypatch, capsys) -> None:
    def edited(method: str, objective: str) -> dict[str, str]:
        files = fake_cell_files(method, objective)
        if objective == "triplet":
            files["benchmark/objectives/triplet.py"] = "0" * 12
            files["benchmark/objectives/_core/pairs.py"] = "1" * 12
            del files["benchmark/probe.py"]
        return files

    monkeypatch.setattr(sources, "cell_files", edited)
    df = results_table()
    reseed(df, cell_mask(df), "linear_acc", [-0.052, -0.047, -0.051])
    code, summary = workdir(df)
    assert code == 1
    assert summary["failing"][0]["source_change"] == {
        "changed": ["benchmark/objectives/triplet.py"],
        "added": ["benchmark/objectives/_core/pairs.py"],
        "removed": ["benchmark/probe.py"],
    }
    out = capsys.readouterr().out
    assert "sources: changed: benchmark/objectives/triplet.py; added: " in out
    assert "removed: benchmark/probe.py" in out


def test_unreadable_sources_are_unknown_not_an_error(tmp_path, monkeypatch, capsys) -> None:
    def gone(method: str, objective: str) -> dict[str, str]:
        raise FileNotFoundError(f"benchmark/methods/{method}.py")

    monkeypatch.setattr(sources, "cell_files", gone)
    df = results_table()
    assert all(c["sources"] is None for c in check.baseline_from_results(df)["cells"])
    old = {"benchmark/train.py": "a" * 12}
    change = check.source_change(old, "simclr", "triplet")
    assert change == {"changed": [], "added": [], "removed": ["benchmark/train.py"]}
    assert "sources unknown" in check.describe_change(None)


def test_systematic_drop_below_the_floor_passes(workdir) -> None:
    df = results_table()
    df["linear_acc"] -= 0.003  # every cell, every seed: exact, p = 0, but 0.3 point
    code, summary = workdir(df)
    assert code == 0 and summary["passed"]
    code, summary = workdir(df, "--min-drop", "0.002")  # the floor is what let it pass
    assert code == 1 and summary["counts"]["drop"] == 6


def test_knn_only_drop_fails(workdir) -> None:
    df = results_table()
    reseed(df, cell_mask(df), "knn_acc", [-0.052, -0.047, -0.051])
    code, summary = workdir(df)
    assert code == 1 and [f["failed_metrics"] for f in summary["failing"]] == [["knn_acc"]]


def test_significant_gain_is_improved_not_failed(workdir) -> None:
    df = results_table()
    reseed(df, cell_mask(df), "linear_acc", [0.052, 0.047, 0.051])
    code, summary = workdir(df)
    assert code == 0 and summary["counts"]["improved"] == 1


def test_other_seeds_use_welch(workdir) -> None:
    df = results_table()
    df["seed"] += 3  # no seed in common with the baseline
    df.loc[cell_mask(df), "linear_acc"] -= 0.05
    code, summary = workdir(df)
    assert code == 1 and summary["failing"][0]["tests"]["linear_acc"]["test"] == "welch"


def test_single_seed_uses_the_larger_floor(workdir, capsys) -> None:
    df = results_table()
    df = df[df.seed == 0].copy()  # one seed: no spread on the current side
    code, summary = workdir(df)
    assert code == 0 and summary["tests"] == 0  # seed-0 offsets (-1 point): no 10-point drop
    df.loc[cell_mask(df), "linear_acc"] -= 0.08  # 9 points below the baseline mean: ok
    code, summary = workdir(df)
    assert code == 0
    df.loc[cell_mask(df), "linear_acc"] -= 0.02  # 11 points
    code, summary = workdir(df)
    assert code == 1 and summary["failing"][0]["tests"]["linear_acc"]["test"] == "single"
    assert "single value on a side" in capsys.readouterr().out


def test_non_finite_accuracy_makes_the_cell_diverged(workdir) -> None:
    df = results_table()
    df.loc[cell_mask(df) & (df.seed == 1), "linear_acc"] = np.nan
    code, summary = workdir(df)
    assert code == 1 and [f["status"] for f in summary["failing"]] == ["DIVERGED"]
    assert summary["failing"][0]["diverged"] == 1


def test_diverged_cell_fails(workdir) -> None:
    df = results_table()
    df.loc[cell_mask(df) & (df.seed == 1), "diverged"] = True
    code, summary = workdir(df)
    assert code == 1 and summary["failing"][0]["status"] == "DIVERGED"


def test_missing_cell_fails(workdir) -> None:
    df = results_table()
    code, summary = workdir(df[~cell_mask(df, "ntxent")])
    assert code == 1
    assert {f["status"] for f in summary["failing"]} == {"MISSING"}
    assert summary["counts"]["missing"] == 2  # tuned and untuned ntxent method cells


def test_new_cell_reported_not_failed(workdir, capsys) -> None:
    df = results_table()
    extra = df[cell_mask(df)].assign(objective="lifted")
    code, summary = workdir(pd.concat([df, extra]))
    assert code == 0 and summary["counts"]["new"] == 1
    assert "new" in capsys.readouterr().out


def test_update_then_pass_after_change(workdir) -> None:
    df = results_table()
    df.loc[cell_mask(df), "linear_acc"] -= 0.05
    assert workdir(df)[0] == 1
    assert workdir(df, "--update-baseline")[0] == 0
    code, summary = workdir(df)
    assert code == 0 and summary["passed"]


def test_other_suite_is_skipped(workdir, capsys) -> None:
    code, summary = workdir(results_table().assign(suite="smoke"))
    assert code == 0 and summary["passed"] and "core" in summary["skipped"]
    assert "skipped" in capsys.readouterr().out


def test_missing_baseline_is_user_error(tmp_path: Path, monkeypatch, capsys) -> None:
    results_table().to_csv(tmp_path / "results.csv", index=False)
    argv = ["check", "--results", str(tmp_path / "results.csv")]
    argv += ["--baseline", str(tmp_path / "none.json"), "--summary", str(tmp_path / "c.json")]
    code = run_cli(argv, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and "--update-baseline" in err and "none.json" in err


@pytest.mark.parametrize("drop", ["linear_acc", "tuned_bad", "missing_file"])
def test_bad_results_exit_2(workdir, monkeypatch, capsys, drop) -> None:
    df = results_table()
    path = workdir.path / "bad.csv"
    if drop == "linear_acc":
        df.drop(columns=["linear_acc"]).to_csv(path, index=False)
    elif drop == "tuned_bad":
        df.assign(tuned="maybe").to_csv(path, index=False)
    argv = ["check", "--results", str(path), "--baseline", str(workdir.path / "baseline.json")]
    code = run_cli([*argv, "--summary", str(workdir.path / "c.json")], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["{not json", '{"version": 2, "cells": [{"method": "x"}]}'])
def test_corrupt_baseline_exit_2(workdir, monkeypatch, capsys, text) -> None:
    (workdir.path / "baseline.json").write_text(text)
    results_table().to_csv(workdir.path / "results.csv", index=False)
    argv = ["check", "--results", str(workdir.path / "results.csv")]
    argv += ["--baseline", str(workdir.path / "baseline.json")]
    code = run_cli([*argv, "--summary", str(workdir.path / "c.json")], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--update-baseline" in err
