"""End to end, in a temporary clone: `dvc exp run -S suite=smoke`, a no-op second run,
per-objective stage invalidation, and resuming after kill -9 without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
    return path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # `dvc exp run` commits experiment refs: a CI machine may have no git identity
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env.setdefault(key, "benchmark-tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setdefault(key, "tests@localhost")
    return env


def _dvc(repo: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _py(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def smoke(repo):
    t0 = time.perf_counter()
    proc = _dvc(repo, "exp", "run", "-S", "suite=smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return time.perf_counter() - t0


def _cells(repo: Path) -> list[dict]:
    code = (
        "import json; from benchmark.config import load_suite, suite_cells; "
        "print(json.dumps([c.record() for c in suite_cells(load_suite('smoke', check_data=False))]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_committed_results_are_current_in_a_fresh_clone(tmp_path):
    """HEAD's dvc.lock matches HEAD's sources: a fresh clone's `dvc repro` re-creates only
    the git-ignored prepared data (identical, so nothing downstream re-runs). Hashes of
    __pycache__ would break this; .dvcignore leaves them out."""
    clone = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(
        [sys.executable, "-c", "import benchmark.encoders, benchmark.datasets"],
        cwd=clone,
        env=_env(),
        check=True,
    )  # writes __pycache__ in dep directories
    proc = _dvc(clone, "status", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for stage, changes in json.loads(proc.stdout).items():  # only the missing prepared data
        for change in changes:
            assert isinstance(change, dict), (stage, change)
            paths = {**change.get("changed deps", {}), **change.get("changed outs", {})}
            assert set(paths) == {"data/prepared"}, (stage, change)
    proc = _dvc(clone, "repro", "prepare")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _dvc(clone, "status")
    assert "up to date" in proc.stdout, proc.stdout[:2000]


def test_smoke_produces_a_row_per_cell_and_seed(repo, smoke):
    print(f"smoke dvc exp run: {smoke:.0f}s")
    results = pd.read_csv(repo / "reports" / "results.csv")
    cells = _cells(repo)
    assert len(results) == len(cells)
    assert set(results["suite"]) == {"smoke"}
    assert not results.duplicated(["config_hash", "sweep"]).any()
    assert results["linear_acc"].between(0, 1).all()
    assert not results["diverged"].any()
    for name in ("leaderboard.md", "index.html", "metrics.json", "check.json"):
        assert (repo / "reports" / name).stat().st_size > 0


def test_mlflow_runs_and_optuna_studies_exist(repo, smoke):
    import mlflow
    import optuna

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("suite-smoke")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'cell'", max_results=1000)
    hashes = [r.data.tags["config_hash"] for r in runs]
    results = pd.read_csv(repo / "reports" / "results.csv")
    assert set(hashes) == set(results["config_hash"])
    assert len(hashes) == len(set(hashes))  # one run per finished cell, never two
    trials = client.search_runs([exp.experiment_id], "tags.kind = 'trial'", max_results=1000)
    assert trials
    studies = optuna.get_all_study_summaries(storage=f"sqlite:///{repo / 'optuna.db'}")
    assert any(s.study_name.startswith("smoke/simclr-ntxent/") for s in studies)


def test_second_repro_is_a_noop(repo, smoke):
    t0 = time.perf_counter()
    proc = _dvc(repo, "repro")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Running stage" not in proc.stdout
    assert time.perf_counter() - t0 < 60


def test_editing_one_objective_touches_only_its_stages(repo, smoke):
    path = repo / "benchmark" / "objectives" / "triplet.py"
    original = path.read_text()
    try:
        path.write_text(original + "\n# edited\n")
        proc = _dvc(repo, "status", "--json")
        changed = set(json.loads(proc.stdout))
    finally:
        path.write_text(original)
    from benchmark.config import all_pairs

    triplet_pairs = [k for k, (_, o) in all_pairs(repo / "suites").items() if o == "triplet"]
    assert triplet_pairs
    assert changed == {f"{stage}@{p}" for p in triplet_pairs for stage in ("tune", "train")}


def test_killed_run_resumes_without_duplicates(repo, smoke):
    runs = repo / "reports" / "runs" / "simclr-ntxent.csv"
    full = pd.read_csv(runs)
    assert len(full) >= 4
    runs.unlink()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dvc"), "repro", "train@simclr-ntxent"],
        cwd=repo,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline:  # kill -9 as soon as the first cell has landed
        if runs.is_file() and len(runs.read_text().strip().splitlines()) >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(runs)
    assert 1 <= len(partial) < len(full)
    resumed = _dvc(repo, "repro", "train@simclr-ntxent")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(partial)} already done" in resumed.stdout
    final = pd.read_csv(runs)
    assert not final.duplicated(["config_hash", "sweep"]).any()
    key = ["config_hash", "sweep", "linear_acc"]
    assert (
        final.sort_values(key)[key]
        .reset_index(drop=True)
        .equals(full.sort_values(key)[key].reset_index(drop=True))
    )
