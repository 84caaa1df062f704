"""Where the stages' outputs live and the columns of their tables: the contract between
the stages, the report, tuning and the regression check (../shared/DESIGN.md). Imports
nothing heavy, so every module may read it."""

from __future__ import annotations

from pathlib import Path

RUNS_DIR = Path("reports/runs")  # train@<pair>: a row per finished cell and seed
TUNED_DIR = Path("reports/tuned")  # tune@<pair>: the best hyperparameters
TRIALS_DIR = Path("reports/trials")  # tune@<pair>: every Optuna trial
CELLS_DIR = Path("reports/cells")  # grid: what each pair's stages read of the suite

# a trial of the study of (method, objective) on the testbed (dataset, encoder)
TRIAL_COLUMNS = [
    "method",
    "objective",
    "dataset",
    "encoder",
    "trial",
    "temperature",
    "margin",
    "val_acc",
    "state",
]
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
    "code_digest",
]
