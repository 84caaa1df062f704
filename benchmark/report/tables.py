"""Tidy results -> the leaderboard (one row per entry), sweep curves and flat metrics.

An *entry* is a (method, objective) on a *testbed* (dataset, encoder). Its headline cells
are its ``sweep == "method"`` rows; if those hold more than one (batch_size, negatives)
configuration, the one with the most seeds (then the largest batch, then the most
negatives) is used, and of those the tuned rows when there are any. Diverged seeds are
left out of means and intervals and counted in their own column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.report import stats

KEY = ["method", "objective", "dataset", "encoder"]
TESTBED = ["dataset", "encoder"]
METHOD_ROLE = "method"
# reference rows and their honest labels: on csbm DGI beats the supervised GCN
REFERENCE_ROLES = {"supervised": "supervised reference", "random": "untrained encoder"}
UNTRAINED = REFERENCE_ROLES["random"]
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


def objective_order(names: Sequence[str]) -> list[str]:
    names = set(names)
    known = [o for o in OBJECTIVE_ORDER if o in names]
    return known + sorted(names - set(known))


def _eq(series: pd.Series, value: Any) -> pd.Series:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return series.isna()
    return (series == value).fillna(False).astype(bool)


def _median(series: pd.Series) -> float:
    s = series.dropna()
    return float(s.median()) if len(s) else math.nan


def prefer_tuned(rows: pd.DataFrame, by: Sequence[str] = (*KEY, "sweep")) -> pd.DataFrame:
    """Per group of ``by``: its tuned rows when it has any, else its untuned rows."""
    if rows.empty:
        return rows
    keep = rows.groupby(list(by), dropna=False)["tuned"].transform("max")
    return rows[rows["tuned"] == keep]


def seed_values(rows: pd.DataFrame, column: str = "linear_acc") -> dict[int, float]:
    """seed -> mean of ``column`` over the seed's non-diverged finite rows."""
    ok = rows[~rows["diverged"] & np.isfinite(rows[column].astype(float))]
    return {int(s): float(v) for s, v in ok.groupby("seed")[column].mean().items()}


def headline_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows (tuned and untuned) of each entry's headline configuration."""
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


def _summary(rows: pd.DataFrame, column: str) -> tuple[float, float, int]:
    ok = rows.loc[~rows["diverged"], column].to_numpy(dtype=float)
    ok = ok[np.isfinite(ok)]
    if len(ok) == 0:
        return math.nan, math.nan, 0
    return float(ok.mean()), stats.ci95_halfwidth(ok), len(ok)


def tuning_gain(tuned_rows: pd.DataFrame, untuned_rows: pd.DataFrame) -> stats.Estimate:
    """Tuned minus untuned linear accuracy, paired by seed (the seeds both have run): the
    leaderboard's ``tuning_gain`` and the quality check's interval."""
    return stats.paired_difference(seed_values(tuned_rows), seed_values(untuned_rows))


def _entry(key: tuple, g: pd.DataFrame) -> dict[str, Any]:
    method, objective, dataset, encoder = key
    tuned_rows, untuned_rows = g[g["tuned"]], g[~g["tuned"]]
    main = tuned_rows if len(tuned_rows) else untuned_rows
    lin, lin_ci, n = _summary(main, "linear_acc")
    knn, knn_ci, _ = _summary(main, "knn_acc")
    un, un_ci, _ = (
        _summary(untuned_rows, "linear_acc") if len(tuned_rows) else (math.nan, math.nan, 0)
    )
    negatives = main["negatives"].dropna()
    return {
        "method": method,
        "objective": objective,
        "dataset": dataset,
        "encoder": encoder,
        "role": REFERENCE_ROLES.get(method, METHOD_ROLE),
        "tuned": bool(len(tuned_rows)),
        "linear_acc": lin,
        "linear_acc_ci95": lin_ci,
        "knn_acc": knn,
        "knn_acc_ci95": knn_ci,
        "n_seeds": int(main["seed"].nunique()),
        "n_ok": n,
        "n_diverged": int(main["diverged"].sum()),
        "temperature": _median(main["temperature"]),
        "margin": _median(main["margin"]),
        "untuned_linear_acc": un,
        "untuned_linear_acc_ci95": un_ci,
        "tuning_gain": (
            tuning_gain(tuned_rows, untuned_rows).mean
            if len(tuned_rows) and len(untuned_rows)
            else math.nan
        ),
        "negatives": int(negatives.iloc[0]) if len(negatives) else pd.NA,
        "batch_size": int(main["batch_size"].iloc[0]),
        "train_seconds": float(main["train_seconds"].mean()),
        "_seeds": seed_values(main),
    }


def _compare_within_testbeds(lb: pd.DataFrame) -> pd.DataFrame:
    """Add the paired difference to the testbed's best self-supervised entry and the tie mark."""
    cols = ["diff_to_best", "diff_ci_low", "diff_ci_high", "diff_p_value", "n_paired"]
    for col in cols:
        lb[col] = math.nan
    lb["tied_with_best"] = pd.array([pd.NA] * len(lb), dtype="boolean")
    lb["is_best"] = pd.array([pd.NA] * len(lb), dtype="boolean")
    methods = lb[lb["role"] == METHOD_ROLE]
    for _, g in methods.groupby(TESTBED, sort=False):
        for c in stats.mark_tied({i: lb.at[i, "_seeds"] for i in g.index}):
            i, d = c.entry, c.diff
            lb.loc[i, cols] = [d.mean, d.low, d.high, d.p_value, d.n]
            lb.at[i, "tied_with_best"] = c.tied
            lb.at[i, "is_best"] = c.is_best
    lb["n_paired"] = lb["n_paired"].astype("Int64")
    return lb


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per entry, per testbed sorted by linear accuracy (references interleaved).

    Self-supervised rows carry their paired difference to the testbed's best entry
    (``diff_*``, fractions), whether they are tied with it, and ``headroom``: their mean
    minus the untrained encoder's mean on the same testbed.
    """
    head = headline_rows(results)
    rows = [_entry(key, g) for key, g in head.groupby(KEY, sort=True, dropna=False)]
    lb = pd.DataFrame(rows)
    if lb.empty:
        return lb
    for method, col in [("supervised", "supervised_linear_acc"), ("random", "random_linear_acc")]:
        ref = lb[lb["method"] == method].groupby(TESTBED)["linear_acc"].max()
        lb[col] = [
            ref.get((d, e), math.nan) for d, e in zip(lb["dataset"], lb["encoder"], strict=True)
        ]
    lb["headroom"] = np.where(
        lb["role"] == METHOD_ROLE, lb["linear_acc"] - lb["random_linear_acc"], math.nan
    )
    lb = lb.sort_values(
        [*TESTBED, "linear_acc", "method", "objective"],
        ascending=[True, True, False, True, True],
        na_position="last",
        kind="mergesort",
    ).reset_index(drop=True)
    lb = _compare_within_testbeds(lb).drop(columns="_seeds")
    ranks = []
    counters: dict[tuple[str, str], int] = {}
    for d, e, role in zip(lb["dataset"], lb["encoder"], lb["role"], strict=True):
        if role != METHOD_ROLE:
            ranks.append(pd.NA)
            continue
        counters[(d, e)] = counters.get((d, e), 0) + 1
        ranks.append(counters[(d, e)])
    lb.insert(0, "rank", pd.array(ranks, dtype="Int64"))
    return lb


def testbeds(lb: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """((dataset, encoder), its leaderboard rows), in the leaderboard's order."""
    return list(lb.groupby(TESTBED, sort=True)) if not lb.empty else []


CURVE_COLUMNS = ["linear_acc", "linear_acc_ci_low", "linear_acc_ci_high", "knn_acc", "n_seeds"]


def sweep_curve(results: pd.DataFrame, sweeps: Sequence[str], x: str) -> pd.DataFrame:
    """Tidy per-point means of one sweep (tuned cells preferred), for plots and DVC."""
    rows = results[results["sweep"].isin(sweeps) & ~results["diverged"]]
    rows = prefer_tuned(rows[rows[x].notna()])
    group_cols = ["sweep", *KEY, "tuned", x] + (["batch_size"] if x != "batch_size" else [])
    cols = ["sweep", *KEY, "series", "tuned", x] + group_cols[7:] + CURVE_COLUMNS
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for key, g in rows.groupby(group_cols, sort=True, dropna=False):
        rec = dict(zip(group_cols, key, strict=True))
        low, high = stats.t_interval(g["linear_acc"])
        rec |= {
            "series": f"{rec['method']}/{rec['objective']}",
            "linear_acc": float(g["linear_acc"].mean()),
            "linear_acc_ci_low": low,
            "linear_acc_ci_high": high,
            "knn_acc": float(g["knn_acc"].mean()),
            "n_seeds": int(g["seed"].nunique()),
        }
        out.append(rec)
    return pd.DataFrame(out)[cols]


def headline_metrics(results: pd.DataFrame, lb: pd.DataFrame) -> dict[str, Any]:
    """Flat keys for `dvc metrics diff`: ``<method>/<objective>/<dataset>/<encoder>/linear_acc``."""
    cell = [*KEY, "batch_size", "negatives", "tuned", "sweep"]
    metrics: dict[str, Any] = {
        "results_rows": len(results),
        "cells": int(results.groupby(cell, dropna=False).ngroups),
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
