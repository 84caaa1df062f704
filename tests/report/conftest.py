"""Synthetic inputs of the report: results rows, Optuna trials, MI estimates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

DEFAULTS = dict(
    suite="smoke",
    method="simclr",
    objective="ntxent",
    dataset="digits",
    encoder="mlp",
    batch_size=64,
    negatives=126,
    seed=0,
    temperature=np.nan,
    margin=np.nan,
    tuned=True,
    epochs=2,
    linear_acc=0.9,
    knn_acc=0.88,
    val_acc=0.91,
    train_seconds=3.0,
    views_per_second=1000.0,
    diverged=False,
    config_hash="x",
    sweep="method",
)


def rows_of(cells: list[dict]) -> pd.DataFrame:
    """Results rows: each dict overrides DEFAULTS (knn/val accuracies follow linear_acc)."""
    out = []
    for cell in cells:
        row = DEFAULTS | cell
        if "knn_acc" not in cell:
            row["knn_acc"] = row["linear_acc"] - 0.02
        row["val_acc"] = min(1.0, row["linear_acc"] + 0.01)
        out.append(row)
    return pd.DataFrame(out)


@pytest.fixture
def make_rows() -> Callable[[list[dict]], pd.DataFrame]:
    return rows_of


def synthetic_results(seeds: int = 3) -> pd.DataFrame:
    """A few methods/objectives, a batch sweep, negatives and queue sweeps, tuned and untuned."""
    rng = np.random.default_rng(0)
    cells = []

    def add(method, objective, sweep, batch, negatives, tuned, acc, t=np.nan, m=np.nan, n=seeds):
        for seed in range(n):
            lin = float(np.clip(acc + rng.normal(0, 0.01), 0, 1))
            cells.append(
                dict(
                    method=method,
                    objective=objective,
                    sweep=sweep,
                    batch_size=batch,
                    negatives=negatives,
                    seed=seed,
                    tuned=tuned,
                    temperature=t,
                    margin=m,
                    linear_acc=lin,
                    knn_acc=lin - 0.02,
                    train_seconds=3.0 + seed,
                    config_hash=f"{method}{objective}{batch}{negatives}{tuned}",
                )
            )

    for objective, base, t, m in [
        ("ntxent", 0.85, 0.2, np.nan),
        ("infonce", 0.83, 0.1, np.nan),
        ("triplet", 0.78, np.nan, 0.5),
    ]:
        add("simclr", objective, "method", 64, 126, True, base, t, m)
        untuned_t, untuned_m = (0.5 if t == t else t), (1.0 if m == m else m)
        add("simclr", objective, "method", 64, 126, False, base - 0.03, untuned_t, untuned_m)
        for b in [16, 32, 64, 128]:
            add(
                "simclr", objective, "batch", b, 2 * b - 2, True, base - 0.02 * (128 // b) / 4, t, m
            )
        for k in [4, 16, 64]:
            add("simclr", objective, "negatives", 64, k, True, base - 0.05 / np.log2(k + 1), t, m)
    for k in [64, 256, 1024]:
        add("moco", "infonce", "queue", 64, k, True, 0.80 + 0.01 * np.log2(k) / 10, 0.07)
        add("npid", "nce", "queue", 64, k, True, 0.74 + 0.01 * np.log2(k) / 10, 0.07)
    add("moco", "infonce", "method", 64, 1024, True, 0.82, 0.07)
    add("npid", "nce", "method", 64, 1024, True, 0.75, 0.07)
    add("byol", "none", "method", 64, 0, False, 0.80)
    add("supervised", "none", "method", 64, 0, False, 0.95)
    add("random", "none", "method", 64, 0, False, 0.40, n=1)
    df = rows_of(cells)
    df.loc[(df.method == "npid") & (df.sweep == "method") & (df.seed == 2), "diverged"] = True
    return df


def synthetic_trials() -> pd.DataFrame:
    rows = []
    for objective, param in [
        ("ntxent", "temperature"),
        ("infonce", "temperature"),
        ("triplet", "margin"),
    ]:
        for trial in range(6):
            value = 0.05 * 2**trial if param == "temperature" else 0.1 * (trial + 1)
            rows.append(
                dict(
                    method="simclr",
                    objective=objective,
                    dataset="digits",
                    encoder="mlp",
                    trial=trial,
                    temperature=value if param == "temperature" else np.nan,
                    margin=value if param == "margin" else np.nan,
                    val_acc=0.8 - 0.01 * abs(trial - 2),
                    state="PRUNED" if trial == 5 else "COMPLETE",
                )
            )
    return pd.DataFrame(rows)


def synthetic_mi() -> pd.DataFrame:
    rows = []
    for n in [64, 256]:
        for true_mi in [1.0, 2.0, 4.0, 6.0]:
            for bound in ["infonce", "nwj", "dv", "jsd"]:
                est = min(true_mi, np.log(n)) if bound == "infonce" else true_mi * 0.9
                rows.append(dict(bound=bound, true_mi=true_mi, estimate=est, batch_size=n))
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def synthetic() -> dict[str, Callable[..., pd.DataFrame]]:
    return {"results": synthetic_results, "trials": synthetic_trials, "mi": synthetic_mi}
