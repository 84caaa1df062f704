"""`python -m benchmark check`: regression check against a baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import check, cli

SPREAD = [-0.01, 0.0, 0.01]  # per-seed offsets: std 0.01 over 3 seeds


def results_table() -> pd.DataFrame:
    rows = []
    cells = [
        ("simclr", "ntxent", 64, 126, True, "method", 0.85),
        ("simclr", "ntxent", 64, 126, False, "method", 0.82),
        ("simclr", "triplet", 64, 126, True, "method", 0.78),
        ("simclr", "ntxent", 128, 254, True, "batch", 0.86),
        ("moco", "infonce", 64, 256, True, "queue", 0.80),
        ("byol", "none", 64, 0, False, "method", 0.79),
    ]
    for method, objective, batch, neg, tuned, sweep, acc in cells:
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
                )
            )
    return pd.DataFrame(rows)


def cell_mask(df: pd.DataFrame, objective: str = "triplet") -> pd.Series:
    return (df.method == "simclr") & (df.objective == objective) & (df.sweep == "method")


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    return cli.main(argv)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Baseline written from results_table(); returns a runner for `check` on a given table."""
    results_table().to_csv(tmp_path / "base.csv", index=False)
    paths = [
        "--baseline",
        str(tmp_path / "baseline.json"),
        "--summary",
        str(tmp_path / "check.json"),
    ]
    assert (
        run_cli(
            ["check", "--results", str(tmp_path / "base.csv"), "--update-baseline", *paths],
            monkeypatch,
        )
        == 0
    )

    def run(df: pd.DataFrame, *extra: str) -> tuple[int, dict]:
        df.to_csv(tmp_path / "results.csv", index=False)
        code = run_cli(
            ["check", "--results", str(tmp_path / "results.csv"), *paths, *extra], monkeypatch
        )
        return code, json.loads((tmp_path / "check.json").read_text())

    run.path = tmp_path
    return run


def test_update_baseline_writes_cells(workdir) -> None:
    data = json.loads((workdir.path / "baseline.json").read_text())
    assert data["suite"] == "core" and len(data["cells"]) == 6
    cell = next(c for c in data["cells"] if c["objective"] == "triplet")
    assert cell["linear_acc"]["n"] == 3
    assert cell["linear_acc"]["mean"] == pytest.approx(0.78)
    assert cell["linear_acc"]["std"] == pytest.approx(0.01)
    assert "knn_acc" in cell and cell["tuned"] is True and cell["negatives"] == 126
    assert not list(workdir.path.glob(".*.tmp"))


def test_identical_results_pass(workdir, capsys) -> None:
    code, summary = workdir(results_table())
    assert code == 0 and summary["passed"] and summary["counts"]["ok"] == 6
    out = capsys.readouterr().out
    assert "baseline" in out and "status" in out and "PASS" in out and out.count(" ok") >= 6


def test_drop_beyond_tolerance_fails(workdir, capsys) -> None:
    df = results_table()
    df.loc[cell_mask(df), "linear_acc"] -= 0.05  # tol = max(2*sqrt(2*0.01^2/3), 0.01) ~ 0.0163
    code, summary = workdir(df)
    assert code == 1 and not summary["passed"]
    assert [(f["objective"], f["status"]) for f in summary["failing"]] == [("triplet", "DROP")]
    assert summary["failing"][0]["delta"] == pytest.approx(-0.05)
    assert "DROP" in capsys.readouterr().out


def test_drop_within_seed_spread_passes(workdir) -> None:
    df = results_table()
    df.loc[cell_mask(df), "linear_acc"] -= 0.014  # > 0.01 floor, < 2 SE = 0.0163
    code, summary = workdir(df)
    assert code == 0 and summary["passed"]
    row_tol = check.tolerance({"std": 0.01, "n": 3}, {"std": 0.01, "n": 3}, 0.01)
    assert row_tol == pytest.approx(2 * np.sqrt(2 * 0.01**2 / 3))


def test_floor_applies_without_spread(workdir) -> None:
    df = results_table()
    df = df[df.seed == 0].copy()  # one seed: std unknown on the current side
    code, _ = workdir(df)
    assert code == 0  # seed-0 offsets (-0.01) lie within the baseline spread
    assert check.tolerance({"std": 0.0, "n": 1}, {"std": 0.0, "n": 1}, 0.01) == 0.01


def test_missing_cell_fails(workdir) -> None:
    df = results_table()
    code, summary = workdir(df[~cell_mask(df, "ntxent")])
    assert code == 1
    assert {f["status"] for f in summary["failing"]} == {"MISSING"}
    assert summary["counts"]["missing"] == 2  # tuned and untuned ntxent method cells


def test_diverged_cell_fails(workdir) -> None:
    df = results_table()
    df.loc[cell_mask(df) & (df.seed == 1), "diverged"] = True
    code, summary = workdir(df)
    assert code == 1 and summary["failing"][0]["status"] == "DIVERGED"


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


def test_missing_baseline_is_user_error(tmp_path: Path, monkeypatch, capsys) -> None:
    results_table().to_csv(tmp_path / "results.csv", index=False)
    code = run_cli(
        [
            "check",
            "--results",
            str(tmp_path / "results.csv"),
            "--baseline",
            str(tmp_path / "none.json"),
            "--summary",
            str(tmp_path / "check.json"),
        ],
        monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2 and "--update-baseline" in err and "none.json" in err


@pytest.mark.parametrize("drop", ["linear_acc", "sweep_bad", "missing_file"])
def test_bad_results_exit_2(workdir, monkeypatch, capsys, drop) -> None:
    df = results_table()
    path = workdir.path / "bad.csv"
    if drop == "linear_acc":
        df.drop(columns=["linear_acc"]).to_csv(path, index=False)
    elif drop == "sweep_bad":
        df.assign(sweep="grid").to_csv(path, index=False)
    code = run_cli(
        [
            "check",
            "--results",
            str(path),
            "--baseline",
            str(workdir.path / "baseline.json"),
            "--summary",
            str(workdir.path / "check.json"),
        ],
        monkeypatch,
    )
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1


def test_corrupt_baseline_exit_2(workdir, monkeypatch) -> None:
    (workdir.path / "baseline.json").write_text("{not json")
    results_table().to_csv(workdir.path / "results.csv", index=False)
    code = run_cli(
        [
            "check",
            "--results",
            str(workdir.path / "results.csv"),
            "--baseline",
            str(workdir.path / "baseline.json"),
            "--summary",
            str(workdir.path / "check.json"),
        ],
        monkeypatch,
    )
    assert code == 2
