"""What the stage commands share: params/suite loading, a pair's cells, atomic CSV I/O."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmark.config import ConfigError, Params, Suite, load_params, load_suite, suite_cells

RUNS_DIR = Path("reports/runs")
TUNED_DIR = Path("reports/tuned")
TRIALS_DIR = Path("reports/trials")

RESULT_COLUMNS = [
    "suite",
    "method",
    "objective",
    "dataset",
    "encoder",
    "batch_size",
    "negatives",
    "seed",
    "temperature",
    "margin",
    "tuned",
    "epochs",
    "linear_acc",
    "knn_acc",
    "val_acc",
    "train_seconds",
    "views_per_second",
    "diverged",
    "config_hash",
    "sweep",
]


def load(params_path: str | Path = "params.yaml") -> tuple[Params, Suite]:
    params = load_params(params_path)
    return params, load_suite(params.suite)


def pair_cells(params: Params, suite: Suite, pair: str) -> list[dict]:
    if pair not in params.pairs:
        raise ConfigError(
            f"params.yaml: pairs: no pair {pair!r}; allowed: {', '.join(params.pairs)}"
        )
    return [c for c in suite_cells(suite, params) if c["pair"] == pair]


def source_digest(method: str, objective: str) -> str:
    """Hash of the source files a (method, objective) pair runs: dvc.yaml's deps of its
    tune@/train@ stages. A changed file means new tuning (a new Optuna study)."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    files = [
        root / "objectives" / "_core.py",
        root / "methods" / "base.py",
        root / "methods" / f"{method}.py",
        root / "train.py",
        root / "probe.py",
        root / "datasets" / "augment.py",
        *sorted((root / "encoders").glob("*.py")),
    ]
    if objective != "none":
        files.append(root / "objectives" / f"{objective}.py")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if path.is_file() and path.stat().st_size > 0:
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError:
            pass
    return pd.DataFrame(columns=columns)


def apply_device(params: Params) -> None:
    """params.device: 'auto' picks CUDA when present; 'cpu' hides the GPU.

    params.threads: torch's CPU threads. 1 by default: the cells are small, and with more
    threads than free cores (a shared machine) OpenMP's barriers slow small ops down by
    an order of magnitude (measured: 0.7 s vs 26 s for one SimCLR cell under load).
    """
    import torch

    if params.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(params.threads)
