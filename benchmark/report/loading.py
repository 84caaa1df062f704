"""Reading and validating the report's inputs.

``load_results`` is shared with ``benchmark.check`` and ``benchmark.gate_perf``: it checks
the columns of DESIGN.md's results table and normalises their types, raising
``UserError`` (one line, exit 2) on anything a reader could not trust.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmark.errors import UserError
from benchmark.layout import RESULT_COLUMNS, TRIAL_COLUMNS

# columns of results.csv nobody reading it through load_results needs ("sweep" defaults)
_UNREAD = {"epochs", "val_acc", "views_per_second", "config_hash", "sweep"}
REQUIRED_RESULT_COLUMNS = [c for c in RESULT_COLUMNS if c not in _UNREAD]
MI_COLUMNS = ["bound", "true_mi", "estimate", "batch_size"]


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None


def _require_columns(df: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; expected at least {', '.join(columns)}"
        )


def _to_bool(series: pd.Series, column: str, path: Path) -> pd.Series:
    if series.dtype == bool:
        return series
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    mapping |= {"yes": True, "no": False}
    out = series.astype(str).str.strip().str.lower().map(mapping)
    bad = series[out.isna()]
    if len(bad):
        raise UserError(
            f"{path}: column {column} must be True/False; found {bad.iloc[0]!r} (row {bad.index[0] + 2})"
        )
    return out.astype(bool)


def _to_int(series: pd.Series, column: str, path: Path, allow_missing: bool) -> pd.Series:
    num = pd.to_numeric(series, errors="coerce")
    bad = series[num.isna() & series.notna()]
    if len(bad) or ((num % 1).fillna(0) != 0).any():
        value = bad.iloc[0] if len(bad) else num[(num % 1).fillna(0) != 0].iloc[0]
        raise UserError(f"{path}: column {column} must hold integers; found {value!r}")
    if not allow_missing and num.isna().any():
        raise UserError(
            f"{path}: column {column} must be set on every row; row {num[num.isna()].index[0] + 2} is empty"
        )
    return num.astype("Int64")


def _to_float(series: pd.Series, column: str, path: Path) -> pd.Series:
    num = pd.to_numeric(series, errors="coerce")
    bad = series[num.isna() & series.notna()]
    if len(bad):
        raise UserError(f"{path}: column {column} must be numeric; found {bad.iloc[0]!r}")
    return num.astype(float)


def load_results(path: Path | str, optional: Sequence[str] = ()) -> pd.DataFrame:
    """Read and validate ``results.csv`` (types normalised, ``sweep`` defaulted to "method").

    ``optional`` names required columns a caller tolerates missing (the report reads tables
    written before ``code_digest`` existed); they are added empty.
    """
    path = Path(path)
    df = _read_csv(path, "results table (run the train and results stages first)")
    _require_columns(df, [c for c in REQUIRED_RESULT_COLUMNS if c not in optional], path)
    if df.empty:
        raise UserError(f"{path}: has no rows; expected one row per finished grid cell and seed")
    df = df.copy()
    for col in optional:
        if col not in df.columns:
            df[col] = pd.NA
    if "sweep" not in df.columns:
        df["sweep"] = "method"
    for col in ["suite", "method", "dataset", "encoder", "sweep"]:
        if df[col].isna().any():
            raise UserError(
                f"{path}: column {col} must be set on every row; row {df[df[col].isna()].index[0] + 2} is empty"
            )
        df[col] = df[col].astype(str).str.strip()
    df["objective"] = df["objective"].fillna("none").astype(str).str.strip()
    df["batch_size"] = _to_int(df["batch_size"], "batch_size", path, allow_missing=False)
    df["negatives"] = _to_int(df["negatives"], "negatives", path, allow_missing=True)
    df["seed"] = _to_int(df["seed"], "seed", path, allow_missing=False)
    df["tuned"] = _to_bool(df["tuned"], "tuned", path)
    df["diverged"] = _to_bool(df["diverged"], "diverged", path)
    for col in ["temperature", "margin", "linear_acc", "knn_acc", "train_seconds"]:
        df[col] = _to_float(df[col], col, path)
    for col in ["linear_acc", "knn_acc", "val_acc"]:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        out = values[(values < 0) | (values > 1)]
        if len(out):
            raise UserError(
                f"{path}: column {col} must hold fractions in [0, 1]; found {out.iloc[0]} (row {out.index[0] + 2})"
            )
    return df


def load_optional(
    path: Path | str | None, columns: Sequence[str], what: str
) -> tuple[pd.DataFrame | None, str]:
    """Return (table or None, reason). Absent file -> (None, "... not found"); bad columns -> UserError."""
    if path is None:
        return None, f"no {what} given"
    path = Path(path)
    if not path.is_file():
        return None, f"{path} not found"
    df = _read_csv(path, what)
    if df.empty and len(df.columns) == 0:
        return df, f"{path} is empty"
    _require_columns(df, columns, path)
    if df.empty:
        return df, f"{path} has no rows"
    return df, ""


def load_trials(path: Path | str | None) -> tuple[pd.DataFrame | None, str]:
    df, reason = load_optional(path, TRIAL_COLUMNS, "Optuna trials table")
    if df is None or df.empty:
        return df, reason
    df = df.copy()
    df["objective"] = df["objective"].fillna("none").astype(str)
    df["method"] = df["method"].astype(str)
    df["state"] = df["state"].astype(str).str.strip().str.upper()
    for col in ["temperature", "margin", "val_acc"]:
        df[col] = _to_float(df[col], col, Path(path))
    return df, ""


def load_mi(path: Path | str | None) -> tuple[pd.DataFrame | None, str]:
    df, reason = load_optional(path, MI_COLUMNS, "MI check table")
    if df is None or df.empty:
        return df, reason
    df = df.copy()
    df["bound"] = df["bound"].astype(str)
    for col in ["true_mi", "estimate"]:
        df[col] = _to_float(df[col], col, Path(path))
    df["batch_size"] = _to_int(df["batch_size"], "batch_size", Path(path), allow_missing=False)
    return df, ""
