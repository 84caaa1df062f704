"""The regression gate end to end, in a temporary clone on the smoke suite (3 seeds): a
planted math bug in one objective (then in one method) retrains exactly its cells, leaves
every other row byte-identical, adds exactly one MLflow run per retrained cell, and makes
`check` fail naming those cells; reverting retrains them again and `check` passes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from test_pipeline import ROOT, _dvc, _py  # tests/ is on sys.path (rootdir conftest)

from benchmark.layout import RESULT_COLUMNS

pytestmark = pytest.mark.slow

NTXENT_BUG = ("-pairs.at_positives(log_p)", "pairs.at_positives(log_p)")  # a sign error
# a sign error in a method (appended to its file): MoCo ascends its loss (about 12 points
# lower on smoke's mnist1d cell, measured)
MOCO_BUG = """
from benchmark.methods.base import METHODS as _METHODS  # noqa: E402

_moco = _METHODS.get("moco")
_moco.training_loss = lambda self, batch, _f=_moco.training_loss: -1.0 * _f(self, batch)
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    repo = tmp_path_factory.mktemp("gate") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    params = repo / "params.yaml"
    text = params.read_text().replace("suite: core ", "suite: smoke ", 1)
    params.write_text(text.replace("seeds: null ", "seeds: [0, 1, 2] ", 1))
    proc = _dvc(repo, "repro", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = _py(repo, "check", "--update-baseline")
    assert proc.returncode == 0, proc.stderr
    proc = _dvc(repo, "repro")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return repo


KEY = ["method", "objective", "dataset", "encoder", "sweep", "batch_size", "negatives", "tuned"]


def _rows(repo: Path) -> dict[tuple, tuple[str, str]]:
    """A row's grid position (its suite settings and seed: not its tuned hyperparameters,
    which a re-tune may change) -> (its config hash, its CSV line)."""
    lines = (repo / "reports" / "results.csv").read_text().splitlines()
    df = pd.read_csv(repo / "reports" / "results.csv")
    keys = zip(*(df[k] for k in [*KEY, "seed"]), strict=True)
    return dict(zip(keys, zip(df["config_hash"], lines[1:], strict=True), strict=True))


def _untimed(rows: dict[tuple, tuple[str, str]]) -> dict[tuple, tuple[str, ...]]:
    """The rows without train_seconds and views_per_second (the only columns a re-run of
    the same code on this CPU may change)."""
    timed = [RESULT_COLUMNS.index(c) for c in ("train_seconds", "views_per_second")]
    return {
        k: (h, *(v for i, v in enumerate(line.split(",")) if i not in timed))
        for k, (h, line) in rows.items()
    }


def _cell_runs(repo: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("suite-smoke")
    return client.search_runs([exp.experiment_id], "tags.kind = 'cell'", max_results=5000)


def _failing(repo: Path) -> list[dict]:
    return json.loads((repo / "reports" / "check.json").read_text())["failing"]


def _planted(repo: Path, path: Path, before: dict, runs_before: list, hit) -> int:
    """With the bug in place: exactly the hit rows retrained, one run each, the check fails
    naming them and the planted file. Returns the number of new runs."""
    proc = _dvc(repo, "repro", timeout=1800)
    assert proc.returncode != 0, "check passed with a planted bug:\n" + proc.stdout[-3000:]
    after = _rows(repo)
    hit_keys = {k for k in before if hit(k)}
    assert hit_keys, "the planted file runs no cell of the smoke suite"
    assert set(after) == set(before)
    for key in before:  # every other row byte-identical; every hit row retrained
        assert (after[key] == before[key]) != (key in hit_keys), key
    # one new MLflow run per trained configuration (sweeps that share one share its run);
    # the runs of the replaced cells are kept, tagged superseded
    trained = {after[k][0] for k in hit_keys}
    runs = _cell_runs(repo)
    assert len(runs) == len(runs_before) + len(trained)
    replaced = {before[k][0] for k in hit_keys}
    current_before = {r.info.run_id for r in runs_before if r.data.tags.get("superseded") != "true"}
    for r in (r for r in runs if r.info.run_id in current_before):
        assert (r.data.tags.get("superseded") == "true") == (r.data.tags["config_hash"] in replaced)
    failing = _failing(repo)
    assert failing and all(hit((f["method"], f["objective"])) for f in failing)
    assert str(path.relative_to(repo)) in proc.stdout  # the table names the changed file
    return len(trained)


def _plant_and_revert(repo: Path, path: Path, planted: str, hit) -> None:
    before, runs_before = _rows(repo), _cell_runs(repo)
    original = path.read_text()
    path.write_text(planted)
    try:
        new_runs = _planted(repo, path, before, runs_before, hit)
    finally:
        path.write_text(original)
    proc = _dvc(repo, "repro", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # retrained again: the same numbers (deterministic CPU), only the timings differ
    assert _untimed(_rows(repo)) == _untimed(before)
    runs = _cell_runs(repo)
    assert len(runs) == len(runs_before) + new_runs  # the first runs current again
    current = {r.info.run_id for r in runs if r.data.tags.get("superseded") != "true"}
    assert current == {
        r.info.run_id for r in runs_before if r.data.tags.get("superseded") != "true"
    }
    assert not _failing(repo)


def test_a_planted_objective_bug_retrains_its_cells_and_fails_the_check(gate):
    path = gate / "benchmark" / "objectives" / "ntxent.py"
    text = path.read_text()
    assert NTXENT_BUG[0] in text
    _plant_and_revert(gate, path, text.replace(*NTXENT_BUG), lambda k: k[1] == "ntxent")


def test_a_planted_method_bug_retrains_its_cells_and_fails_the_check(gate):
    path = gate / "benchmark" / "methods" / "moco.py"
    _plant_and_revert(gate, path, path.read_text() + MOCO_BUG, lambda k: k[0] == "moco")


def test_the_gate_passes_an_unchanged_re_run(gate):
    proc = _dvc(gate, "repro", timeout=1800)  # whatever an earlier test left planted is back
    assert proc.returncode == 0, proc.stdout[-2000:]
    proc = _py(gate, "check")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "no source change" not in proc.stdout  # nothing flagged at all
