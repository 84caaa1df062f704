"""Every MLflow call lives here (this package) and only here.

Default tracking URI ``sqlite:///mlflow.db`` (no server); ``MLFLOW_TRACKING_URI`` switches
to a server. One experiment per suite; a parent run per stage invocation; a nested run
per grid cell and per Optuna trial. A finished cell (same ``config_hash`` and
``code_digest``) is never logged twice; a cell retrained because its code changed gets a
new run, and its earlier run is kept and tagged ``superseded`` (with ``superseded_by``).
A trial has one run per (study, trial number): a trial journaled again (a tune stage
killed after journaling it and before telling it to Optuna runs it again on resume) keeps
its last journaled outcome, the one Optuna was told; the earlier run is deleted.

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

Modules: ``urls`` (tracking URIs, redaction, reachability), ``journal`` (what the stages
write while they run), ``flushing`` (delivery to MLflow: the only module importing it).
"""

from __future__ import annotations

from benchmark.tracking import journal as _journal
from benchmark.tracking.flushing import (
    _experiment,
    _flush_lock,
    _flush_one,
    _log_batch,
    _logged,
    _mlflow,
    _supersede,
    _warn,
    flush,
    log_report_artifacts,
)
from benchmark.tracking.journal import (
    _FINAL_METRICS,
    JOURNAL_DIR,
    _alive,
    _append,
    _ended,
    _now_ms,
    _param,
    _read,
    git_commit,
    log_cell,
    pending,
    stage_run,
)
from benchmark.tracking.urls import (
    _HTTP_LIMITS,
    _SECRET_QUERY_KEYS,
    DEFAULT_URI,
    MissingCredentials,
    _few_http_retries,
    _unreachable,
    delivery_uri,
    redact,
    tracking_uri,
)

__all__ = [
    "DEFAULT_URI",
    "JOURNAL_DIR",
    "_FINAL_METRICS",
    "_HTTP_LIMITS",
    "_SECRET_QUERY_KEYS",
    "MissingCredentials",
    "_alive",
    "_append",
    "_ended",
    "_experiment",
    "_few_http_retries",
    "_flush_lock",
    "_flush_one",
    "_log_batch",
    "_logged",
    "_mlflow",
    "_now_ms",
    "_param",
    "_read",
    "_supersede",
    "_unreachable",
    "_warn",
    "delivery_uri",
    "flush",
    "git_commit",
    "log_cell",
    "log_report_artifacts",
    "pending",
    "redact",
    "stage_run",
    "tracking_uri",
]


def __getattr__(name: str):
    if name == "_active":  # the journal in progress: read live, never a stale copy
        return _journal._active
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
