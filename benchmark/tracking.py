"""Every MLflow call lives here and only here.

Default tracking URI ``sqlite:///mlflow.db`` (no server); ``MLFLOW_TRACKING_URI`` switches
to a server. One experiment per suite; a parent run per stage invocation; a nested run
per grid cell and per Optuna trial. A finished cell (same ``config_hash``) is never
logged twice.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

DEFAULT_URI = "sqlite:///mlflow.db"


def _mlflow():
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


def configure(uri: str | None = None) -> None:
    _mlflow().set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or uri or DEFAULT_URI)


@functools.cache  # one subprocess per process, not one per logged cell
def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _experiment(suite: str) -> str:
    mlflow = _mlflow()
    name = f"suite-{suite}"
    exp = mlflow.get_experiment_by_name(name)
    return exp.experiment_id if exp else mlflow.create_experiment(name)


@contextlib.contextmanager
def stage_run(
    suite: str, stage: str, *, uri: str | None = None, params: dict | None = None
) -> Iterator[str]:
    """A parent run for one stage invocation (e.g. ``train@simclr-ntxent``)."""
    configure(uri)
    mlflow = _mlflow()
    exp = _experiment(suite)
    with mlflow.start_run(experiment_id=exp, run_name=stage) as run:
        mlflow.set_tags(
            {"dvc_stage": stage, "git_commit": git_commit(), "suite": suite, "kind": "stage"}
        )
        if params:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
        yield run.info.run_id


def cell_logged(suite: str, config_hash: str, kind: str = "cell") -> bool:
    mlflow = _mlflow()
    runs = mlflow.search_runs(
        experiment_ids=[_experiment(suite)],
        filter_string=(
            f"tags.config_hash = '{config_hash}' and tags.kind = '{kind}' "
            "and attributes.status = 'FINISHED'"
        ),
        max_results=1,
        output_format="list",
    )
    return bool(runs)


def log_cell(
    suite: str,
    stage: str,
    *,
    params: dict,
    row: dict,
    history: Sequence[dict],
    kind: str = "cell",
    run_name: str | None = None,
) -> None:
    """A nested run under the active stage run: params, per-epoch history, final metrics.

    Skipped when a finished run with the same config hash (and kind) already exists.
    """
    mlflow = _mlflow()
    if cell_logged(suite, row["config_hash"], kind):
        return
    # the experiment must be named: a nested run does not inherit its parent's
    with mlflow.start_run(
        experiment_id=_experiment(suite), run_name=run_name or row["config_hash"], nested=True
    ):
        mlflow.set_tags(
            {
                "kind": kind,
                "config_hash": row["config_hash"],
                "dvc_stage": stage,
                "git_commit": git_commit(),
                "suite": suite,
                "negatives": str(row.get("negatives")),
                "diverged": str(row.get("diverged")),
            }
        )
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        for h in history:
            step = int(h["epoch"])
            mlflow.log_metrics(
                {k: float(v) for k, v in h.items() if k != "epoch" and v is not None}, step=step
            )
        finals = {
            k: float(row[k])
            for k in ("linear_acc", "knn_acc", "val_acc", "train_seconds", "views_per_second")
            if row.get(k) is not None
        }
        mlflow.log_metrics(finals)


def log_report_artifacts(suite: str, paths: list[Path]) -> None:
    """Attach the report's tables and figures to the suite's report run."""
    configure()
    mlflow = _mlflow()
    with mlflow.start_run(experiment_id=_experiment(suite), run_name="report"):
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
