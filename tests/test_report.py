"""`python -m benchmark report` on a small synthetic results table."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import cli, report

FIGURE_NAMES = [
    "acc_vs_batch",
    "acc_vs_negatives",
    "method_objective_heatmap",
    "sensitivity",
    "mi_check",
]


def synthetic_results(seeds: int = 3) -> pd.DataFrame:
    """A few methods/objectives, a batch sweep, negatives and queue sweeps, tuned and untuned."""
    rng = np.random.default_rng(0)
    rows = []

    def add(
        method,
        objective,
        sweep,
        batch,
        negatives,
        tuned,
        acc,
        temperature=np.nan,
        margin=np.nan,
        n=seeds,
    ):
        for seed in range(n):
            lin = float(np.clip(acc + rng.normal(0, 0.01), 0, 1))
            rows.append(
                dict(
                    suite="smoke",
                    method=method,
                    objective=objective,
                    dataset="digits",
                    encoder="mlp",
                    batch_size=batch,
                    negatives=negatives,
                    seed=seed,
                    temperature=temperature,
                    margin=margin,
                    tuned=tuned,
                    epochs=2,
                    linear_acc=lin,
                    knn_acc=lin - 0.02,
                    val_acc=lin + 0.01,
                    train_seconds=3.0 + seed,
                    views_per_second=1000.0,
                    diverged=False,
                    config_hash=f"{method}{objective}{batch}{negatives}{tuned}",
                    sweep=sweep,
                )
            )

    for objective, base, t, m in [
        ("ntxent", 0.85, 0.2, np.nan),
        ("infonce", 0.83, 0.1, np.nan),
        ("triplet", 0.78, np.nan, 0.5),
    ]:
        add("simclr", objective, "method", 64, 126, True, base, t, m)
        add(
            "simclr",
            objective,
            "method",
            64,
            126,
            False,
            base - 0.03,
            0.5 if t == t else t,
            1.0 if m == m else m,
        )
        for b in [16, 32, 64, 128]:
            add(
                "simclr", objective, "batch", b, 2 * b - 2, True, base - 0.02 * (128 // b) / 4, t, m
            )
        for k in [4, 16, 64]:
            add("simclr", objective, "negatives", 64, k, True, base - 0.05 / np.log2(k + 1), t, m)
    for k in [64, 256, 1024]:
        add("moco", "infonce", "queue", 64, k, True, 0.80 + 0.01 * np.log2(k) / 10, 0.07)
        add("npid", "nce", "queue", 64, k, True, 0.74 + 0.01 * np.log2(k) / 10, 0.07)
    add("moco", "infonce", "method", 64, 1024, True, 0.82, 0.07)
    add("npid", "nce", "method", 64, 1024, True, 0.75, 0.07)
    add("byol", "none", "method", 64, 0, False, 0.80)
    add("supervised", "none", "method", 64, 0, False, 0.95)
    add("random", "none", "method", 64, 0, False, 0.40, n=1)
    df = pd.DataFrame(rows)
    df.loc[(df.method == "npid") & (df.sweep == "method") & (df.seed == 2), "diverged"] = True
    return df


def synthetic_trials() -> pd.DataFrame:
    rows = []
    for objective, param in [
        ("ntxent", "temperature"),
        ("infonce", "temperature"),
        ("triplet", "margin"),
    ]:
        for trial in range(6):
            value = 0.05 * 2**trial if param == "temperature" else 0.1 * (trial + 1)
            rows.append(
                dict(
                    method="simclr",
                    objective=objective,
                    trial=trial,
                    temperature=value if param == "temperature" else np.nan,
                    margin=value if param == "margin" else np.nan,
                    val_acc=0.8 - 0.01 * abs(trial - 2),
                    state="PRUNED" if trial == 5 else "COMPLETE",
                )
            )
    return pd.DataFrame(rows)


def synthetic_mi() -> pd.DataFrame:
    rows = []
    for n in [64, 256]:
        for true_mi in [1.0, 2.0, 4.0, 6.0]:
            for bound in ["infonce", "nwj", "dv", "jsd"]:
                est = min(true_mi, np.log(n)) if bound == "infonce" else true_mi * 0.9
                rows.append(dict(bound=bound, true_mi=true_mi, estimate=est, batch_size=n))
    return pd.DataFrame(rows)


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    return cli.main(argv)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    synthetic_results().to_csv(root / "results.csv", index=False)
    synthetic_trials().to_csv(root / "trials.csv", index=False)
    synthetic_mi().to_csv(root / "mi_check.csv", index=False)
    (root / "README.md").write_text(
        "# Title\n\nintro\n\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\n\ntail\n"
    )
    mp = pytest.MonkeyPatch()
    try:
        code = run_cli(
            [
                "report",
                "--results",
                str(root / "results.csv"),
                "--trials",
                str(root / "trials.csv"),
                "--mi",
                str(root / "mi_check.csv"),
                "--out",
                str(root / "out"),
                "--readme",
                str(root / "README.md"),
                "--no-mlflow",
            ],
            mp,
        )
    finally:
        mp.undo()
    assert code == 0
    return root


def test_every_output_exists_and_is_non_empty(rendered: Path) -> None:
    out = rendered / "out"
    expected = [
        "leaderboard.csv",
        "leaderboard.md",
        "index.html",
        "metrics.json",
        "plots/acc_vs_batch.csv",
        "plots/acc_vs_negatives.csv",
    ]
    expected += [f"figures/{n}.{ext}" for n in FIGURE_NAMES for ext in ("png", "svg")]
    for rel in expected:
        assert (out / rel).is_file(), rel
        assert (out / rel).stat().st_size > 0, rel
    assert not list(out.rglob("*.tmp")), "temp files left behind"
    assert (out / "figures/acc_vs_batch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_content(rendered: Path) -> None:
    lb = pd.read_csv(rendered / "out/leaderboard.csv")
    assert len(lb) == 8  # simclr x3, moco, npid, byol, supervised, random
    assert lb.duplicated(["method", "objective", "dataset", "encoder"]).sum() == 0
    methods = lb[lb["role"] == "method"]
    assert methods["linear_acc"].is_monotonic_decreasing
    assert list(methods["rank"]) == list(range(1, len(methods) + 1))
    ntxent = lb[(lb.method == "simclr") & (lb.objective == "ntxent")].iloc[0]
    assert ntxent["tuned"] and ntxent["temperature"] == pytest.approx(0.2)
    assert ntxent["untuned_linear_acc"] < ntxent["linear_acc"]
    assert ntxent["negatives"] == 126 and ntxent["linear_acc_ci95"] > 0
    assert ntxent["supervised_linear_acc"] > 0.9 and ntxent["random_linear_acc"] < 0.5
    rand = lb[lb.method == "random"].iloc[0]
    assert rand["linear_acc_ci95"] == 0 and rand["role"] == "floor"
    npid = lb[lb.method == "npid"].iloc[0]
    assert npid["n_diverged"] == 1 and npid["n_ok"] == 2
    md = (rendered / "out/leaderboard.md").read_text()
    assert "| rank | method |" in md and "supervised (ceiling)" in md and "±" in md


def test_index_html_is_self_contained(rendered: Path) -> None:
    out = rendered / "out"
    page = (out / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs
    for ref in refs:
        assert not re.match(r"^(https?:)?//", ref), ref
        if not ref.startswith("data:"):
            assert (out / ref).is_file(), ref
    assert page.count('src="data:image/png;base64,') == len(FIGURE_NAMES)
    assert "<table" in page and "simclr" in page and "supervised (ceiling)" in page
    assert "Best Optuna trial" in page and "MI check" in page


def test_metrics_and_dvc_plot_tables(rendered: Path) -> None:
    out = rendered / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert all("/" not in k or isinstance(v, float | type(None)) for k, v in metrics.items())
    assert 0.8 < metrics["simclr/ntxent/digits/mlp/linear_acc"] < 0.9
    assert not any(isinstance(v, dict) for v in metrics.values())
    batch = pd.read_csv(out / "plots/acc_vs_batch.csv")
    assert set(batch["batch_size"]) == {16, 32, 64, 128}
    assert set(batch["objective"]) == {"ntxent", "infonce", "triplet"}
    assert (batch["n_seeds"] == 3).all()
    neg = pd.read_csv(out / "plots/acc_vs_negatives.csv")
    assert set(neg["sweep"]) == {"negatives", "queue"}
    assert {"moco", "npid", "simclr"} == set(neg["method"])


def test_readme_between_markers_only(rendered: Path) -> None:
    text = (rendered / "README.md").read_text()
    assert text.startswith("# Title\n\nintro\n\n<!-- leaderboard:start -->\n")
    assert text.endswith("<!-- leaderboard:end -->\n\ntail\n")
    assert "old" not in text and "| rank | method |" in text


def test_readme_without_markers_untouched(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert report.update_readme(readme, "table\n") is False
    assert readme.read_text() == "# no markers\n"


def test_placeholders_without_trials_and_mi_and_mlflow_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = synthetic_results(seeds=1)
    df = df[df.sweep == "method"]  # no sweeps either: placeholder figures
    df.to_csv(tmp_path / "results.csv", index=False)
    calls = []
    fake = types.ModuleType("benchmark.tracking")
    fake.log_report_artifacts = lambda suite, paths: calls.append((suite, list(paths)))
    import benchmark

    monkeypatch.setattr(benchmark, "tracking", fake, raising=False)
    monkeypatch.setitem(sys.modules, "benchmark.tracking", fake)
    code = run_cli(
        [
            "report",
            "--results",
            str(tmp_path / "results.csv"),
            "--trials",
            str(tmp_path / "nope.csv"),
            "--mi",
            str(tmp_path / "nope.csv"),
            "--out",
            str(tmp_path / "out"),
        ],
        monkeypatch,
    )
    assert code == 0
    for name in FIGURE_NAMES:
        assert (tmp_path / "out/figures" / f"{name}.png").stat().st_size > 0
    assert "no trials" in (tmp_path / "out/figures/sensitivity.svg").read_text()
    assert len(calls) == 1 and calls[0][0] == "smoke"
    assert all(p.is_file() for p in calls[0][1]) and len(calls[0][1]) >= 15
    assert not (tmp_path / "README.md").exists()


def test_ci_uses_t_distribution() -> None:
    assert report.ci95_halfwidth([0.5]) == 0.0
    # n=2: t(0.975, 1) = 12.706; std = 0.0707; se = 0.05
    assert report.ci95_halfwidth([0.45, 0.55]) == pytest.approx(12.706 * 0.05, rel=1e-3)


@pytest.mark.parametrize(
    "setup, needle",
    [
        (lambda p: None, "results.csv"),
        (
            lambda p: synthetic_results(1).drop(columns=["linear_acc"]).to_csv(p, index=False),
            "linear_acc",
        ),
        (lambda p: synthetic_results(1).assign(linear_acc=91.0).to_csv(p, index=False), "[0, 1]"),
        (lambda p: synthetic_results(1).assign(tuned="maybe").to_csv(p, index=False), "tuned"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, monkeypatch, capsys, setup, needle) -> None:
    path = tmp_path / "results.csv"
    setup(path)
    code = run_cli(
        ["report", "--results", str(path), "--out", str(tmp_path / "out"), "--no-mlflow"],
        monkeypatch,
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_trials_columns_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    synthetic_results(1).to_csv(tmp_path / "results.csv", index=False)
    synthetic_trials().drop(columns=["state"]).to_csv(tmp_path / "trials.csv", index=False)
    code = run_cli(
        [
            "report",
            "--results",
            str(tmp_path / "results.csv"),
            "--trials",
            str(tmp_path / "trials.csv"),
            "--out",
            str(tmp_path / "out"),
            "--no-mlflow",
        ],
        monkeypatch,
    )
    assert code == 2 and "state" in capsys.readouterr().err
