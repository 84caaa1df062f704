"""Delivery of finished journals to MLflow (``flush``) and of the report's artifacts
(``log_report_artifacts``): the only module that imports MLflow."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmark.tracking.journal import JOURNAL_DIR, _read, git_commit, pending
from benchmark.tracking.urls import (
    _few_http_retries,
    _unreachable,
    delivery_uri,
    redact,
    tracking_uri,
)


def _mlflow():
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


def _warn(msg: str) -> None:
    print(f"tracking: {msg}", file=sys.stderr, flush=True)


def flush(directory: Path = JOURNAL_DIR) -> int:
    """Write every finished journal to MLflow and delete it; returns the runs created.

    Idempotent: a stage run is found again by its journal id, a cell by its config hash,
    so a flush interrupted half-way and repeated creates no duplicates.
    """
    if not pending(directory):
        return 0
    created = 0
    down: dict[str, str] = {}  # stored URI -> why its journals stay for the next flush
    kept = 0
    with _flush_lock(directory), _few_http_retries():  # the warm server may be flushing too
        for path in pending(directory):
            records = _read(path)
            if not records or records[0].get("type") != "stage":
                path.unlink()
                continue
            stored = records[0]["uri"]
            if stored in down:
                kept += 1
                continue
            try:
                uri = delivery_uri(stored)
                reason = _unreachable(uri)
                if reason is None:
                    created += _flush_one(records, uri)
            except Exception as err:  # the server went away mid-way, a bad password...
                reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            if reason is not None:
                down[stored] = reason
                kept += 1
                continue
            path.unlink()
    for stored, reason in down.items():
        _warn(
            f"MLflow at {stored} not reached ({reason}); {kept} journal(s) kept in "
            f"{directory}/ for the next `results` or `report` stage (or `python -m "
            "benchmark results`), which delivers them without duplicates"
        )
    return created


@contextlib.contextmanager
def _flush_lock(directory: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no background flusher to take turns with
        yield
        return
    with (directory / ".flush.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _flush_one(records: list[dict], uri: str | None = None) -> int:
    from mlflow.entities import Metric, Param

    mlflow = _mlflow()
    head, body = records[0], records[1:]
    end = next((r for r in body if r["type"] == "end"), None)
    cells = [r for r in body if r["type"] != "end"]
    client = mlflow.MlflowClient(tracking_uri=uri or delivery_uri(head["uri"]))
    exp = _experiment(client, head["suite"])
    parents = client.search_runs([exp], f"tags.journal_id = '{head['id']}'", max_results=1)
    created = 0
    if parents:
        parent = parents[0].info.run_id
        # a flush killed between creating the parent and logging its params
        have = parents[0].data.params
        missing = [Param(k, v) for k, v in head["params"].items() if k not in have]
        _log_batch(client, parent, params=missing)
        # a flush cut short (the server went away) may have left a cell run it created
        # but never finished: deleted here and created again, so it is never doubled
        for run in client.search_runs(
            [exp], f"tags.`mlflow.parentRunId` = '{parent}' and attributes.status = 'RUNNING'"
        ):
            client.delete_run(run.info.run_id)
    else:
        parent = client.create_run(
            exp,
            start_time=head["start"],
            run_name=head["stage"],
            tags={
                "dvc_stage": head["stage"],
                "git_commit": head["git_commit"],
                "suite": head["suite"],
                "kind": "stage",
                "journal_id": head["id"],
            },
        ).info.run_id
        _log_batch(client, parent, params=[Param(k, v) for k, v in head["params"].items()])
        created += 1
    logged = _logged(client, exp, head["stage"])
    for rec in cells:
        tags = rec["tags"]
        key = (tags["config_hash"], tags.get("code_digest", ""), tags["kind"])
        if key in logged:
            # trained before with this very code (an edit was reverted): the earlier run
            # is current again instead of a duplicate of it
            run_id, superseded, slot = logged[key]
            if superseded:
                _supersede(client, logged, key, slot, run_id)
                client.set_tag(run_id, "superseded", "false")
                logged[key] = (run_id, False, slot)
            continue
        run = client.create_run(
            exp,
            start_time=rec["start"],
            run_name=rec["run_name"],
            tags={**tags, "mlflow.parentRunId": parent},
        ).info.run_id
        metrics = [
            Metric(k, v, rec["end"], int(h["epoch"]))
            for h in rec["history"]
            for k, v in h.items()
            if k != "epoch"
        ]
        metrics += [Metric(k, v, rec["end"], 0) for k, v in rec["metrics"].items()]
        params = [Param(k, v) for k, v in rec["params"].items()]
        _log_batch(client, run, metrics=metrics, params=params)
        client.set_terminated(run, "FINISHED", end_time=rec["end"])
        slot = tags.get("slot", key[0])
        _supersede(client, logged, key, slot, run)
        logged[key] = (run, False, slot)
        created += 1
    client.set_terminated(
        parent,
        end["status"] if end else "KILLED",
        end_time=end["end"] if end else (cells[-1]["end"] if cells else head["start"]),
    )
    return created


def _log_batch(client, run_id: str, *, metrics=(), params=()) -> None:
    """As few requests as MLflow's limits allow (100 params, 1000 entities per request):
    one for a typical cell. Each request is a database transaction."""
    metrics, params = list(metrics), list(params)
    while metrics or params:
        client.log_batch(run_id, metrics=metrics[:900], params=params[:100])
        metrics, params = metrics[900:], params[100:]


def _experiment(client, suite: str) -> str:
    name = f"suite-{suite}"
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name)


def _logged(client, exp: str, stage: str) -> dict[tuple[str, str, str], tuple[str, bool, str]]:
    """(config_hash, code_digest, kind) -> (run id, superseded, slot) of every finished cell
    or trial run a stage has logged: one search per journal instead of one per cell."""
    found: dict[tuple[str, str, str], tuple[str, bool, str]] = {}
    token = None
    while True:
        page = client.search_runs(
            [exp],
            f"tags.dvc_stage = '{stage}' and attributes.status = 'FINISHED'",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            tags = run.data.tags
            if "config_hash" in tags:
                key = (tags["config_hash"], tags.get("code_digest", ""), tags.get("kind", ""))
                superseded = tags.get("superseded") == "true"
                found[key] = (run.info.run_id, superseded, tags.get("slot", key[0]))
        token = page.token
        if not token:
            return found


def _supersede(client, logged: dict, key: tuple[str, str, str], slot: str, by: str) -> None:
    """Tag the other runs of the same slot and kind ``superseded``: they are kept, never
    deleted, and point to the run that replaced them (``superseded_by``)."""
    for other, (run_id, superseded, other_slot) in list(logged.items()):
        if other_slot == slot and other[2] == key[2] and other != key and not superseded:
            client.set_tag(run_id, "superseded", "true")
            client.set_tag(run_id, "superseded_by", by)
            logged[other] = (run_id, True, other_slot)


def log_report_artifacts(suite: str, paths: list[Path]) -> None:
    """Write pending journals, then attach the report's tables and figures to a report run.

    With the tracking server unreachable the report is still written (under reports/),
    and its artifacts are logged by the next report stage."""
    flush()
    reason = _unreachable(tracking_uri())
    if reason is not None:
        _warn(
            f"MLflow at {redact(tracking_uri())} not reached ({reason}): report artifacts "
            "not logged this time"
        )
        return
    mlflow = _mlflow()
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    exp = _experiment(client, suite)
    # a report stage killed while it logged left its run RUNNING: closed as KILLED (as a
    # killed stage's journal is), so the suite keeps one current report run
    for run in client.search_runs(
        [exp], "tags.dvc_stage = 'report' and attributes.status = 'RUNNING'"
    ):
        client.set_terminated(run.info.run_id, "KILLED")
    with mlflow.start_run(experiment_id=exp, run_name="report"):
        mlflow.set_tags(
            {"dvc_stage": "report", "git_commit": git_commit(), "suite": suite, "kind": "stage"}
        )
        for p in paths:
            p = Path(p)
            if p.is_dir():
                mlflow.log_artifacts(str(p), artifact_path=p.name)
            elif p.is_file():
                mlflow.log_artifact(str(p))
