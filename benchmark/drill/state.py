"""What the drill compares and checks after each kill: a copy's results, Optuna studies and
MLflow run tree (``snapshot``, ``compare``) and the integrity of every file it wrote."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from benchmark.drill.runs import TIMING


def snapshot(repo: Path) -> dict:
    """results.csv's rows (untimed), the Optuna studies, the MLflow run tree."""
    import pandas as pd

    out: dict = {}
    df = pd.read_csv(repo / "reports" / "results.csv").drop(columns=list(TIMING))
    out["results"] = sorted(df.to_csv(index=False, header=False).splitlines())
    out["results_rows"] = len(df)
    out["studies"] = _studies(repo / "optuna.db")
    out["runs"], out["killed_stage_runs"] = _run_tree(repo / "mlflow.db")
    return out


def _studies(db: Path) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db}"
    studies = {}
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        studies[summary.study_name] = [
            (tr.number, tr.state.name, json.dumps(tr.params, sort_keys=True), tr.value)
            for tr in study.trials
        ]
    return studies


def _run_tree(db: Path) -> tuple[list, int]:
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    runs = []
    for exp in client.search_experiments():
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            runs += [(exp.name, r) for r in page]
            token = page.token
            if not token:
                break
    by_id = {r.info.run_id: r for _, r in runs}
    tree, killed = [], 0
    for exp, r in runs:
        tags = r.data.tags
        if tags.get("kind") == "stage" and r.info.status == "KILLED":
            killed += 1
            continue
        parent = by_id.get(tags.get("mlflow.parentRunId", ""))
        by = by_id.get(tags.get("superseded_by", ""))
        kept = {
            k: v
            for k, v in tags.items()
            if not k.startswith("mlflow.") and k not in ("journal_id", "superseded_by")
        }
        if by is not None:
            kept["superseded_by"] = by.info.run_name
        metrics = {k: v for k, v in r.data.metrics.items() if k not in TIMING and k != "seconds"}
        tree.append(
            json.dumps(
                {
                    "experiment": exp,
                    "parent_stage": parent.info.run_name if parent else None,
                    "name": r.info.run_name,
                    "status": r.info.status,
                    "tags": kept,
                    "params": r.data.params,
                    "metrics": metrics,
                },
                sort_keys=True,
                default=str,
            )
        )
    return sorted(tree), killed


def integrity(repo: Path) -> list[str]:
    """What is wrong with the files a (killed) run left: [] when nothing."""
    import pandas as pd

    problems = []
    for csv in sorted((repo / "reports").rglob("*.csv")):
        try:
            df = pd.read_csv(csv)
        except pd.errors.EmptyDataError:
            problems.append(f"{csv.relative_to(repo)}: empty")
            continue
        except Exception as err:  # noqa: BLE001 - any unreadable file is the finding
            problems.append(f"{csv.relative_to(repo)}: {type(err).__name__}")
            continue
        if {"config_hash", "sweep"} <= set(df.columns) and df.duplicated(
            ["config_hash", "sweep"]
        ).any():
            problems.append(f"{csv.relative_to(repo)}: duplicate rows")
    for db in ("optuna.db", "mlflow.db"):
        if (repo / db).is_file():
            with sqlite3.connect(repo / db) as conn:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                problems.append(f"{db}: {ok}")
    journals = repo / ".mlflow-journal"
    for path in sorted(journals.glob("*.jsonl")) if journals.is_dir() else []:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                if i != len(lines) - 1:  # only a kill's last, cut-short line is allowed
                    problems.append(f"{path.relative_to(repo)}: torn line {i + 1}")
    skip = {".git", ".dvc", "data", ".venv", "mlruns", "mlartifacts"}
    for path in repo.rglob("*.tmp"):
        if not skip & set(path.relative_to(repo).parts):
            problems.append(f"{path.relative_to(repo)}: stray temporary file")
    return problems


def compare(ref: dict, got: dict) -> list[str]:
    diffs = []
    for what in ("results", "runs"):
        a, b = ref[what], got[what]
        missing = sorted(set(a) - set(b))
        extra = [x for x in b if b.count(x) > a.count(x)]
        for x in missing:
            diffs.append(f"{what}: missing {x[:300]}")
        for x in sorted(set(extra)):
            diffs.append(f"{what}: extra {x[:300]}")
    for name in sorted(set(ref["studies"]) | set(got["studies"])):
        a, b = ref["studies"].get(name), got["studies"].get(name)
        if a != b:
            diffs.append(f"study {name}: reference {a} != drilled {b}")
    return diffs
