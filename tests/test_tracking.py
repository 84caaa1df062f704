"""MLflow: a nested run per cell under the stage's parent run, never duplicated."""

from __future__ import annotations

import mlflow

from benchmark import tracking


def test_cell_runs_are_nested_in_the_suite_experiment_and_not_duplicated(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / tracking.JOURNAL_DIR
    row = {
        "config_hash": "abc123",
        "linear_acc": 0.9,
        "knn_acc": 0.8,
        "val_acc": 0.85,
        "negatives": 510,
        "diverged": False,
    }
    history = [
        {"epoch": 0, "loss": 2.0, "val_knn_acc": 0.5},
        {"epoch": 1, "loss": 1.0, "val_knn_acc": 0.7},
    ]
    for _ in range(2):  # a re-run of a finished cell must not log it again
        with tracking.stage_run("unit", "train@simclr-ntxent"):
            tracking.log_cell(
                "unit", "train@simclr-ntxent", params={"batch_size": 256}, row=row, history=history
            )
        tracking.flush(journal)
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("suite-unit")
    cells = client.search_runs([exp.experiment_id], "tags.kind = 'cell'")
    assert len(cells) == 1
    run = cells[0]
    assert run.data.tags["config_hash"] == "abc123"
    assert run.data.tags["dvc_stage"] == "train@simclr-ntxent"
    assert run.data.params["batch_size"] == "256"
    assert run.data.metrics["linear_acc"] == 0.9
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.value for m in sorted(losses, key=lambda m: m.step)] == [2.0, 1.0]
    stages = client.search_runs([exp.experiment_id], "tags.kind = 'stage'")
    assert len(stages) == 2
    assert run.data.tags["mlflow.parentRunId"] in {s.info.run_id for s in stages}
    assert {s.info.status for s in stages} == {"FINISHED"}
    assert not list(journal.glob("*.jsonl"))  # flushed journals are deleted


def test_a_killed_stage_keeps_its_finished_cells_and_flush_is_idempotent(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    row = {"config_hash": "h1", "linear_acc": 0.5, "train_seconds": 1.0}
    with tracking.stage_run("unit", "tune@simclr-triplet"):
        tracking.log_cell(
            "unit",
            "tune@simclr-triplet",
            params={},
            row=row,
            history=[],
            kind="trial",
            run_name="trial_0",
        )
        path = next(tracking.JOURNAL_DIR.glob("*.jsonl"))
        killed = path.read_text()  # what a kill -9 at this moment leaves behind
    path.write_text(killed + '{"type": "tri')  # and a line cut short
    assert tracking.flush() == 2
    path.write_text(killed)  # flushing the same journal again adds nothing
    assert tracking.flush() == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("suite-unit")
    (stage,) = client.search_runs([exp.experiment_id], "tags.kind = 'stage'")
    (trial,) = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    assert stage.info.status == "KILLED"
    assert trial.data.tags["mlflow.parentRunId"] == stage.info.run_id
    assert trial.data.metrics["linear_acc"] == 0.5


def test_a_cell_retrained_for_changed_code_supersedes_its_old_run(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    stage = "train@simclr-ntxent"

    def train(digest: str, acc: float) -> None:
        row = {"config_hash": "c1", "code_digest": digest, "linear_acc": acc}
        with tracking.stage_run("unit", stage):
            tracking.log_cell("unit", stage, params={}, row=row, history=[])
        tracking.flush()

    client = mlflow.MlflowClient(tracking_uri=uri)

    def cells() -> dict[str, tuple[str, str]]:
        exp = client.get_experiment_by_name("suite-unit").experiment_id
        runs = client.search_runs([exp], "tags.kind = 'cell'")
        return {
            r.data.tags["code_digest"]: (r.data.tags.get("superseded", ""), r.info.run_id)
            for r in runs
        }

    train("old", 0.9)
    train("bug", 0.5)  # the objective was edited: a new run, the old one kept and tagged
    runs = cells()
    assert set(runs) == {"old", "bug"}
    assert runs["old"][0] == "true" and runs["bug"][0] == ""
    old_run = client.get_run(runs["old"][1])
    assert old_run.data.tags["superseded_by"] == runs["bug"][1]
    train("bug", 0.5)  # the same code again: nothing new
    assert len(cells()) == 2
    train("old", 0.9)  # the edit reverted: the first run is current again, not duplicated
    runs = cells()
    assert len(runs) == 2
    assert runs["old"][0] == "false" and runs["bug"][0] == "true"
