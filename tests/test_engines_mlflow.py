"""MLflow beyond one machine: a real `mlflow server` (SQLite backend store, local artifact
root, 127.0.0.1) gets the same run tree as the embedded SQLite default, and a server that
is down loses nothing: the journal waits and is delivered, once, when it is back."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import mlflow
import pytest
from servers import MlflowServer, bench, project

pytestmark = pytest.mark.slow
IGNORED_TAGS = {
    "mlflow.parentRunId",
    "journal_id",
    "mlflow.user",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.source.git.commit",
    "mlflow.runName",
}


def _tree(uri: str) -> dict:
    client = mlflow.MlflowClient(tracking_uri=uri)
    out = {}
    for exp in client.search_experiments():
        if exp.name == "Default":
            continue
        runs = client.search_runs([exp.experiment_id], max_results=1000)
        names = {r.info.run_id: r.info.run_name for r in runs}
        out[exp.name] = sorted(
            (
                r.info.run_name,
                names.get(r.data.tags.get("mlflow.parentRunId")),
                r.info.status,
                json.dumps(r.data.params, sort_keys=True),
                json.dumps(r.data.metrics, sort_keys=True),
                json.dumps(
                    {k: v for k, v in r.data.tags.items() if k not in IGNORED_TAGS}, sort_keys=True
                ),
                json.dumps(sorted(a.path for a in client.list_artifacts(r.info.run_id))),
            )
            for r in runs
        )
    return out


def _flush_and_report(path, uri: str):
    code = (
        "from pathlib import Path; from benchmark import tracking; "
        "print('created', tracking.flush()); "
        "tracking.log_report_artifacts('engines', [Path('reports/runs')])"
    )
    import subprocess
    import sys

    from servers import env

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=path,
        env=env(MLFLOW_TRACKING_URI=uri),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_server_gets_the_sqlite_run_tree_and_loses_nothing_while_down(tmp_path):
    server = MlflowServer(tmp_path / "server")
    server.start()
    try:
        a = project(tmp_path / "a", {"suite": "engines"})
        proc = bench(a, "train", "--pair", "simclr-ntxent", MLFLOW_TRACKING_URI=server.uri)
        assert proc.returncode == 0, proc.stderr[-3000:]
        b = project(tmp_path / "b", {"suite": "engines"}, prepare=False)  # the same journal,
        shutil.copytree(a / "reports", b / "reports")  # delivered to the embedded default
        shutil.copytree(a / ".mlflow-journal", b / ".mlflow-journal")
        for j in (b / ".mlflow-journal").glob("*.jsonl"):
            j.write_text(j.read_text().replace(server.uri, f"sqlite:///{b / 'mlflow.db'}"))
        proc = _flush_and_report(a, server.uri)
        assert proc.returncode == 0 and "created 3" in proc.stdout, proc.stdout + proc.stderr
        proc = _flush_and_report(b, f"sqlite:///{b / 'mlflow.db'}")
        assert proc.returncode == 0 and "created 3" in proc.stdout, proc.stdout + proc.stderr
        before = _tree(server.uri)
        assert before == _tree(f"sqlite:///{b / 'mlflow.db'}")
        assert len(before["suite-engines"]) == 4  # stage, two cells, report (with artifacts)

        server.stop()  # down: the next stage still finishes and keeps its journal
        (a / "reports" / "runs" / "simclr-ntxent.csv").unlink()  # retrain: a new stage run
        proc = bench(a, "train", "--pair", "simclr-ntxent", MLFLOW_TRACKING_URI=server.uri)
        assert proc.returncode == 0, proc.stderr[-3000:]
        proc = bench(a, "results", MLFLOW_TRACKING_URI=server.uri)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "not reached" in proc.stderr
        assert len(list((a / ".mlflow-journal").glob("*.jsonl"))) == 1
        server.start()  # back: delivered once
        proc = bench(a, "results", MLFLOW_TRACKING_URI=server.uri)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "results: 1 MLflow runs written" in proc.stdout, proc.stdout
        assert not list((a / ".mlflow-journal").glob("*.jsonl"))
        after = _tree(server.uri)["suite-engines"]
        # one more stage run; its cells were finished runs already (same hash and code)
        extra = Counter(after) - Counter(before["suite-engines"])
        assert not Counter(before["suite-engines"]) - Counter(after)  # nothing lost
        assert len(after) == 5 and [r[0] for r in extra.elements()] == ["train@simclr-ntxent"]
    finally:
        server.stop()
