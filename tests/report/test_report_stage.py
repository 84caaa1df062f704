"""`python -m benchmark report` end to end on a small synthetic results table."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from benchmark import cli, report
from benchmark.errors import UserError

FIGURE_NAMES = [
    "acc_vs_batch",
    "acc_vs_negatives",
    "acc_vs_temperature",
    "method_objective_heatmap",
    "paired_differences",
    "sensitivity",
    "mi_check",
]


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    return cli.main(argv)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, synthetic) -> Path:
    root = tmp_path_factory.mktemp("report")
    synthetic["results"]().to_csv(root / "results.csv", index=False)
    synthetic["trials"]().to_csv(root / "trials.csv", index=False)
    synthetic["mi"]().to_csv(root / "mi_check.csv", index=False)
    (root / "README.md").write_text(
        "# Title\n\nintro\n\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\n\ntail\n"
    )
    mp = pytest.MonkeyPatch()
    try:
        argv = ["report", "--results", str(root / "results.csv")]
        argv += ["--trials", str(root / "trials.csv"), "--mi", str(root / "mi_check.csv")]
        argv += ["--out", str(root / "out"), "--readme", str(root / "README.md"), "--no-mlflow"]
        code = run_cli(argv, mp)
    finally:
        mp.undo()
    assert code == 0
    return root


def test_every_output_exists_and_is_non_empty(rendered: Path) -> None:
    out = rendered / "out"
    expected = ["leaderboard.csv", "leaderboard.md", "trends.csv", "index.html", "metrics.json"]
    expected += [
        "plots/acc_vs_batch.csv",
        "plots/acc_vs_negatives.csv",
        "plots/acc_vs_temperature.csv",
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
    expected = ntxent["linear_acc"] - ntxent["random_linear_acc"]
    assert ntxent["headroom"] == pytest.approx(expected, abs=1e-5)
    assert ntxent["is_best"] and ntxent["tied_with_best"] and ntxent["diff_to_best"] == 0
    triplet = lb[lb.objective == "triplet"].iloc[0]  # 7 points below ntxent on every seed
    assert not triplet["tied_with_best"] and triplet["diff_ci_high"] < 0
    assert triplet["n_paired"] == 3
    rand = lb[lb.method == "random"].iloc[0]
    assert rand["linear_acc_ci95"] == 0 and rand["role"] == "untrained encoder"
    assert pd.isna(rand["tied_with_best"]) and pd.isna(rand["headroom"])
    assert lb[lb.method == "supervised"].iloc[0]["role"] == "supervised reference"
    npid = lb[lb.method == "npid"].iloc[0]
    assert npid["n_diverged"] == 1 and npid["n_ok"] == 2 and npid["n_paired"] == 2


def test_leaderboard_markdown(rendered: Path) -> None:
    md = (rendered / "out/leaderboard.md").read_text()
    assert "## digits / mlp" in md and "| rank | method |" in md and "±" in md
    assert "| supervised reference |" in md and "| untrained encoder |" in md
    assert "ceiling |" not in md and "floor" not in md
    assert "## Paired differences to the best entry" in md and "minus best (pts)" in md
    assert "| best |" in md and "| below |" in md
    assert "## Published trends" in md and "Student-t" in md
    assert "no temperature sweep in these results" in md


def test_trends_csv(rendered: Path) -> None:
    trends = pd.read_csv(rendered / "out/trends.csv")
    assert list(trends.columns) == [
        "trend",
        "source",
        "measured_effect",
        "ci_low",
        "ci_high",
        "verdict",
        "detail",
    ]
    assert set(trends["verdict"]) <= {"reproduced", "not reproduced", "inconclusive"}
    by = dict(zip(trends["trend"], trends["verdict"], strict=True))
    # ntxent is 7 points above triplet on every seed of the synthetic table
    assert by["NT-Xent beats the margin losses (simclr on digits/mlp)"] == "reproduced"
    assert by["Inverted U in temperature"] == "inconclusive"
    queue = trends[trends["trend"].str.startswith("Accuracy rises with the number")]
    assert len(queue) == 2  # moco and npid
    temp = trends[trends["trend"] == "Inverted U in temperature"].iloc[0]
    assert pd.isna(temp["measured_effect"])


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
    assert "<table" in page and "simclr" in page and "supervised reference" in page
    assert "Paired differences to the best entry" in page and "Published trends" in page
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
    assert "### digits / mlp" in text and "### Published trends" in text


def test_readme_without_markers_untouched(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert report.update_readme(readme, "table\n") is False
    assert readme.read_text() == "# no markers\n"


def test_placeholders_without_trials_and_mi_and_mlflow_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synthetic
) -> None:
    df = synthetic["results"](seeds=1)
    df = df[df.sweep == "method"]  # no sweeps either: placeholder figures
    df.to_csv(tmp_path / "results.csv", index=False)
    calls = []
    fake = types.ModuleType("benchmark.tracking")
    fake.log_report_artifacts = lambda suite, paths: calls.append((suite, list(paths)))
    import benchmark

    monkeypatch.setattr(benchmark, "tracking", fake, raising=False)
    monkeypatch.setitem(sys.modules, "benchmark.tracking", fake)
    argv = ["report", "--results", str(tmp_path / "results.csv")]
    argv += ["--trials", str(tmp_path / "nope.csv"), "--mi", str(tmp_path / "nope.csv")]
    assert run_cli([*argv, "--out", str(tmp_path / "out")], monkeypatch) == 0
    for name in FIGURE_NAMES:
        assert (tmp_path / "out/figures" / f"{name}.png").stat().st_size > 0
    assert "no trials" in (tmp_path / "out/figures/sensitivity.svg").read_text()
    assert len(calls) == 1 and calls[0][0] == "smoke"
    assert all(p.is_file() for p in calls[0][1]) and len(calls[0][1]) >= 17
    assert not (tmp_path / "README.md").exists()
    trends = pd.read_csv(tmp_path / "out/trends.csv")  # one seed: no interval anywhere
    assert set(trends["verdict"]) == {"inconclusive"}
    assert trends["detail"].str.contains("no queue sweep").any()


def test_code_digest_optional_for_the_report_only(tmp_path: Path, synthetic) -> None:
    path = tmp_path / "results.csv"
    synthetic["results"](1).to_csv(path, index=False)
    assert report.load_results(path, optional=("code_digest",))["code_digest"].isna().all()
    with pytest.raises(UserError, match="code_digest"):
        report.load_results(path)  # benchmark.check keeps requiring it
    synthetic["results"](1).assign(code_digest="abc").to_csv(path, index=False)
    assert (report.load_results(path)["code_digest"] == "abc").all()


@pytest.mark.parametrize(
    "setup, needle",
    [
        (lambda df, p: None, "results.csv"),
        (lambda df, p: df.drop(columns=["linear_acc"]).to_csv(p, index=False), "linear_acc"),
        (lambda df, p: df.assign(linear_acc=91.0).to_csv(p, index=False), "[0, 1]"),
        (lambda df, p: df.assign(tuned="maybe").to_csv(p, index=False), "tuned"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, monkeypatch, capsys, synthetic, setup, needle) -> None:
    path = tmp_path / "results.csv"
    setup(synthetic["results"](1), path)
    code = run_cli(
        ["report", "--results", str(path), "--out", str(tmp_path / "out"), "--no-mlflow"],
        monkeypatch,
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_trials_columns_exit_2(tmp_path: Path, monkeypatch, capsys, synthetic) -> None:
    synthetic["results"](1).to_csv(tmp_path / "results.csv", index=False)
    synthetic["trials"]().drop(columns=["state"]).to_csv(tmp_path / "trials.csv", index=False)
    argv = ["report", "--results", str(tmp_path / "results.csv")]
    argv += ["--trials", str(tmp_path / "trials.csv"), "--out", str(tmp_path / "out")]
    code = run_cli([*argv, "--no-mlflow"], monkeypatch)
    assert code == 2 and "state" in capsys.readouterr().err
