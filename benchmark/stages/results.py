"""`python -m benchmark results`: gather reports/runs/*.csv into the tidy reports/results.csv.

Also gathers reports/trials/*.csv (Optuna trials) into reports/trials.csv. Only pairs of
the current suite are read; rows are sorted so the file is stable across runs. Then the
tune/train stages' MLflow journals are written to MLflow (``tracking.flush``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmark.config import ConfigError, suite_pairs
from benchmark.errors import UserError
from benchmark.stages.common import (
    RESULT_COLUMNS,
    RUNS_DIR,
    TRIAL_COLUMNS,
    TRIALS_DIR,
    load,
    read_csv,
    write_csv_atomic,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/results.csv")
    parser.add_argument("--trials-out", default="reports/trials.csv")


def run(args: argparse.Namespace) -> int:
    try:
        params, suite = load(args.params, check_data=False)
    except ConfigError as err:
        raise UserError(str(err)) from None
    pairs = suite_pairs(suite)
    runs = [read_csv(RUNS_DIR / f"{p}.csv", RESULT_COLUMNS) for p in pairs]
    df = (
        pd.concat([r for r in runs if len(r)], ignore_index=True)
        if any(len(r) for r in runs)
        else pd.DataFrame(columns=RESULT_COLUMNS)
    )
    df = df[df["suite"] == suite.name].reindex(columns=RESULT_COLUMNS)
    df = df.sort_values(
        ["method", "objective", "dataset", "sweep", "batch_size", "negatives", "tuned", "seed"],
        na_position="first",
        kind="stable",
    )
    write_csv_atomic(df, Path(args.out))
    trials = [read_csv(TRIALS_DIR / f"{p}.csv", TRIAL_COLUMNS) for p in pairs]
    trials = [t for t in trials if len(t)]
    tdf = pd.concat(trials, ignore_index=True) if trials else pd.DataFrame(columns=TRIAL_COLUMNS)
    write_csv_atomic(tdf, Path(args.trials_out))
    print(
        f"results: {len(df)} rows from {len(pairs)} pairs -> {args.out}; "
        f"{len(tdf)} trials -> {args.trials_out}"
    )
    stale = _stale(df)
    if stale:
        print(
            f"results: warning: {stale} rows ran other code than the current sources "
            "(an interrupted train stage?); `dvc repro` retrains them"
        )
    from benchmark import tracking

    print(f"results: {tracking.flush()} MLflow runs written from the stages' journals")
    return 0


def _stale(df: pd.DataFrame) -> int:
    """Rows whose code_digest is not the digest of the sources their cell runs now."""
    from benchmark.sources import code_digest

    want = {key: code_digest(*key) for key in set(zip(df["method"], df["objective"], strict=True))}
    have = zip(df["method"], df["objective"], df["code_digest"], strict=True)
    return sum(want[(m, o)] != d for m, o, d in have)
