"""What the stage commands share: params/suite loading, a pair's cells, atomic CSV I/O."""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.config import (
    ConfigError,
    Params,
    Suite,
    load_params,
    load_suite,
    suite_cells,
    suite_pairs,
)

RUNS_DIR = Path("reports/runs")
TUNED_DIR = Path("reports/tuned")
TRIALS_DIR = Path("reports/trials")

TRIAL_COLUMNS = ["method", "objective", "trial", "temperature", "margin", "val_acc", "state"]
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


def load(
    params_path: str | Path = "params.yaml", *, check_data: bool = True
) -> tuple[Params, Suite]:
    """params.yaml and its suite, validated (``check_data``: also against the prepared data,
    which the prepare stage has already done for the stages after it)."""
    params = load_params(params_path)
    return params, load_suite(params.suite, check_data=check_data)


def pair_cells(params: Params, suite: Suite, pair: str) -> list[dict]:
    if pair not in params.pairs:
        raise ConfigError(
            f"params.yaml: pairs: no pair {pair!r}; allowed: {', '.join(params.pairs)}"
        )
    return [c for c in suite_cells(suite, params) if c["pair"] == pair]


def load_for_pair(
    pair: str, params_path: str | Path = "params.yaml"
) -> tuple[Params, Suite, list[dict]]:
    """params, suite and the pair's cells. A pair the suite does not use is answered from
    the YAML alone (no torch import), so its stages cost a fraction of a second."""
    params = load_params(params_path)
    suite = load_suite(params.suite, check_names=False)
    if pair in params.pairs and pair not in suite_pairs(suite):
        return params, suite, []
    suite = load_suite(params.suite, check_data=False)
    return params, suite, pair_cells(params, suite, pair)


def write_header_only(path: Path, columns: list[str]) -> None:
    """An empty CSV (header line only), atomically, without importing pandas."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(",".join(columns) + "\n")
    os.replace(tmp, path)


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


def write_csv_atomic(df, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def read_csv(path: Path, columns: list[str]):
    import pandas as pd

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
