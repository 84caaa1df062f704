"""Every MLflow call lives here and only here.

Default tracking URI ``sqlite:///mlflow.db`` (no server); ``MLFLOW_TRACKING_URI`` switches
to a server. One experiment per suite; a parent run per stage invocation; a nested run
per grid cell and per Optuna trial. A finished cell (same ``config_hash`` and
``code_digest``) is never logged twice; a cell retrained because its code changed gets a
new run, and its earlier run is kept and tagged ``superseded`` (with ``superseded_by``).

Stages do not talk to MLflow while they train. ``stage_run`` and ``log_cell`` append
records (params, per-epoch history, final metrics, start and end times) to a journal file
in ``.mlflow-journal/``, one file per stage invocation, written line by line so a killed
stage keeps every finished cell. ``flush`` (called by the ``results`` and ``report``
stages) writes the journals to MLflow with their original times and deletes them. The
reason is cost: importing MLflow and opening its store takes ~5 s, which 60 tune/train
stages would otherwise pay one after another.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

DEFAULT_URI = "sqlite:///mlflow.db"
JOURNAL_DIR = Path(".mlflow-journal")
_FINAL_METRICS = ("linear_acc", "knn_acc", "val_acc", "train_seconds", "views_per_second")

_active: dict | None = None  # the journal of the stage invocation in progress


def _mlflow():
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


def tracking_uri(uri: str | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or uri or DEFAULT_URI


@functools.cache  # one subprocess per process, not one per logged cell
def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")
        f.flush()


@contextlib.contextmanager
def stage_run(
    suite: str, stage: str, *, uri: str | None = None, params: dict | None = None
) -> Iterator[str]:
    """A parent run for one stage invocation (e.g. ``train@simclr-ntxent``), journaled."""
    global _active
    JOURNAL_DIR.mkdir(exist_ok=True)
    run_id = uuid.uuid4().hex
    safe = stage.replace("@", "_").replace("/", "_")
    path = JOURNAL_DIR / f"{time.time_ns()}-{safe}-{os.getpid()}.jsonl"
    _append(
        path,
        {
            "type": "stage",
            "id": run_id,
            "uri": tracking_uri(uri),
            "suite": suite,
            "stage": stage,
            "params": {k: _param(v) for k, v in (params or {}).items()},
            "git_commit": git_commit(),
            "start": _now_ms(),
        },
    )
    _active = {"path": path, "suite": suite}
    status = "KILLED"
    try:
        yield run_id
        status = "FINISHED"
    except Exception:
        status = "FAILED"
        raise
    finally:
        _active = None
        _append(path, {"type": "end", "status": status, "end": _now_ms()})


def log_cell(
    suite: str,
    stage: str,
    *,
    params: dict,
    row: dict,
    history: Sequence[dict],
    kind: str = "cell",
    run_name: str | None = None,
    start_ms: int | None = None,
) -> None:
    """A nested run under the active stage run: params, per-epoch history, final metrics.

    ``flush`` skips it when a finished run with the same config hash (and kind) exists.
    """
    if _active is None:
        raise RuntimeError("tracking.log_cell outside tracking.stage_run")
    end = _now_ms()
    seconds = float(row.get("train_seconds") or 0.0)
    _append(
        _active["path"],
        {
            "type": kind,
            "run_name": run_name or row["config_hash"],
            "start": start_ms if start_ms is not None else end - int(seconds * 1000),
            "end": end,
            "tags": {
                "kind": kind,
                "config_hash": row["config_hash"],
                "code_digest": str(row.get("code_digest") or ""),
                "dvc_stage": stage,
                "git_commit": git_commit(),
                "suite": suite,
                "negatives": str(row.get("negatives")),
                "diverged": str(row.get("diverged")),
            },
            "params": {k: _param(v) for k, v in params.items()},
            "history": [{k: float(v) for k, v in h.items() if v is not None} for h in history],
            "metrics": {k: float(row[k]) for k in _FINAL_METRICS if row.get(k) is not None},
        },
    )


def pending(directory: Path = JOURNAL_DIR) -> list[Path]:
    """Journals of stage invocations that are over (finished, failed or killed)."""
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        if _active is not None and path == _active["path"]:
            continue
        pid = int(path.stem.rsplit("-", 1)[-1])
        if pid != os.getpid() and _alive(pid) and not _ended(path):
            continue  # a stage still running in another process
        out.append(path)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ended(path: Path) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    return bool(lines) and '"type": "end"' in lines[-1]


def _read(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the line a kill cut short: everything before it is complete
    return records


def flush(directory: Path = JOURNAL_DIR) -> int:
    """Write every finished journal to MLflow and delete it; returns the runs created.

    Idempotent: a stage run is found again by its journal id, a cell by its config hash,
    so a flush interrupted half-way and repeated creates no duplicates.
    """
    if not pending(directory):
        return 0
    created = 0
    with _flush_lock(directory):  # the warm server may be flushing in the background
        for path in pending(directory):
            records = _read(path)
            if records and records[0].get("type") == "stage":
                created += _flush_one(records)
            path.unlink()
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


def _flush_one(records: list[dict]) -> int:
    from mlflow.entities import Metric, Param

    mlflow = _mlflow()
    head, body = records[0], records[1:]
    end = next((r for r in body if r["type"] == "end"), None)
    cells = [r for r in body if r["type"] != "end"]
    client = mlflow.MlflowClient(tracking_uri=head["uri"])
    exp = _experiment(client, head["suite"])
    parents = client.search_runs([exp], f"tags.journal_id = '{head['id']}'", max_results=1)
    created = 0
    if parents:
        parent = parents[0].info.run_id
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
            run_id, superseded = logged[key]
            if superseded:
                _supersede(client, logged, key, run_id)
                client.set_tag(run_id, "superseded", "false")
                logged[key] = (run_id, False)
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
        _supersede(client, logged, key, run)
        logged[key] = (run, False)
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


def _logged(client, exp: str, stage: str) -> dict[tuple[str, str, str], tuple[str, bool]]:
    """(config_hash, code_digest, kind) -> (run id, superseded) of every finished cell or
    trial run a stage has logged: one search per journal instead of one per cell."""
    found: dict[tuple[str, str, str], tuple[str, bool]] = {}
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
                found[key] = (run.info.run_id, tags.get("superseded") == "true")
        token = page.token
        if not token:
            return found


def _supersede(client, logged: dict, key: tuple[str, str, str], by: str) -> None:
    """Tag the runs of the same cell (config hash and kind) made by other code
    ``superseded``: they are kept, never deleted, and point to the run that replaced them."""
    for other, (run_id, superseded) in list(logged.items()):
        if other[0] == key[0] and other[2] == key[2] and other != key and not superseded:
            client.set_tag(run_id, "superseded", "true")
            client.set_tag(run_id, "superseded_by", by)
            logged[other] = (run_id, True)


def log_report_artifacts(suite: str, paths: list[Path]) -> None:
    """Write pending journals, then attach the report's tables and figures to a report run."""
    flush()
    mlflow = _mlflow()
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    exp = _experiment(client, suite)
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


def _param(v) -> str:
    s = str(v)
    return s if len(s) < 500 else s[:497] + "..."
