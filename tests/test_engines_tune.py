"""Optuna beyond one machine, on a real PostgreSQL server started here: shared-study
workers keep the budget exactly through a kill -9, one worker gives the same study on
PostgreSQL as on SQLite, and no password reaches a file."""

from __future__ import annotations

import json
import os
import signal
import time

import optuna
import pytest
from servers import PG_PASSWORD, bench, bench_popen, create_database, postgres, project

from benchmark import tracking

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg():
    with postgres() as server:  # raises (never skips) when PostgreSQL cannot start
        print(f"postgres up in {server['seconds']:.1f} s")
        yield server


def _study(url: str, pair: str) -> optuna.Study:
    (summary,) = [
        s for s in optuna.get_all_study_summaries(url) if s.study_name.split("/")[1] == pair
    ]
    return optuna.load_study(study_name=summary.study_name, storage=url)


def _no_password_in(path) -> None:
    for f in [path / "reports", path / ".mlflow-journal", path / "optuna.db"]:
        if not f.exists():
            continue
        files = [f] if f.is_file() else [p for p in f.rglob("*") if p.is_file()]
        for p in files:
            assert PG_PASSWORD not in p.read_text(errors="replace"), p


def test_four_workers_one_killed_meet_the_budget_exactly(pg, tmp_path):
    url = create_database(pg["url"], "kill4")
    bare = url.replace(f":{PG_PASSWORD}@", "@")  # params.yaml without the password: libpq
    params = {  # takes it from PGPASSWORD (or ~/.pgpass)
        "suite": "engines",
        "tune": {"trials": 8, "storage": bare, "heartbeat_seconds": 1, "grace_seconds": 4},
    }
    path = project(tmp_path / "p", params)
    t0 = time.perf_counter()
    procs = [
        bench_popen(
            path, "tune", "--pair", "simclr-ntxent", "--workers", "1", PGPASSWORD=PG_PASSWORD
        )
        for _ in range(4)
    ]
    victim, killed = procs[0], None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline:  # kill -9 the victim inside a trial
        try:
            study = _study(url, "simclr-ntxent")
        except ValueError:  # not created yet
            time.sleep(0.2)
            continue
        for tr in study.get_trials(deepcopy=False):
            mine = tr.user_attrs.get("worker", "").endswith(f":{victim.pid}")
            if tr.state == optuna.trial.TrialState.RUNNING and mine:
                os.killpg(victim.pid, signal.SIGKILL)
                killed = tr.number
                break
        time.sleep(0.1)
    assert killed is not None, "the victim never ran a trial"
    victim.wait()
    outs = [p.communicate(timeout=600)[0] for p in procs[1:]]
    seconds = time.perf_counter() - t0
    for p, out in zip(procs[1:], outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    trials = _study(url, "simclr-ntxent").trials
    numbers = [tr.number for tr in trials]
    assert len(numbers) == len(set(numbers))
    counted = [
        tr
        for tr in trials
        if tr.state.name in ("COMPLETE", "PRUNED")
        or (tr.state.name == "FAIL" and "error" in tr.user_attrs)
    ]
    assert len(counted) == 8, [(tr.number, tr.state.name) for tr in trials]
    assert not [tr for tr in trials if tr.state.name in ("RUNNING", "WAITING")]
    dead = trials[killed]
    assert dead.state.name == "FAIL" and "error" not in dead.user_attrs
    retries = [tr for tr in trials if tr.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].state.name in ("COMPLETE", "PRUNED")
    assert len(trials) == 9  # the budget, plus the killed trial that was retried
    best = json.loads((path / "reports" / "tuned" / "simclr-ntxent.json").read_text())
    assert best["n_trials"] == 8
    assert best["storage"] == bare
    _no_password_in(path)
    print(f"4 workers, one killed: 8 trials in {seconds:.0f} s")


def test_one_worker_study_is_the_same_on_postgresql_and_sqlite(pg, tmp_path):
    """The smoke suite's tuning of one pair, one shared-study worker, on both storages."""
    url = create_database(pg["url"], "same")
    studies = {}
    for name, storage in (("sqlite", "sqlite:///optuna.db"), ("pg", url)):
        path = project(tmp_path / name, {"suite": "smoke", "tune": {"storage": storage}})
        proc = bench(path, "tune", "--pair", "simclr-ntxent", "--workers", "1")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        storage = f"sqlite:///{path / 'optuna.db'}" if name == "sqlite" else url
        if name == "pg":  # a password in params.yaml: still never in reports/ or journals
            best = json.loads((path / "reports" / "tuned" / "simclr-ntxent.json").read_text())
            assert best["storage"] == url.replace(PG_PASSWORD, "***")
        studies[name] = [
            (tr.number, tr.params, tr.value, tr.state.name, tr.intermediate_values)
            for tr in _study(storage, "simclr-ntxent").trials
        ]
        _no_password_in(path)
    assert studies["pg"] == studies["sqlite"]
    assert len(studies["pg"]) == 2  # the smoke suite's budget


def test_urls_are_redacted_and_the_password_comes_back_from_the_environment(tmp_path, monkeypatch):
    assert tracking.redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert tracking.redact("https://u:pw@mlflow.example/x") == "https://u:***@mlflow.example/x"
    assert (
        tracking.redact("postgresql://h/db?password=pw&x=1") == "postgresql://h/db?password=***&x=1"
    )
    for same in ("sqlite:///optuna.db", "http://127.0.0.1:5000", "postgresql://u@h/db", None):
        assert tracking.redact(same) == same
    monkeypatch.chdir(tmp_path)
    secret = f"sqlite:///{tmp_path}/m.db?password={PG_PASSWORD}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", secret)
    with tracking.stage_run("unit", "train@x", params={"storage": "postgresql://u:pw@h/d"}):
        tracking.log_cell(
            "unit",
            "train@x",
            params={"url": "mysql://a:pw@b/c"},
            row={"config_hash": "h"},
            history=[],
        )
    (journal,) = tracking.JOURNAL_DIR.glob("*.jsonl")
    text = journal.read_text()
    assert PG_PASSWORD not in text and ":pw@" not in text
    assert tracking.delivery_uri(json.loads(text.splitlines()[0])["uri"]) == secret
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(tracking.MissingCredentials):
        tracking.delivery_uri(json.loads(text.splitlines()[0])["uri"])
    assert tracking.flush() == 0  # no password: kept, with a warning, for a later flush
    assert journal.is_file()
