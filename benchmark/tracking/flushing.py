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
    a trial by its study and number, so a flush interrupted half-way and repeated creates
    no duplicates. A trial journaled twice (its stage killed between journaling it and
    telling it to Optuna, then resumed) has one run: the later journaled outcome's.
    """
    if not pending(directory):
        return 0
    created = 0
    down: dict[str, str] = {}  # stored URI -> why its journals stay for the next flush
    kept = 0
    with _flush_lock(directory), _few_http_retries():  # another stage may be flushing too
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
    study = head["params"].get("study")
    trials = (
        _trials(client, exp, head["stage"], study)
        if study is not None and any(_trial_number(r) is not None for r in cells)
        else {}
    )
    for rec in cells:
        tags = rec["tags"]
        key = (tags["config_hash"], tags.get("code_digest", ""), tags["kind"])
        number = _trial_number(rec) if study is not None else None
        if number is not None and number in trials:
            # the trial was journaled before: by a stage killed after journaling it and
            # before telling it to Optuna, which ran it again. The last journaled outcome
            # is the one told: it wins, one run per trial of the study
            if any(end >= rec["end"] for _, end in trials[number]):
                continue  # this very record (a flush repeated), or an older one
            for run_id, _ in trials.pop(number):
                client.delete_run(run_id)
                for k, (other, _, _) in list(logged.items()):
                    if other == run_id:
                        del logged[k]
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
        if number is not None:
            trials[number] = [(run, rec["end"])]
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
    where = f"tags.dvc_stage = '{stage}' and attributes.status = 'FINISHED'"
    for run in _search(client, exp, where):
        tags = run.data.tags
        if "config_hash" in tags:
            key = (tags["config_hash"], tags.get("code_digest", ""), tags.get("kind", ""))
            superseded = tags.get("superseded") == "true"
            found[key] = (run.info.run_id, superseded, tags.get("slot", key[0]))
    return found


def _trial_number(rec: dict) -> str | None:
    """A trial record's number in its study (``params.trial``), else None."""
    return rec["params"].get("trial") if rec["type"] == "trial" else None


def _trials(client, exp: str, stage: str, study: str) -> dict[str, list[tuple[str, int]]]:
    """Trial number -> [(run id, end time)] of the finished trial runs a stage has logged
    for ``study`` (under parents of any status: a killed stage's trials are kept)."""
    parents = {
        run.info.run_id
        for run in _search(client, exp, f"tags.dvc_stage = '{stage}' and tags.kind = 'stage'")
        if run.data.params.get("study") == study
    }
    found: dict[str, list[tuple[str, int]]] = {}
    where = f"tags.dvc_stage = '{stage}' and tags.kind = 'trial' and attributes.status = 'FINISHED'"
    for run in _search(client, exp, where):
        number = run.data.params.get("trial")
        if number is not None and run.data.tags.get("mlflow.parentRunId") in parents:
            found.setdefault(number, []).append((run.info.run_id, run.info.end_time or 0))
    return found


def _search(client, exp: str, where: str) -> Iterator:
    token = None
    while True:
        page = client.search_runs([exp], where, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


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
