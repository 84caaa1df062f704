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

Credentials never reach a file: a journal stores its tracking URI redacted
(``redact``: ``https://user:***@host``, ``postgresql://user:***@host/db``), and ``flush``
takes the password back from the environment at delivery time: ``MLFLOW_TRACKING_URI``
when its redacted form is the journal's URI (for an HTTP server, MLflow's own
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` keep the password out of the
URI altogether). A journal whose server is unreachable (or whose password is not in the
environment) is kept, with a warning, and delivered by the next ``flush``: a flush never
fails the stage that calls it, and never loses or duplicates a run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

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


_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "token", "secret", "access_token"})


def redact(url: object) -> object:
    """``url`` without its password (``scheme://user:***@host/...``; a ``password=``,
    ``token=``... query value too). Anything that is not such a URL comes back unchanged;
    so does a URL without credentials, character for character."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    out, netloc, query = url, parts.netloc, parts.query
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:  # edited in place: urlunsplit would drop sqlite:////'s slashes
            out = out.replace(netloc, f"{userinfo.split(':', 1)[0]}:***@{host}", 1)
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            hidden = "&".join(
                f"{k}=***" if k.lower() in _SECRET_QUERY_KEYS else f"{k}={v}" for k, v in pairs
            )
            out = out.replace(f"?{query}", f"?{hidden}", 1)
    return out


class MissingCredentials(RuntimeError):
    pass


def delivery_uri(stored: str) -> str:
    """The URI to deliver a journal to: its stored (redacted) URI, with the password taken
    from ``MLFLOW_TRACKING_URI`` when that is the same URI with its credentials."""
    if redact(stored) == stored and "***" not in stored:
        return stored
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and redact(env) == stored:
        return env
    raise MissingCredentials(
        f"the journal's MLflow URI {stored} needs its password: set MLFLOW_TRACKING_URI to "
        "that URI with the password"
    )


def _unreachable(uri: str, timeout: float = 3.0) -> str | None:
    """Why an HTTP tracking server does not answer (None when it does, or for a database)."""
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    base = urlsplit(uri)
    host = base.hostname or ""
    port = f":{base.port}" if base.port else ""
    url = urlunsplit((base.scheme, host + port, base.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            return None if resp.status < 500 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as err:
        return None if err.code < 500 else f"HTTP {err.code}"  # up, /health not served
    except OSError as err:
        return f"{type(err).__name__}: {getattr(err, 'reason', err)}"


@contextlib.contextmanager
def _few_http_retries() -> Iterator[None]:
    """MLflow retries a failing request 7 times with exponential backoff (minutes): a
    server that goes away mid-flush should cost seconds; the journal is kept anyway."""
    saved = {k: os.environ.get(k) for k in _HTTP_LIMITS}
    for k, v in _HTTP_LIMITS.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def _warn(msg: str) -> None:
    print(f"tracking: {msg}", file=sys.stderr, flush=True)


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
            "uri": redact(tracking_uri(uri)),  # the password is never written
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
    slot: str | None = None,
) -> None:
    """A nested run under the active stage run: params, per-epoch history, final metrics.

    ``flush`` skips it when a finished run with the same config hash, code digest and kind
    exists. ``slot`` names the grid position the run fills (default: its config hash): a
    new run in a slot supersedes the slot's earlier runs (other code, or other tuned
    hyperparameters after a re-tune).
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
                "slot": slot or row["config_hash"],
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
    s = str(redact(v))
    return s if len(s) < 500 else s[:497] + "..."
