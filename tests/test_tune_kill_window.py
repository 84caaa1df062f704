"""The window between journaling a finished trial (for MLflow) and telling it to Optuna.

A tune stage journals a batch's trials before it tells them: a kill after telling leaves
nothing to lose, a kill after journaling and before telling leaves the trials RUNNING, run
again in place on resume and journaled again, and ``tracking.flush`` keeps one run per
(study, trial number), the last journaled outcome. Told first, a kill in between left a
COMPLETE trial never journaled: its MLflow run was missing (the smoke kill drill).

The kills are made deterministic without a signal: ``_tell`` is wrapped in a driver
process that dies with ``os._exit`` (no ``finally``, no flush: what SIGKILL leaves) just
before or just after telling a given trial."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from benchmark import tracking

ROOT = Path(__file__).resolve().parents[1]
PAIR = "simclr-ntxent"
STAGE = f"tune@{PAIR}"
TIMING = ("train_seconds", "views_per_second")

SUITE = {
    "name": "mini",
    "epochs": 1,
    "tuning": {"trials": 4, "epochs": 1},
    "blocks": [
        {
            "method": "simclr",
            "objectives": ["ntxent"],
            "dataset": "mnist1d",
            "dataset_options": {"num_train": 200, "num_val": 100, "num_test": 100},
            "batch_sizes": [64],
        }
    ],
}

# runs the tune stage with ``_tell`` wrapped: the process dies just before or just after
# telling trial N ("before N" / "after N"), as a SIGKILL landing there would leave it
DRIVER = """\
import os, sys
import benchmark.tune as tune

when, number = sys.argv[1], int(sys.argv[2])
real = tune._tell

def tell(study, trial, *args):
    if when == "before" and trial.number == number:
        os._exit(137)
    real(study, trial, *args)
    if when == "after" and trial.number == number:
        os._exit(137)

tune._tell = tell
from benchmark.cli import main

sys.exit(main(["tune", "--pair", sys.argv[3]]))
"""


def _project(path: Path) -> Path:
    (path / "suites").mkdir(parents=True)
    (path / "suites" / "mini.yaml").write_text(yaml.safe_dump(SUITE))
    params = {"suite": "mini", "progress": False, "threads": 1, "workers": 2}
    params["mlflow_uri"] = "sqlite:///mlflow.db"
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    return path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _tune(path: Path, kill: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    if kill is None:
        cmd = [sys.executable, "-m", "benchmark", "tune", "--pair", PAIR]
    else:
        cmd = [sys.executable, "-c", DRIVER, kill[0], str(kill[1]), PAIR]
    done = subprocess.run(cmd, cwd=path, capture_output=True, text=True, env=_env(), timeout=600)
    if kill is None:
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert done.returncode == 137, (done.returncode, done.stderr[-3000:])
    return done


def _study(path: Path) -> list[tuple]:
    url = f"sqlite:///{path / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(url)
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    return [
        (tr.number, tr.state.name, json.dumps(tr.params, sort_keys=True), tr.value)
        for tr in study.trials
    ]


def _trial_runs(path: Path) -> list[tuple]:
    """Flush the project's journals; (name, params, untimed metrics) of its trial runs."""
    # in a process of its own: the journals' URI, sqlite:///mlflow.db, is relative, and
    # MLflow keeps one store per URI in a process
    flush = "from benchmark import tracking; tracking.flush()"
    done = subprocess.run(
        [sys.executable, "-c", flush], cwd=path, capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list((path / tracking.JOURNAL_DIR).glob("*.jsonl")), "all delivered"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("suite-mini").experiment_id
    runs = client.search_runs([exp], "tags.kind = 'trial'")
    return sorted(
        (
            r.info.run_name,
            json.dumps(r.data.params, sort_keys=True),
            json.dumps(
                {k: v for k, v in r.data.metrics.items() if k not in TIMING}, sort_keys=True
            ),
        )
        for r in runs
    )


@pytest.mark.slow
def test_a_kill_on_either_side_of_telling_a_trial_loses_and_doubles_no_run(tmp_path):
    reference = _project(tmp_path / "reference")
    _tune(reference)
    study, runs = _study(reference), _trial_runs(reference)
    assert [tr[0] for tr in study] == [0, 1, 2, 3]
    assert [r[0] for r in runs] == [f"trial_{n}" for n in range(4)]

    # trial 1 (the second of the first batch) told, the process dead before the next
    # step: told before journaled, trial 1's run was never written
    after = _project(tmp_path / "after")
    _tune(after, ("after", 1))
    _tune(after)
    assert _study(after) == study
    assert _trial_runs(after) == runs, "a trial told but never journaled"

    # trial 2 (the first of the second batch) journaled with trial 3, neither told: both
    # RUNNING, run again in place on resume and journaled again, one run each
    before = _project(tmp_path / "before")
    _tune(before, ("before", 2))
    killed = _study(before)
    assert [(tr[0], tr[1]) for tr in killed[2:]] == [(2, "RUNNING"), (3, "RUNNING")]
    journal = next((before / tracking.JOURNAL_DIR).glob("*.jsonl")).read_text()
    assert '"run_name": "trial_2"' in journal and '"run_name": "trial_3"' in journal
    _tune(before)
    assert _study(before) == study
    assert _trial_runs(before) == runs


def _journal(stage: str, study: str, trials: list[tuple[int, str, str, float | None]]) -> None:
    """A tune stage's journal, killed (no end record), with (number, state, digest, acc)."""
    with tracking.stage_run("unit", stage, params={"study": study}):
        for number, state, digest, acc in trials:
            row = {"config_hash": f"h{number}", "code_digest": digest}
            if acc is not None:
                row["val_acc"] = acc
            tracking.log_cell(
                "unit",
                stage,
                params={"trial": number, "pair": PAIR, "state": state},
                row=row,
                history=[],
                kind="trial",
                run_name=f"trial_{number}",
            )
            time.sleep(0.01)  # journaled at distinct milliseconds


def test_a_trial_journaled_twice_keeps_one_run_its_last_outcome(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    # a stage killed after journaling trial 1 and before telling it: on resume trial 1 is
    # run again and journaled again, here with another outcome (a failure the first time)
    _journal(STAGE, "mini/s/k1", [(0, "COMPLETE", "d", 0.5), (1, "FAIL", "", None)])
    tracking.flush()  # delivered before the resumed stage journals (a background flush)
    _journal(STAGE, "mini/s/k1", [(1, "COMPLETE", "d", 0.7), (2, "PRUNED", "", None)])
    (resumed,) = tracking.JOURNAL_DIR.glob("*.jsonl")
    text = resumed.read_text()
    # a trial 1 of another study is another trial
    _journal(STAGE, "mini/s/k2", [(1, "COMPLETE", "d2", 0.6)])
    tracking.flush()
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("suite-unit").experiment_id

    def trials() -> list[tuple]:
        parents = {
            r.info.run_id: r.data.params["study"]
            for r in client.search_runs([exp], "tags.kind = 'stage'")
        }
        return sorted(
            (
                parents[r.data.tags["mlflow.parentRunId"]],
                r.info.run_name,
                r.data.params["state"],
                r.data.metrics.get("val_acc"),
            )
            for r in client.search_runs([exp], "tags.kind = 'trial'")
        )

    expected = [
        ("mini/s/k1", "trial_0", "COMPLETE", 0.5),
        ("mini/s/k1", "trial_1", "COMPLETE", 0.7),  # the last journaled outcome
        ("mini/s/k1", "trial_2", "PRUNED", None),
        ("mini/s/k2", "trial_1", "COMPLETE", 0.6),
    ]
    assert trials() == expected
    resumed.write_text(text)  # a flush killed before deleting the journal: done again
    assert tracking.flush() == 0
    assert trials() == expected
