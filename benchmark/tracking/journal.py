"""The journals: what a stage invocation records while it runs (``stage_run``,
``log_cell``), one JSON line at a time in ``.mlflow-journal/``, and which journals are
over (``pending``). Imports no MLflow."""

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

from benchmark.tracking.urls import redact, tracking_uri

JOURNAL_DIR = Path(".mlflow-journal")
_FINAL_METRICS = ("linear_acc", "knn_acc", "val_acc", "train_seconds", "views_per_second")

_active: dict | None = None  # the journal of the stage invocation in progress


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


def _param(v) -> str:
    s = str(redact(v))
    return s if len(s) < 500 else s[:497] + "..."
