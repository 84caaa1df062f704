"""`python -m benchmark report`: tidy results -> leaderboard tables, figures and index.html.

Inputs (produced by other stages):

* ``reports/results.csv`` -- one row per finished grid cell and seed (DESIGN.md), plus
  ``sweep`` ("method", "batch", "negatives", "queue"; "method" when the column is absent);
* ``reports/trials.csv`` -- Optuna trials (optional);
* ``reports/mi_check.csv`` -- MI bound estimates on ``gaussian_mi`` (optional).

Outputs (under ``--out``, default ``reports/``), every one written atomically
(temp file + rename):

* ``leaderboard.csv`` / ``leaderboard.md`` -- one row per (method, objective, dataset,
  encoder) from its headline cells, mean +/- 95% t-interval over seeds;
* ``figures/*.png`` and ``figures/*.svg`` -- five seaborn figures;
* ``index.html`` -- one self-contained page (PNGs inlined as data URIs);
* ``metrics.json`` -- flat headline metrics for ``dvc metrics diff``;
* ``plots/acc_vs_batch.csv``, ``plots/acc_vs_negatives.csv`` -- tidy data for ``dvc plots``.

Headline cells of a (method, objective, dataset, encoder) are its ``sweep == "method"``
rows; if those hold more than one (batch_size, negatives) configuration, the one with the
most seeds (then the largest batch, then the most negatives) is used. Diverged seeds are
left out of means and intervals and counted in their own column.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import atomic
from benchmark.cli import UserError
from benchmark.stages.common import RESULT_COLUMNS, TRIAL_COLUMNS

# the columns of results.csv the report reads ("sweep" may be absent in older tables)
_UNREAD = {"epochs", "val_acc", "views_per_second", "config_hash", "sweep"}
REQUIRED_RESULT_COLUMNS = [c for c in RESULT_COLUMNS if c not in _UNREAD]
MI_COLUMNS = ["bound", "true_mi", "estimate", "batch_size"]
SWEEPS = ("method", "batch", "negatives", "queue")
KEY = ["method", "objective", "dataset", "encoder"]
BASELINE_ROLES = {"supervised": "ceiling", "random": "floor"}
# documented order (DESIGN.md); unknown names follow alphabetically
OBJECTIVE_ORDER = [
    "contrastive",
    "triplet",
    "lifted",
    "npair",
    "nce",
    "infonce",
    "ntxent",
    "jsd",
    "nwj",
    "dv",
    "none",
]
FIGURES = {
    "acc_vs_batch": "Linear-probe accuracy vs batch size",
    "acc_vs_negatives": "Linear-probe accuracy vs number of negatives",
    "method_objective_heatmap": "Method x objective linear-probe accuracy",
    "sensitivity": "Sensitivity of validation accuracy to temperature and margin",
    "mi_check": "Mutual-information bounds on gaussian_mi",
}
README_START = "<!-- leaderboard:start -->"
README_END = "<!-- leaderboard:end -->"


# --------------------------------------------------------------------------- atomic writes


atomic_write_bytes = atomic.write_bytes
atomic_write_text = atomic.write_text


def _json_clean(obj: Any) -> Any:
    """NaN -> null, numpy scalars -> Python, recursively (json.dumps would emit bare NaN)."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is pd.NA:
        return None
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(_json_clean(obj), indent=2, sort_keys=False) + "\n")


# --------------------------------------------------------------------------- loading


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


def load_results(path: Path | str) -> pd.DataFrame:
    """Read and validate ``results.csv`` (types normalised, ``sweep`` defaulted to "method")."""
    path = Path(path)
    df = _read_csv(path, "results table (run the train and results stages first)")
    _require_columns(df, REQUIRED_RESULT_COLUMNS, path)
    if df.empty:
        raise UserError(f"{path}: has no rows; expected one row per finished grid cell and seed")
    df = df.copy()
    if "sweep" not in df.columns:
        df["sweep"] = "method"
    for col in ["suite", "method", "dataset", "encoder", "sweep"]:
        if df[col].isna().any():
            raise UserError(
                f"{path}: column {col} must be set on every row; row {df[df[col].isna()].index[0] + 2} is empty"
            )
        df[col] = df[col].astype(str).str.strip()
    df["objective"] = df["objective"].fillna("none").astype(str).str.strip()
    unknown = sorted(set(df["sweep"]) - set(SWEEPS))
    if unknown:
        raise UserError(f"{path}: column sweep has {unknown}; expected one of {', '.join(SWEEPS)}")
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


# --------------------------------------------------------------------------- statistics


def ci95_halfwidth(values: Sequence[float] | np.ndarray) -> float:
    """Half-width of the two-sided 95% t-interval of the mean; 0 for fewer than two values."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    if len(a) < 2:
        return 0.0
    from scipy import stats

    return float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))


def t_interval(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(low, high) of the 95% t-interval; seaborn's ``errorbar=`` callable."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    if len(a) == 0:
        return (math.nan, math.nan)
    m, h = float(a.mean()), ci95_halfwidth(a)
    return (m - h, m + h)


def _summary(rows: pd.DataFrame, column: str) -> tuple[float, float, int]:
    ok = rows.loc[~rows["diverged"], column].to_numpy(dtype=float)
    ok = ok[np.isfinite(ok)]
    if len(ok) == 0:
        return math.nan, math.nan, 0
    return float(ok.mean()), ci95_halfwidth(ok), len(ok)


def _eq(series: pd.Series, value: Any) -> pd.Series:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return series.isna()
    return (series == value).fillna(False).astype(bool)


def _first_value(series: pd.Series) -> float:
    s = series.dropna()
    return float(s.median()) if len(s) else math.nan


def headline_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of each (method, objective, dataset, encoder)'s headline configuration."""
    head = results[results["sweep"] == "method"]
    if head.empty:  # no method-grid rows at all: treat every row as a headline candidate
        head = results
    parts = []
    for _, g in head.groupby(KEY, sort=True, dropna=False):
        configs = (
            g.groupby(["batch_size", "negatives"], dropna=False)["seed"]
            .nunique()
            .reset_index(name="n")
            .sort_values(["n", "batch_size", "negatives"], ascending=False, na_position="last")
        )
        bs, neg = configs.iloc[0]["batch_size"], configs.iloc[0]["negatives"]
        parts.append(g[_eq(g["batch_size"], bs) & _eq(g["negatives"], neg)])
    return pd.concat(parts) if parts else head.iloc[0:0]


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, objective, dataset, encoder), sorted by linear accuracy."""
    head = headline_rows(results)
    rows = []
    for (method, objective, dataset, encoder), g in head.groupby(KEY, sort=True, dropna=False):
        tuned_rows, untuned_rows = g[g["tuned"]], g[~g["tuned"]]
        main = tuned_rows if len(tuned_rows) else untuned_rows
        lin, lin_ci, n = _summary(main, "linear_acc")
        knn, knn_ci, _ = _summary(main, "knn_acc")
        un, un_ci, _ = (
            _summary(untuned_rows, "linear_acc") if len(tuned_rows) else (math.nan, math.nan, 0)
        )
        negatives = main["negatives"].dropna()
        rows.append(
            {
                "method": method,
                "objective": objective,
                "dataset": dataset,
                "encoder": encoder,
                "role": BASELINE_ROLES.get(method, "method"),
                "tuned": bool(len(tuned_rows)),
                "linear_acc": lin,
                "linear_acc_ci95": lin_ci,
                "knn_acc": knn,
                "knn_acc_ci95": knn_ci,
                "n_seeds": int(main["seed"].nunique()),
                "n_ok": n,
                "n_diverged": int(main["diverged"].sum()),
                "temperature": _first_value(main["temperature"]),
                "margin": _first_value(main["margin"]),
                "untuned_linear_acc": un,
                "untuned_linear_acc_ci95": un_ci,
                "tuning_gain": lin - un,
                "negatives": int(negatives.iloc[0]) if len(negatives) else pd.NA,
                "batch_size": int(main["batch_size"].iloc[0]),
                "train_seconds": float(main["train_seconds"].mean()),
            }
        )
    lb = pd.DataFrame(rows)
    if lb.empty:
        return lb
    for role, col in [("ceiling", "supervised_linear_acc"), ("floor", "random_linear_acc")]:
        ref = lb[lb["role"] == role].groupby(["dataset", "encoder"])["linear_acc"].max()
        lb[col] = [
            ref.get((d, e), math.nan) for d, e in zip(lb["dataset"], lb["encoder"], strict=True)
        ]
    lb = lb.sort_values(
        ["dataset", "encoder", "linear_acc", "method", "objective"],
        ascending=[True, True, False, True, True],
        na_position="last",
        kind="mergesort",
    ).reset_index(drop=True)
    ranks = []
    counters: dict[tuple[str, str], int] = {}
    for d, e, role in zip(lb["dataset"], lb["encoder"], lb["role"], strict=True):
        if role != "method":
            ranks.append(pd.NA)
            continue
        counters[(d, e)] = counters.get((d, e), 0) + 1
        ranks.append(counters[(d, e)])
    lb.insert(0, "rank", pd.array(ranks, dtype="Int64"))
    return lb


def sweep_curve(results: pd.DataFrame, sweeps: Sequence[str], x: str) -> pd.DataFrame:
    """Tidy per-point means of one sweep (tuned cells preferred), for plots and DVC."""
    rows = results[results["sweep"].isin(sweeps) & ~results["diverged"]]
    rows = rows[rows[x].notna()]
    if rows.empty:
        return pd.DataFrame(
            columns=["sweep", *KEY, "series", "tuned", x, "linear_acc", "linear_acc_ci_low"]
            + ["linear_acc_ci_high", "knn_acc", "n_seeds"]
        )
    # per (method, objective, dataset, encoder, sweep): tuned rows when there are any
    keep = rows.groupby([*KEY, "sweep"], dropna=False)["tuned"].transform("max")
    rows = rows[rows["tuned"] == keep]
    out = []
    group_cols = ["sweep", *KEY, "tuned", x]
    if x != "batch_size":
        group_cols.append("batch_size")
    for key, g in rows.groupby(group_cols, sort=True, dropna=False):
        rec = dict(zip(group_cols, key, strict=True))
        low, high = t_interval(g["linear_acc"])
        rec |= {
            "series": f"{rec['method']}/{rec['objective']}",
            "linear_acc": float(g["linear_acc"].mean()),
            "linear_acc_ci_low": low,
            "linear_acc_ci_high": high,
            "knn_acc": float(g["knn_acc"].mean()),
            "n_seeds": int(g["seed"].nunique()),
        }
        out.append(rec)
    df = pd.DataFrame(out)
    cols = ["sweep", *KEY, "series", "tuned", x]
    if x != "batch_size":
        cols.append("batch_size")
    cols += ["linear_acc", "linear_acc_ci_low", "linear_acc_ci_high", "knn_acc", "n_seeds"]
    return df[cols]


def headline_metrics(results: pd.DataFrame, lb: pd.DataFrame) -> dict[str, Any]:
    """Flat keys for `dvc metrics diff`: ``<method>/<objective>/<dataset>/<encoder>/linear_acc``."""
    metrics: dict[str, Any] = {
        "results_rows": len(results),
        "cells": int(
            results.groupby(
                [*KEY, "batch_size", "negatives", "tuned", "sweep"], dropna=False
            ).ngroups
        ),
        "diverged_rows": int(results["diverged"].sum()),
    }
    for r in lb.itertuples(index=False):
        prefix = f"{r.method}/{r.objective}/{r.dataset}/{r.encoder}"
        for name in ["linear_acc", "knn_acc", "untuned_linear_acc"]:
            value = getattr(r, name)
            if name == "untuned_linear_acc" and not np.isfinite(value):
                continue
            metrics[f"{prefix}/{name}"] = round(float(value), 5) if np.isfinite(value) else None
    return metrics


# --------------------------------------------------------------------------- tables


def _pct(mean: float, ci: float = 0.0) -> str:
    if mean is None or not np.isfinite(mean):
        return "—"
    if ci and np.isfinite(ci) and ci > 0:
        return f"{100 * mean:.1f} ± {100 * ci:.1f}"
    return f"{100 * mean:.1f}"


def _num(value: Any, fmt: str = "{:g}") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return fmt.format(value)


def display_table(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as formatted strings (accuracies in %), shared by Markdown and HTML."""
    rows = []
    for r in lb.itertuples(index=False):
        method = r.method if r.role == "method" else f"{r.method} ({r.role})"
        seeds = str(r.n_seeds) + (f" ({r.n_diverged} diverged)" if r.n_diverged else "")
        rows.append(
            {
                "rank": _num(r.rank, "{}"),
                "method": method,
                "objective": "—" if r.objective == "none" else r.objective,
                "dataset": r.dataset,
                "encoder": r.encoder,
                "linear acc (%)": _pct(r.linear_acc, r.linear_acc_ci95),
                "kNN acc (%)": _pct(r.knn_acc, r.knn_acc_ci95),
                "untuned linear (%)": _pct(r.untuned_linear_acc, r.untuned_linear_acc_ci95),
                "temperature": _num(r.temperature, "{:.3g}"),
                "margin": _num(r.margin, "{:.3g}"),
                "negatives": _num(r.negatives, "{}"),
                "batch": _num(r.batch_size, "{}"),
                "train time (s)": _num(r.train_seconds, "{:.1f}"),
                "seeds": seeds,
            }
        )
    return pd.DataFrame(rows)


LEGEND = (
    "Linear-probe and kNN test accuracy in %, mean ± 95% t-interval over seeds (no interval "
    "with one seed; diverged seeds excluded). Temperature/margin are the Optuna-tuned values "
    "used for the accuracy shown; *untuned linear* is the objective's default at the same "
    "cell. *negatives* is the effective number of negatives per anchor. `supervised "
    "(ceiling)` and `random (floor)` rows give the scale for each dataset and encoder."
)


def markdown_table(table: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |"]
    right = {"rank", "negatives", "batch", "train time (s)", "temperature", "margin"}
    lines.append("|" + "|".join("---:" if c in right else "---" for c in cols) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_markdown(lb: pd.DataFrame) -> str:
    """Legend + pipe table (no heading): embeddable in README.md."""
    if lb.empty:
        return "_No headline cells in results.csv._\n"
    return LEGEND + "\n\n" + markdown_table(display_table(lb))


# --------------------------------------------------------------------------- figures


def _objective_order(names: Sequence[str]) -> list[str]:
    names = set(names)
    known = [o for o in OBJECTIVE_ORDER if o in names]
    return known + sorted(names - set(known))


def _palette(objectives: Sequence[str]) -> dict[str, Any]:
    import seaborn as sns

    order = _objective_order(objectives)
    colors = sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order))
    return dict(zip(order, colors, strict=True))


def _save(fig: Any, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    for ext, kwargs in [("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})]:
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, bbox_inches="tight", facecolor="white", **kwargs)
        paths.append(atomic_write_bytes(stem.with_suffix(f".{ext}"), buf.getvalue()))
    plt.close(fig)
    return paths


def _placeholder(title: str, message: str) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.4))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="0.35", wrap=True)
    return fig


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (5.0, 3.8)) -> tuple[Any, list]:
    import matplotlib.pyplot as plt

    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _log2_axis(ax: Any, values: Sequence[float]) -> None:
    from matplotlib.ticker import NullLocator

    ticks = sorted({int(v) for v in values if v is not None and v is not pd.NA and v > 0})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks], rotation=45 if len(ticks) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())


METHOD_MARKERS = ["o", "X", "s", "^", "D", "P", "v", "*", "h", "<"]
METHOD_DASHES = ["", (4, 1.5), (1, 1), (3, 1.25, 1.5, 1.25), (5, 1, 1, 1), (2, 2), (6, 2)]


def _method_styles(methods: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """method -> (marker, dash pattern), fixed across the panels of a figure."""
    return {
        m: (METHOD_MARKERS[i % len(METHOD_MARKERS)], METHOD_DASHES[i % len(METHOD_DASHES)])
        for i, m in enumerate(sorted(methods))
    }


def _figure_legend(fig: Any, sections: list[tuple[str, list[tuple[str, Any]]]]) -> None:
    """One legend for the whole figure, right of the panels; sections of (label, handle)."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for title, entries in sections:
        if not entries:
            continue
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(r"$\bf{" + title.replace(" ", r"\ ") + "}$")
        for label, handle in entries:
            handles.append(handle)
            labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def _objective_entries(objectives: Sequence[str], palette: dict[str, Any]) -> list[tuple[str, Any]]:
    from matplotlib.lines import Line2D

    return [
        ("— (none)" if o == "none" else o, Line2D([], [], color=palette[o], linewidth=2.5))
        for o in palette
        if o in set(objectives)
    ]


def _method_entries(styles: dict[str, tuple[str, Any]], lines: bool) -> list[tuple[str, Any]]:
    from matplotlib.lines import Line2D

    out = []
    for m, (marker, dash) in styles.items():
        h = Line2D([], [], color="0.25", marker=marker, linestyle="-" if lines else "none")
        if lines and dash:
            h.set_dashes(dash)
        out.append((m, h))
    return out


def _line_panels(
    data: pd.DataFrame,
    panels: list[tuple[str, pd.DataFrame]],
    x: str,
    xlabel: str,
    title: str,
    palette: dict[str, Any],
) -> Any:
    """One panel per subset: linear accuracy (%) vs x (log2), hue objective, style method."""
    import seaborn as sns

    styles = _method_styles(data["method"].unique())
    multi_method = len(styles) > 1
    fig, axes = _grid(len(panels))
    for ax, (panel_title, rows) in zip(axes, panels, strict=True):
        rows = rows.assign(acc=100 * rows["linear_acc"])
        present = sorted(rows["method"].unique())
        sns.lineplot(
            data=rows,
            x=x,
            y="acc",
            hue="objective",
            hue_order=[o for o in palette if o in set(rows["objective"])],
            palette=palette,
            style="method" if multi_method else None,
            style_order=present if multi_method else None,
            markers={m: styles[m][0] for m in present} if multi_method else True,
            dashes={m: styles[m][1] for m in present} if multi_method else True,
            marker=None if multi_method else "o",
            markersize=7,
            errorbar=lambda v: tuple(100 * np.asarray(t_interval(np.asarray(v) / 100))),
            err_style="band",
            legend=False,
            ax=ax,
        )
        _log2_axis(ax, rows[x].dropna().astype(float).tolist())
        ax.set_title(panel_title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("linear-probe test accuracy (%)")
    fig.suptitle(title + " (mean, band = 95% CI over seeds)")
    fig.tight_layout(w_pad=2.0)
    sections = [("objective", _objective_entries(data["objective"].unique(), palette))]
    if multi_method:
        sections.append(("method", _method_entries(styles, lines=True)))
    _figure_legend(fig, sections)
    return fig


def figure_acc_vs_batch(results: pd.DataFrame, palette: dict[str, Any]) -> Any:
    title = FIGURES["acc_vs_batch"]
    rows = _prefer_tuned(results[(results["sweep"] == "batch") & ~results["diverged"]])
    if rows.empty:
        return _placeholder(title, "no batch-size sweep cells (sweep = batch) in results")
    panels = [(f"{d} / {e}", g) for (d, e), g in rows.groupby(["dataset", "encoder"], sort=True)]
    return _line_panels(
        rows, panels, "batch_size", "batch size (samples per step, log2 scale)", title, palette
    )


def figure_acc_vs_negatives(results: pd.DataFrame, palette: dict[str, Any]) -> Any:
    title = FIGURES["acc_vs_negatives"]
    rows = results[results["sweep"].isin(["negatives", "queue"]) & ~results["diverged"]]
    rows = _prefer_tuned(rows[rows["negatives"].notna() & (rows["negatives"].fillna(0) > 0)])
    if rows.empty:
        return _placeholder(
            title, "no negatives sweep cells (sweep = negatives / queue) in results"
        )
    rows = rows.assign(negatives=rows["negatives"].astype(float))
    names = {"negatives": "in-batch negatives (subsampled)", "queue": "MoCo queue / memory bank K"}
    panels = [
        (f"{names[s]}\n{d} / {e}", g)
        for (s, d, e), g in rows.groupby(["sweep", "dataset", "encoder"], sort=True)
    ]
    return _line_panels(
        rows, panels, "negatives", "negatives per anchor (log2 scale)", title, palette
    )


def _prefer_tuned(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return rows
    keep = rows.groupby([*KEY, "sweep"], dropna=False)["tuned"].transform("max")
    return rows[rows["tuned"] == keep]


def figure_heatmap(lb: pd.DataFrame) -> Any:
    import seaborn as sns

    title = FIGURES["method_objective_heatmap"]
    if lb.empty or lb["linear_acc"].notna().sum() == 0:
        return _placeholder(title, "no headline cells in results")
    groups = list(lb.groupby(["dataset", "encoder"], sort=True))
    n_methods = lb["method"].nunique()
    n_obj = lb["objective"].nunique()
    size = (2.5 + 0.9 * n_obj, 1.5 + 0.45 * n_methods)
    with sns.axes_style("white"):
        fig, axes = _grid(len(groups), ncols=2, size=size)
    for ax, ((d, e), g) in zip(axes, groups, strict=True):
        table = g.pivot_table(
            index="method", columns="objective", values="linear_acc", aggfunc="mean"
        )
        methods = sorted(table.index, key=lambda m: (m in BASELINE_ROLES, m))
        table = 100 * table.reindex(index=methods, columns=_objective_order(table.columns))
        table.columns = ["—" if c == "none" else c for c in table.columns]
        table.index = [
            f"{m} ({BASELINE_ROLES[m]})" if m in BASELINE_ROLES else m for m in table.index
        ]
        sns.heatmap(
            table,
            annot=True,
            fmt=".1f",
            cmap="viridis",
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": "linear-probe test accuracy (%)"},
            ax=ax,
        )
        ax.set_title(f"{d} / {e}")
        ax.set_xlabel("objective (— = method without an objective)")
        ax.set_ylabel("method")
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(title + " (headline cells, mean over seeds)")
    fig.tight_layout()
    return fig


def figure_sensitivity(trials: pd.DataFrame | None, reason: str, palette: dict[str, Any]) -> Any:
    """One panel per (objective, hyperparameter): completed trials' val accuracy, best starred."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    title = FIGURES["sensitivity"]
    if trials is None:
        return _placeholder(title, f"no trials ({reason})")
    done = trials[(trials["state"] == "COMPLETE") & trials["val_acc"].notna()]
    panels = []
    for objective in _objective_order(done["objective"].unique()):
        rows = done[done["objective"] == objective]
        for param in ["temperature", "margin"]:
            sub = rows[rows[param].notna()]
            if param == "temperature":
                sub = sub[sub[param] > 0]
            if len(sub):
                panels.append((objective, param, sub.assign(acc=100 * sub["val_acc"])))
    if not panels:
        why = reason or "none completed with a temperature or margin"
        return _placeholder(title, f"no completed trials ({why})")
    styles = _method_styles(done["method"].unique())
    fig, axes = _grid(len(panels), ncols=3, size=(4.6, 3.6))
    for ax, (objective, param, rows) in zip(axes, panels, strict=True):
        for method, g in rows.groupby("method", sort=True):
            g = g.sort_values(param)
            ax.plot(
                g[param],
                g["acc"],
                linestyle="none",
                marker=styles[method][0],
                color=palette.get(objective, "C0"),
                alpha=0.75,
                markersize=7,
            )
            best = g.loc[g["acc"].idxmax()]
            ax.plot(
                [best[param]],
                [best["acc"]],
                marker="*",
                markersize=17,
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="black",
                markeredgewidth=1.2,
            )
        if param == "temperature":
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{param} (dimensionless{', log scale' if param == 'temperature' else ''})")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(f"{objective}: {len(rows)} completed trials")
    fig.suptitle(title + " (completed Optuna trials)")
    fig.tight_layout()
    star = Line2D(
        [],
        [],
        marker="*",
        markersize=14,
        linestyle="none",
        markerfacecolor="none",
        markeredgecolor="black",
    )
    _figure_legend(
        fig, [("method", _method_entries(styles, lines=False)), ("marker", [("best trial", star)])]
    )
    return fig


def figure_mi(mi: pd.DataFrame | None, reason: str) -> Any:
    import seaborn as sns
    from matplotlib.lines import Line2D

    title = FIGURES["mi_check"]
    if mi is None or mi.empty:
        return _placeholder(title, f"no MI check ({reason})")
    sizes = sorted(int(b) for b in mi["batch_size"].dropna().unique())
    bounds = sorted(mi["bound"].unique())
    palette = dict(zip(bounds, sns.color_palette("Set2", len(bounds)), strict=True))
    fig, axes = _grid(len(sizes), ncols=3, size=(4.8, 4.0))
    for ax, n in zip(axes, sizes, strict=True):
        rows = mi[mi["batch_size"] == n]
        sns.lineplot(
            data=rows,
            x="true_mi",
            y="estimate",
            hue="bound",
            hue_order=bounds,
            palette=palette,
            marker="o",
            errorbar=t_interval,
            legend=False,
            ax=ax,
        )
        hi = float(np.nanmax([rows["true_mi"].max(), rows["estimate"].max(), math.log(n)]))
        lo = float(min(0.0, np.nanmin(rows["estimate"])))
        ax.plot([0, hi], [0, hi], color="0.4", linestyle="--", linewidth=1)
        ax.axhline(math.log(n), color="crimson", linestyle=":", linewidth=1.5)
        ax.annotate(
            f"log N = {math.log(n):.2f}",
            (0.02, math.log(n)),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            color="crimson",
            fontsize="small",
        )
        ax.set_ylim(lo - 0.1, hi * 1.08 + 0.1)
        ax.set_xlabel("true mutual information (nats)")
        ax.set_ylabel("bound estimate (nats)")
        ax.set_title(f"batch size N = {n}")
    fig.suptitle(title + " (mean estimate vs true MI)")
    fig.tight_layout()
    sections = [
        ("bound", [(b, Line2D([], [], color=palette[b], marker="o", linewidth=2)) for b in bounds]),
        (
            "reference",
            [
                ("true MI (y = x)", Line2D([], [], color="0.4", linestyle="--")),
                ("log N ceiling", Line2D([], [], color="crimson", linestyle=":", linewidth=1.5)),
            ],
        ),
    ]
    _figure_legend(fig, sections)
    return fig


# --------------------------------------------------------------------------- HTML


def _html_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, classes="table", na_rep="—")


def index_html(
    results: pd.DataFrame,
    lb: pd.DataFrame,
    figures: dict[str, Path],
    out: Path,
    extra_tables: list[tuple[str, pd.DataFrame]],
    notes: list[str],
) -> str:
    suites = ", ".join(sorted(results["suite"].unique()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Contrastive benchmark report: {html.escape(suites)}</title>",
        "<style>",
        "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;"
        "max-width:1200px;padding:0 1em;color:#222}",
        "table.table{border-collapse:collapse;font-size:0.9em;margin:1em 0}",
        ".table th,.table td{padding:0.25em 0.6em;border-bottom:1px solid #ddd;text-align:left}",
        ".table th{background:#f3f3f3}",
        "figure{margin:2em 0}img{max-width:100%;height:auto}figcaption{color:#555}",
        "</style></head><body>",
        f"<h1>Contrastive benchmark report: suite {html.escape(suites)}</h1>",
        f"<p>{len(results)} result rows, {int(results['diverged'].sum())} diverged; "
        f"{len(lb)} leaderboard rows. Files: "
        '<a href="leaderboard.csv">leaderboard.csv</a>, '
        '<a href="leaderboard.md">leaderboard.md</a>, '
        '<a href="metrics.json">metrics.json</a>.</p>',
        "<h2>Leaderboard</h2>",
        f"<p>{html.escape(LEGEND.replace('*', '').replace('`', ''))}</p>",
        _html_table(display_table(lb)) if not lb.empty else "<p>No headline cells.</p>",
        "<h2>Figures</h2>",
    ]
    for name, png in figures.items():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        svg = png.with_suffix(".svg").relative_to(out).as_posix()
        parts.append(
            f'<figure id="{name}"><img alt="{html.escape(FIGURES[name])}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(FIGURES[name])} "
            f'(<a href="{html.escape(svg)}">SVG</a>)</figcaption></figure>'
        )
    for heading, table in extra_tables:
        parts += [f"<h2>{html.escape(heading)}</h2>", _html_table(table)]
    if notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- driver


def build_report(
    results: pd.DataFrame,
    out: Path | str,
    trials: tuple[pd.DataFrame | None, str] = (None, "no trials table given"),
    mi: tuple[pd.DataFrame | None, str] = (None, "no MI check table given"),
) -> list[Path]:
    """Render every table, figure and page under ``out``; return the written paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import seaborn as sns

    out = Path(out)
    fig_dir, plot_dir = out / "figures", out / "plots"
    written: list[Path] = []
    notes: list[str] = []
    trials_df, trials_reason = trials
    mi_df, mi_reason = mi

    lb = leaderboard(results)
    written.append(
        atomic_write_text(out / "leaderboard.csv", lb.to_csv(index=False, float_format="%.6g"))
    )
    written.append(
        atomic_write_text(out / "leaderboard.md", "# Leaderboard\n\n" + leaderboard_markdown(lb))
    )
    batch_curve = sweep_curve(results, ["batch"], "batch_size")
    neg_curve = sweep_curve(results, ["negatives", "queue"], "negatives")
    written.append(
        atomic_write_text(
            plot_dir / "acc_vs_batch.csv", batch_curve.to_csv(index=False, float_format="%.6g")
        )
    )
    written.append(
        atomic_write_text(
            plot_dir / "acc_vs_negatives.csv", neg_curve.to_csv(index=False, float_format="%.6g")
        )
    )
    written.append(atomic_write_json(out / "metrics.json", headline_metrics(results, lb)))

    objectives = set(results["objective"])
    if trials_df is not None and not trials_df.empty:
        objectives |= set(trials_df["objective"])
    palette = _palette(sorted(objectives))
    pngs: dict[str, Path] = {}
    rc = {"svg.hashsalt": "benchmark-report", "figure.max_open_warning": 0}
    with plt.rc_context(rc), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        makers = {
            "acc_vs_batch": lambda: figure_acc_vs_batch(results, palette),
            "acc_vs_negatives": lambda: figure_acc_vs_negatives(results, palette),
            "method_objective_heatmap": lambda: figure_heatmap(lb),
            "sensitivity": lambda: figure_sensitivity(trials_df, trials_reason, palette),
            "mi_check": lambda: figure_mi(mi_df, mi_reason),
        }
        for name, make in makers.items():
            paths = _save(make(), fig_dir / name)
            pngs[name] = paths[0]
            written += paths

    extra: list[tuple[str, pd.DataFrame]] = []
    if trials_df is not None and not trials_df.empty:
        done = trials_df[trials_df["state"] == "COMPLETE"]
        counts = trials_df.groupby(["method", "objective", "state"]).size().unstack(fill_value=0)
        if not done.empty:
            best = done.loc[done.groupby(["method", "objective"])["val_acc"].idxmax()]
            best = best[["method", "objective", "trial", "temperature", "margin", "val_acc"]]
            best = best.merge(counts.reset_index(), on=["method", "objective"], how="left")
            extra.append(("Best Optuna trial per method and objective", best))
    else:
        notes.append(f"Sensitivity figure is a placeholder: {trials_reason}.")
    if mi_df is not None and not mi_df.empty:
        mi_table = mi_df.groupby(["bound", "batch_size", "true_mi"], as_index=False)[
            "estimate"
        ].mean()
        mi_table["log_N"] = np.log(mi_table["batch_size"].astype(float))
        extra.append(("MI check: mean estimate per bound (nats)", mi_table.round(4)))
    else:
        notes.append(f"MI figure is a placeholder: {mi_reason}.")
    written.append(
        atomic_write_text(out / "index.html", index_html(results, lb, pngs, out, extra, notes))
    )
    return written


def update_readme(readme: Path | str, markdown: str) -> bool:
    """Replace the text between the leaderboard markers; False (untouched) if they are absent."""
    readme = Path(readme)
    if not readme.is_file():
        raise UserError(f"{readme}: README not found (given with --readme)")
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        return False
    new = pattern.sub(lambda _: f"{README_START}\n{markdown.rstrip()}\n{README_END}", text, count=1)
    if new != text:
        atomic_write_text(readme, new)
    return True


def log_to_mlflow(suites: Sequence[str], paths: list[Path]) -> bool:
    """Hand the outputs to ``benchmark.tracking`` (all MLflow calls live there); False if absent."""
    try:
        from benchmark import tracking

        log = tracking.log_report_artifacts
    except (ImportError, AttributeError) as err:
        print(
            f"report: MLflow logging skipped (benchmark.tracking unavailable: {err})",
            file=sys.stderr,
        )
        return False
    for suite in suites:
        log(suite, paths)
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="reports/results.csv", help="tidy results table")
    parser.add_argument(
        "--trials",
        default="reports/trials.csv",
        help="Optuna trials (optional; placeholder figure if absent)",
    )
    parser.add_argument(
        "--mi",
        default="reports/mi_check.csv",
        help="MI bound check (optional; placeholder figure if absent)",
    )
    parser.add_argument("--out", default="reports", help="output directory (default: reports)")
    parser.add_argument(
        "--readme",
        default=None,
        metavar="PATH",
        help=f"also write the leaderboard into PATH between {README_START} and {README_END}",
    )
    parser.add_argument(
        "--no-mlflow", action="store_true", help="do not log the outputs to the suite's MLflow run"
    )


def run(args: argparse.Namespace) -> int:
    results = load_results(args.results)
    trials = load_trials(args.trials)
    mi = load_mi(args.mi)
    if args.readme and not Path(args.readme).is_file():
        raise UserError(f"{args.readme}: README not found (given with --readme)")
    written = build_report(results, args.out, trials=trials, mi=mi)
    if args.readme:
        if update_readme(args.readme, leaderboard_markdown(leaderboard(results))):
            print(f"report: leaderboard written into {args.readme}")
        else:
            print(
                f"report: {args.readme} has no {README_START} ... {README_END} markers; left untouched",
                file=sys.stderr,
            )
    if not args.no_mlflow:
        log_to_mlflow(sorted(results["suite"].unique()), written)
    print(f"report: wrote {len(written)} files under {args.out}")
    return 0
