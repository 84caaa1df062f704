"""Published trends, re-measured on these results: one verdict per trend and scope.

Effects are in percentage points of linear-probe test accuracy (slopes: points per
doubling). The verdict comes from the effect's 95% interval (:func:`stats.trend_verdict`):
*reproduced* when it excludes 0 on the side the paper claims; *not reproduced* when it
excludes 0 on the other side or lies entirely inside the practical-equivalence band
+/-0.5 points; *inconclusive* otherwise, and whenever the data the trend needs are missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from benchmark.report import stats
from benchmark.report.tables import TESTBED, headline_rows, prefer_tuned, seed_values

TREND_COLUMNS = ["trend", "source", "measured_effect", "ci_low", "ci_high", "verdict", "detail"]
MARGIN_LOSSES = ("triplet", "contrastive", "lifted")
LOGISTIC_LOSSES = ("nce",)
SOURCES = {
    "ntxent": "Chen et al. 2020 (SimCLR), Table 4",
    "tuning": "Musgrave et al. 2020 (A Metric Learning Reality Check)",
    "queue": "He et al. 2020 (MoCo), Fig. 3; Wu et al. 2018 (NPID), Table 1",
    "temperature": "Chen et al. 2020 (SimCLR), Table 5",
    "batch": "Chen et al. 2020 (SimCLR), Appendix B.1 and Fig. 9",
}
CLAIMS = {
    "ntxent_margin": "NT-Xent beats the margin losses",
    "ntxent_logistic": "NT-Xent beats the logistic loss nce",
    "tuning": "Gaps between objectives shrink after equal tuning",
    "queue": "Accuracy rises with the number of negatives K",
    "temperature": "Inverted U in temperature",
    "batch": "NT-Xent accuracy rises with batch size",
}


def _row(claim: str, source: str, est: stats.Estimate, detail: str, direction: int = 1) -> dict:
    return {
        "trend": claim,
        "source": source,
        "measured_effect": est.mean,
        "ci_low": est.low,
        "ci_high": est.high,
        "verdict": stats.trend_verdict(est.low, est.high, direction),
        "detail": detail,
    }


def _missing(claim: str, source: str, detail: str) -> dict:
    return _row(claim, source, stats.NAN_ESTIMATE, detail)


def _points(values: dict[int, float]) -> dict[int, float]:
    return {s: 100 * v for s, v in values.items()}


def _scope(method: str, dataset: str, encoder: str) -> str:
    return f"{method} on {dataset}/{encoder}"


def _fmt(est: stats.Estimate) -> str:
    if not est.defined:
        return f"{est.mean:+.2f} (no interval)"
    return f"{est.mean:+.2f} [{est.low:+.2f}, {est.high:+.2f}]"


def _groups(rows: pd.DataFrame, by: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    yield from rows.groupby(by, sort=True, dropna=False) if not rows.empty else []


def ntxent_trends(results: pd.DataFrame) -> list[dict]:
    """(a) ntxent minus the best margin loss, and minus nce, per method and testbed."""
    head = prefer_tuned(headline_rows(results))
    src = SOURCES["ntxent"]
    out = []
    for (method, dataset, encoder), g in _groups(head, ["method", *TESTBED]):
        objectives = {o: _points(seed_values(rows)) for o, rows in g.groupby("objective")}
        ntxent = objectives.get("ntxent")
        if not ntxent:
            continue
        scope = _scope(method, dataset, encoder)
        for claim, losses in [
            ("ntxent_margin", MARGIN_LOSSES),
            ("ntxent_logistic", LOGISTIC_LOSSES),
        ]:
            present = {o: objectives[o] for o in losses if objectives.get(o)}
            if not present:
                continue
            best = max(present, key=lambda o: np.mean(list(present[o].values())))
            est = stats.paired_difference(ntxent, present[best])
            which = f" (best mean of {', '.join(present)})" if len(present) > 1 else ""
            detail = f"{scope}: ntxent - {best}{which}, {est.n} paired seeds"
            out.append(_row(f"{CLAIMS[claim]} ({scope})", src, est, detail))
    if not out:
        detail = "no headline cells with ntxent and a margin (triplet, contrastive, lifted) or "
        detail += "logistic (nce) loss on the same method and testbed"
        out.append(_missing(CLAIMS["ntxent_margin"], src, detail))
    return out


def _spread(block: np.ndarray) -> float:
    """block: seeds x objectives x (untuned, tuned) -> untuned spread - tuned spread of means."""
    means = block.mean(axis=0)
    spread = means.max(axis=0) - means.min(axis=0)
    return float(spread[0] - spread[1])


def tuning_trends(results: pd.DataFrame) -> list[dict]:
    """(b) spread of objective means untuned minus tuned, bootstrap over seeds."""
    head = headline_rows(results)
    src, claim = SOURCES["tuning"], CLAIMS["tuning"]
    out = []
    for (method, dataset, encoder), g in _groups(head, ["method", *TESTBED]):
        values = {
            (o, t): _points(seed_values(rows)) for (o, t), rows in g.groupby(["objective", "tuned"])
        }
        objectives = sorted(
            o for o in {o for o, _ in values} if values.get((o, True)) and values.get((o, False))
        )
        if len(objectives) < 2:
            continue
        seeds = sorted(
            set.intersection(*(set(values[(o, t)]) for o in objectives for t in (False, True)))
        )
        scope = _scope(method, dataset, encoder)
        if not seeds:
            out.append(_missing(f"{claim} ({scope})", src, f"{scope}: no seed shared by all cells"))
            continue
        block = np.array(
            [[[values[(o, t)][s] for t in (False, True)] for o in objectives] for s in seeds]
        )
        est = stats.bootstrap_interval(block, _spread)
        means = block.mean(axis=0)
        untuned, tuned = (float(np.ptp(means[:, i])) for i in (0, 1))
        detail = (
            f"{scope}: spread (max - min of means) over {len(objectives)} objectives "
            f"untuned {untuned:.2f} vs tuned {tuned:.2f} pts; percentile bootstrap over "
            f"{len(seeds)} seeds ({math.comb(2 * len(seeds) - 1, len(seeds))} distinct resamples)"
        )
        out.append(_row(f"{claim} ({scope})", src, est, detail))
    if not out:
        detail = "no headline cells with tuned and untuned rows for two or more objectives"
        out.append(_missing(claim, src, detail))
    return out


def _slope_trends(rows: pd.DataFrame, x: str, claim: str, src: str, what: str) -> list[dict]:
    out = []
    rows = prefer_tuned(rows[~rows["diverged"] & rows[x].notna() & (rows[x].fillna(0) > 0)])
    for (method, objective, dataset, encoder), g in _groups(
        rows, ["method", "objective", *TESTBED]
    ):
        scope = _scope(method if objective == "none" else f"{method}/{objective}", dataset, encoder)
        levels = sorted(int(v) for v in g[x].unique())
        est = stats.slope_interval(np.log2(g[x].astype(float)), 100 * g["linear_acc"])
        detail = (
            f"{scope}: slope of linear acc (pts) on log2({what}) over {levels}, "
            f"{est.n} runs (linregress, t interval with n - 2 df)"
        )
        if len(levels) < 2:
            detail = f"{scope}: only one {what} value ({levels[0]})"
        out.append(_row(f"{claim} ({scope})", src, est, detail))
    return out


def queue_trends(results: pd.DataFrame) -> list[dict]:
    """(c) slope of accuracy on log2(K) over the ``queue`` sweep, per method."""
    rows = results[results["sweep"] == "queue"]
    out = _slope_trends(rows, "negatives", CLAIMS["queue"], SOURCES["queue"], "negatives")
    return out or [_missing(CLAIMS["queue"], SOURCES["queue"], "no queue sweep in these results")]


def batch_trends(results: pd.DataFrame) -> list[dict]:
    """(e) slope of ntxent's accuracy on log2(batch size) over the ``batch`` sweep."""
    rows = results[(results["sweep"] == "batch") & (results["objective"] == "ntxent")]
    out = _slope_trends(rows, "batch_size", CLAIMS["batch"], SOURCES["batch"], "batch size")
    detail = "no batch sweep with ntxent in these results"
    return out or [_missing(CLAIMS["batch"], SOURCES["batch"], detail)]


def temperature_trends(results: pd.DataFrame) -> list[dict]:
    """(d) the best interior temperature against both ends, paired by seed."""
    src, claim = SOURCES["temperature"], CLAIMS["temperature"]
    rows = prefer_tuned(
        results[(results["sweep"] == "temperature") & results["temperature"].notna()]
    )
    out = []
    for (method, objective, dataset, encoder), g in _groups(
        rows, ["method", "objective", *TESTBED]
    ):
        scope = _scope(f"{method}/{objective}", dataset, encoder)
        by_t = {float(t): _points(seed_values(r)) for t, r in g.groupby("temperature")}
        by_t = {t: v for t, v in by_t.items() if v}
        temps = sorted(by_t)
        if len(temps) < 3:
            detail = f"{scope}: {len(temps)} temperature(s); an inverted U needs three or more"
            out.append(_missing(f"{claim} ({scope})", src, detail))
            continue
        interior = temps[1:-1]
        best = max(interior, key=lambda t: np.mean(list(by_t[t].values())))
        ends = {t: stats.paired_difference(by_t[best], by_t[t]) for t in (temps[0], temps[-1])}
        verdicts = {stats.trend_verdict(e.low, e.high) for e in ends.values()}
        low_end = min(ends.values(), key=lambda e: e.mean if math.isfinite(e.mean) else -math.inf)
        row = _row(f"{claim} ({scope})", src, low_end, "")
        if verdicts == {stats.REPRODUCED}:
            row["verdict"] = stats.REPRODUCED
        elif stats.NOT_REPRODUCED in verdicts:
            row["verdict"] = stats.NOT_REPRODUCED
        else:
            row["verdict"] = stats.INCONCLUSIVE
        row["detail"] = (
            f"{scope}: best interior temperature {best:g} minus "
            + "; minus ".join(f"{t:g}: {_fmt(e)}" for t, e in ends.items())
            + " (the smaller difference is shown; reproduced only when both are)"
        )
        out.append(row)
    return out or [_missing(claim, src, "no temperature sweep in these results")]


def published_trends(results: pd.DataFrame) -> pd.DataFrame:
    """Every trend's rows, in the order (a)-(e) of the report."""
    rows = [
        *ntxent_trends(results),
        *tuning_trends(results),
        *queue_trends(results),
        *temperature_trends(results),
        *batch_trends(results),
    ]
    return pd.DataFrame(rows, columns=TREND_COLUMNS)
