"""Does the grid measure? One row per check of the default grid's targets (issue 14):

* ``headroom`` (per testbed): the best self-supervised entry minus the untrained encoder,
  in points; met at >= 10 points with non-overlapping 95% intervals;
* ``precision`` (per testbed): the widest 95% half-width of a self-supervised headline
  entry; met at <= 1.0 point;
* ``tuning spread`` (per tuned pair): the range of its completed trials' validation
  accuracy; met above 2 points (below it, tuning picks among ties);
* ``tuned vs untuned`` (per entry with both): tuned minus untuned, paired by seed; met when
  the interval reaches 0 or above (tuning did not make it worse).

Every figure is in points of accuracy; ``met`` is yes / no, or "—" when undefined.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.report import stats
from benchmark.report.tables import (
    KEY,
    METHOD_ROLE,
    TESTBED,
    headline_rows,
    tuning_gain,
)

QUALITY_COLUMNS = ["check", "scope", "measured", "target", "met"]
HEADROOM_POINTS = 10.0
HALF_WIDTH_POINTS = 1.0
SPREAD_POINTS = 2.0


def _name(method: str, objective: str) -> str:
    return method if objective == "none" else f"{method}/{objective}"


def _pm(mean: float, half: float) -> str:
    return f"{100 * mean:.1f} ± {100 * half:.1f}" if math.isfinite(half) else f"{100 * mean:.1f}"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "no")


def headroom_checks(lb: pd.DataFrame) -> list[dict]:
    out = []
    for (dataset, encoder), g in lb.groupby(TESTBED, sort=True):
        methods = g[(g["role"] == METHOD_ROLE) & g["linear_acc"].notna()]
        floor = g[g["method"] == "random"]
        if methods.empty or floor.empty:
            continue
        best = methods.loc[methods["linear_acc"].idxmax()]
        base = floor.iloc[0]
        gap = 100 * (best["linear_acc"] - base["linear_acc"])
        apart = (best["linear_acc"] - best["linear_acc_ci95"]) > (
            base["linear_acc"] + np.nan_to_num(base["linear_acc_ci95"])
        )
        out.append(
            {
                "check": "headroom",
                "scope": f"{dataset} / {encoder}",
                "measured": f"{gap:+.1f} pts: {_name(best['method'], best['objective'])} "
                f"{_pm(best['linear_acc'], best['linear_acc_ci95'])} vs untrained "
                f"{_pm(base['linear_acc'], base['linear_acc_ci95'])}"
                + ("" if apart else " (intervals overlap)"),
                "target": f">= {HEADROOM_POINTS:g} pts, intervals apart",
                "met": _met(bool(gap >= HEADROOM_POINTS and apart)),
            }
        )
    return out


def precision_checks(lb: pd.DataFrame) -> list[dict]:
    out = []
    for (dataset, encoder), g in lb.groupby(TESTBED, sort=True):
        methods = g[(g["role"] == METHOD_ROLE) & g["linear_acc_ci95"].notna()]
        if methods.empty:
            continue
        widest = methods.loc[methods["linear_acc_ci95"].idxmax()]
        half = 100 * methods["linear_acc_ci95"]
        seeds = sorted(set(methods["n_seeds"].astype(int)))
        out.append(
            {
                "check": "precision",
                "scope": f"{dataset} / {encoder}",
                "measured": f"widest ±{half.max():.2f} pts "
                f"({_name(widest['method'], widest['objective'])}), median ±{half.median():.2f}, "
                f"{int((half <= HALF_WIDTH_POINTS).sum())} of {len(methods)} entries within, "
                f"{'/'.join(map(str, seeds))} seeds" + _seeds_needed(methods),
                "target": f"<= {HALF_WIDTH_POINTS:g} pt on every headline entry",
                "met": _met(bool(half.max() <= HALF_WIDTH_POINTS)),
            }
        )
    return out


def _seeds_needed(entries: pd.DataFrame) -> str:
    """What the target would cost: the seeds each entry needs for a half-width of
    HALF_WIDTH_POINTS at its measured spread (sd = half-width * sqrt(n) / t(n - 1)), and
    the extra cells and training CPU-minutes (train_seconds per cell) that adds up to."""
    cells, seconds, most = 0, 0.0, 0
    for _, e in entries.iterrows():
        n = int(e["n_seeds"])
        if n < 2:
            continue
        sd = 100 * e["linear_acc_ci95"] * math.sqrt(n) / stats.t_quantile(n - 1)
        need = stats.seeds_for_halfwidth(sd, HALF_WIDTH_POINTS)
        if need is None:
            return f"; ±{HALF_WIDTH_POINTS:g} pt needs over 1000 seeds for " + _name(
                e["method"], e["objective"]
            )
        most = max(most, need)
        cells += max(0, need - n)
        seconds += max(0, need - n) * float(e["train_seconds"])
    if not cells:
        return ""
    return (
        f"; ±{HALF_WIDTH_POINTS:g} pt everywhere needs up to {most} seeds: "
        f"+{cells} cells, about {seconds / 60:.0f} more training CPU-minutes"
    )


def spread_checks(trials: pd.DataFrame | None) -> list[dict]:
    if trials is None or trials.empty:
        return []
    out = []
    done = trials[(trials["state"] == "COMPLETE") & trials["val_acc"].notna()]
    by = [c for c in ("method", "objective", *TESTBED) if c in done.columns]
    for key, g in done.groupby(by, sort=True):
        spread = 100 * (g["val_acc"].max() - g["val_acc"].min())
        scope = _name(key[0], key[1]) + (f" on {key[2]} / {key[3]}" if len(key) == 4 else "")
        out.append(
            {
                "check": "tuning spread",
                "scope": scope,
                "measured": f"{spread:.1f} pts over {len(g)} completed trials "
                f"({100 * g['val_acc'].min():.1f} to {100 * g['val_acc'].max():.1f})",
                "target": f"> {SPREAD_POINTS:g} pts",
                "met": _met(bool(spread > SPREAD_POINTS)),
            }
        )
    return out


def tuning_gain_checks(results: pd.DataFrame) -> list[dict]:
    out = []
    head = headline_rows(results)
    for (method, objective, dataset, encoder), g in head.groupby(KEY, sort=True):
        tuned, untuned = g[g["tuned"]], g[~g["tuned"]]
        if tuned.empty or untuned.empty:
            continue
        d = tuning_gain(tuned, untuned)
        ok = None if not d.defined else bool(d.high >= 0)
        out.append(
            {
                "check": "tuned vs untuned",
                "scope": f"{_name(method, objective)} on {dataset} / {encoder}",
                "measured": f"{100 * d.mean:+.2f} pts [{100 * d.low:+.2f}, {100 * d.high:+.2f}], "
                f"{d.n} paired seeds",
                "target": "interval reaches 0 or above",
                "met": _met(ok),
            }
        )
    return out


def measurement_checks(
    results: pd.DataFrame, lb: pd.DataFrame, trials: pd.DataFrame | None
) -> pd.DataFrame:
    rows = []
    if not lb.empty:
        rows += headroom_checks(lb) + precision_checks(lb)
    rows += spread_checks(trials) + tuning_gain_checks(results)
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)
