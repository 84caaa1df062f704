"""The regression gate: results.csv against reports/baseline.json (the stage, `python -m
benchmark check`, is ``benchmark/stages/check.py``).

Baseline (format 2, ``--update-baseline``): per cell and metric ``{"seeds": {"0": 0.91, ...},
"mean", "std", "n"}`` over seeds not diverged nor non-finite; diverged count, code_digest, sources.

Each cell and metric gets a one-sided t test of a drop (H1: current mean < baseline mean), paired
over the seeds on both sides when >= 2 match, else Welch (Welch-Satterthwaite df) when both sides
have >= 2 values, with the 95% t interval of the drop. Three seeds give a variance on 2 df, too
noisy to pass a suite-wide threshold short of a ~50-standard-error drop (see gate_perf), so
``--variance moderated`` (default) shrinks it as limma does (Smyth 2004): towards a prior (d0,
s0^2; 2 s0^2 for a paired difference) fitted by moments to the log variances of the baseline's
cells of the same dataset and metric, s^2 = max((d0 s0^2 + df s_cell^2) / (d0 + df), s_cell^2)
on d0 + df df (the max keeps a cell noisier than its dataset at its own); ``cell``: plain t. No
spread (identical re-runs): a drop of 0 has p = 1, a constant drop p = 0. One value on a side:
nothing borrowed, only a drop >= SINGLE_DROP = 10 points fails (<= 1% false alarms, gate_perf).

All p-values (2 tests per cell) are adjusted together, ``--correction bh`` (Benjamini-Hochberg,
default) or ``holm``: with every null true (nothing changed) BH's false-discovery rate is the
suite-wide false-alarm rate, held at alpha as with Holm, and a change that moves many cells (an
objective's or the shared core's edit) keeps far more power than under Holm (first threshold
alpha / (2 x cells)); the price is that ~alpha of a failing suite's flags may be noise (see each
flag's source note). BH needs independent or positively dependent tests; Holm holds always.

Statuses: DROP (a metric with adjusted p < alpha and drop >= ``--min-drop``, or the single-value
rule), MISSING (no finished seed), DIVERGED (a current seed diverged), new, improved (a gain by
the same rule; gains are their own family), ok. DROP, MISSING, DIVERGED fail (exit 1).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, polygamma, stdtr, stdtrit
from scipy.stats import false_discovery_control

from benchmark import sources
from benchmark.errors import UserError

CELL = ["method", "objective", "dataset", "encoder", "batch_size", "negatives", "tuned", "sweep"]
METRICS = ["linear_acc", "knn_acc"]
FORMAT_VERSION = 2
FAILING = {"DROP", "MISSING", "DIVERGED"}
STATUSES = ["ok", "improved", "new", "DROP", "MISSING", "DIVERGED"]
CORRECTIONS = ("bh", "holm")
VARIANCES = ("moderated", "cell")
SINGLE_DROP = 0.10  # drop that fails a cell with a single value on a side (see docstring)
EPS = 1e-9  # standard errors below this are "no spread"


def _py(value: Any) -> Any:
    """pandas/numpy scalar -> plain JSON-able Python (NA -> None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _key(values: Any) -> tuple:
    m, o, d, e, batch, neg, tuned, sweep = (_py(v) for v in values)
    ints = tuple(None if v is None else int(v) for v in (batch, neg))
    return (str(m), str(o), str(d), str(e), *ints, bool(tuned), str(sweep))


def _sort_key(key: tuple) -> tuple:  # None (no negatives) sorts first
    return tuple((v is None, -1 if v is None else v) for v in key)


def variance(x: list[float]) -> float:
    """Sample variance (statistics.variance is exact but ~20x slower; the gate is simulated)."""
    m = fmean(x)
    return sum((v - m) ** 2 for v in x) / (len(x) - 1)


def metric_entry(values: dict[str, float]) -> dict[str, Any]:
    """seed -> value (finite, not diverged) -> {seeds, mean, std, n}."""
    seeds = {str(s): float(v) for s, v in values.items()}
    vals, n = list(seeds.values()), len(seeds)
    std = math.sqrt(variance(vals)) if n > 1 else (0.0 if n else None)
    return {"seeds": seeds, "mean": fmean(vals) if n else None, "std": std, "n": n}


def cell_stats(results: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    """cell key -> {linear_acc: metric_entry, knn_acc: ..., diverged, code_digest (the cell's
    one value, or the sorted list; None when unknown, e.g. a table without the column)}."""
    out = {}
    for values, g in results.groupby(CELL, dropna=False, sort=True):
        bad = g["diverged"].to_numpy(bool) | ~np.isfinite(g[METRICS].to_numpy(float)).all(axis=1)
        ok, seeds = g[~bad], [str(int(s)) for s in g[~bad]["seed"]]
        entry = {m: metric_entry(dict(zip(seeds, ok[m], strict=True))) for m in METRICS}
        found = sorted({str(v) for v in g.get("code_digest", []) if _py(v) is not None})
        digest = None if not found else found[0] if len(found) == 1 else found
        out[_key(values)] = entry | {"diverged": int(bad.sum()), "code_digest": digest}
    return out


def _cell_sources(method: str, objective: str) -> dict[str, str] | None:
    try:
        return sources.cell_files(method, objective)
    except OSError:  # a source file is gone (e.g. results of a removed method)
        return None


def baseline_from_results(results: pd.DataFrame) -> dict[str, Any]:
    cells = [
        {**dict(zip(CELL, key, strict=True)), **st, "sources": _cell_sources(*key[:2])}
        for key, st in sorted(cell_stats(results).items(), key=lambda kv: _sort_key(kv[0]))
    ]
    suites = sorted(results["suite"].unique())
    suite = suites[0] if len(suites) == 1 else suites
    return {"version": FORMAT_VERSION, "suite": suite, "metrics": METRICS, "cells": cells}


def load_baseline(path: Path) -> dict[str, Any]:
    """Read a version-2 baseline; ``_cells`` maps cell key -> cell."""
    regen = "(re)create it with `python -m benchmark check --update-baseline`"
    if not path.is_file():
        raise UserError(f"{path}: baseline not found; {regen}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); {regen}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UserError(f"{path}: expected an object with a 'cells' list; {regen}")
    if (version := data.get("version")) != FORMAT_VERSION:
        why = f"format version {version!r} has no per-seed values (need {FORMAT_VERSION})"
        raise UserError(f"{path}: baseline {why}; {regen}")
    data["_cells"] = {}
    for i, cell in enumerate(data["cells"]):
        try:
            key = _key([cell[k] for k in CELL])
            cell |= {m: metric_entry(cell[m]["seeds"]) for m in METRICS}
        except (KeyError, TypeError, ValueError, AttributeError):
            what = f"{', '.join(CELL)} and {{seeds: {{seed: value}}}} per metric"
            raise UserError(f"{path}: cells[{i}] needs {what}; {regen}") from None
        data["_cells"][key] = cell
    return data


def drop_test(base: dict, cur: dict, prior: tuple[float, float] = (0.0, 0.0)) -> dict[str, Any]:
    """One-sided test of H1: mean(cur) < mean(base), seed -> value on each side; prior = (d0,
    s0^2) shrinks the variances (d0 = 0: plain t). Returns test (paired, welch, single; None if
    a side is empty), drop (base - cur), se, df, ci (95%), p_drop and p_gain."""
    (d0, s0), common = prior, sorted(set(base) & set(cur))
    b, c = list(base.values()), list(cur.values())
    out = dict(test=None, pairs=len(common), n_base=len(b), n_cur=len(c), drop=None, se=None,
               df=None, ci=None, p_drop=None, p_gain=None)  # fmt: skip
    if len(common) >= 2:  # (values, prior scale): a paired difference has prior 2 s0^2
        d = [base[s] - cur[s] for s in common]
        test, drop, parts = "paired", fmean(d), [(d, 2.0)]
    elif len(b) >= 2 and len(c) >= 2:
        test, drop, parts = "welch", fmean(b) - fmean(c), [(b, 1.0), (c, 1.0)]
    else:
        return out | ({"test": "single", "drop": fmean(b) - fmean(c)} if b and c else {})
    own = [(variance(x), len(x) - 1.0, len(x), k) for x, k in parts]
    w = [max((d0 * k * s0 + df * v) / (d0 + df), v) / n for v, df, n, k in own]  # var of means
    se, dfs = math.sqrt(sum(w)), [d0 + df for _, df, _, _ in own]
    exact = math.sqrt(sum(v / n for v, _, n, _ in own)) <= EPS and (test == "paired" or not d0)
    if exact or se <= EPS:  # no spread: the drop is exact
        df, p_drop, p_gain, half, se = sum(dfs), float(drop <= EPS), float(drop >= -EPS), 0.0, 0.0
    else:  # Welch-Satterthwaite (one part: its own df)
        df = sum(w) ** 2 / sum(wi**2 / dfi for wi, dfi in zip(w, dfs, strict=True))
        p_drop, p_gain = float(stdtr(df, -drop / se)), float(stdtr(df, drop / se))
        half = float(stdtrit(df, 0.975)) * se
    return out | dict(test=test, drop=drop, se=se, df=df, ci=[drop - half, drop + half],
                      p_drop=p_drop, p_gain=p_gain)  # fmt: skip


def variance_prior(cells: dict[tuple, dict], metric: str) -> dict[str, tuple[float, float]]:
    """dataset -> (d0, s0^2): the empirical-Bayes prior of a cell's seed variance (Smyth 2004),
    fitted to the cells of that dataset with >= 2 seeds and nonzero spread (>= 3 such cells);
    d0 is capped at their total df (a pooled variance knows no more)."""
    groups: dict[str, list] = {}
    for key, cell in cells.items():
        if (e := cell[metric])["n"] >= 2 and e["std"] > 0:
            groups.setdefault(key[2], []).append((e["std"] ** 2, e["n"] - 1.0))
    out = {}
    for dataset, found in groups.items():
        if len(found) >= 3:
            v, d = np.array(found).T
            z = np.log(v) - digamma(d / 2) + np.log(d / 2)
            x = float(z.var(ddof=1) - polygamma(1, d / 2).mean())  # beyond chi-square noise
            y = 0.5 + 1.0 / x if x > 1e-6 else math.inf  # trigamma(y) = x, Newton (Smyth 2004)
            for _ in range(50 if x > 1e-6 else 0):
                tri = float(polygamma(1, y))
                y += (step := tri * (1 - tri / x) / float(polygamma(2, y)))
                if -step / y < 1e-8:
                    break
            d0 = min(2 * y, float(d.sum()))  # no more df than the prior is fitted from
            out[dataset] = (d0, float(np.exp(z.mean() + digamma(d0 / 2) - np.log(d0 / 2))))
    return out


def adjust(pvalues: list[float], method: str = "bh") -> list[float]:
    """Multiplicity-adjusted p-values: Benjamini-Hochberg ("bh") or Holm ("holm")."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return []
    if method == "bh":
        return [float(x) for x in false_discovery_control(p, method="bh")]
    if method == "holm":
        order = np.argsort(p, kind="stable")
        steps = np.minimum(np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]), 1.0)
        return [float(x) for x in steps[np.argsort(order)]]
    raise ValueError(f"unknown correction {method!r}; expected one of {', '.join(CORRECTIONS)}")


def cell_tests(base_cells: dict, cur_cells: dict, moderated: bool = True) -> list[dict]:
    """One drop test per metric of every cell found on both sides with no diverged seed."""
    priors = {m: variance_prior(base_cells, m) if moderated else {} for m in METRICS}
    tests = []
    for key in sorted(set(base_cells) & set(cur_cells), key=_sort_key):
        b, c = base_cells[key], cur_cells[key]
        for m in [] if c.get("diverged") else METRICS:
            t = drop_test(b[m]["seeds"], c[m]["seeds"], priors[m].get(key[2], (0.0, 0.0)))
            tests += [{"key": key, "metric": m, **t}] if t["test"] else []
    return tests


def compare(base_cells: dict, cur_cells: dict, alpha: float = 0.05, correction: str = "bh",
            min_drop: float = 0.005, moderated: bool = True) -> list[dict]:  # fmt: skip
    """One row per cell (union of both sides) with its status and its tests by metric."""
    tests = cell_tests(base_cells, cur_cells, moderated)
    tested = [t for t in tests if t["p_drop"] is not None]
    for name in ["p_drop", "p_gain"]:
        for t, p in zip(tested, adjust([t[name] for t in tested], correction), strict=True):
            t[name + "_adj"] = p
    by_cell: dict[tuple, dict[str, dict]] = {}
    for t in tests:
        if t["p_drop"] is None:  # single value on a side: the larger floor alone
            t["fails"], t["gains"] = t["drop"] >= SINGLE_DROP, -t["drop"] >= SINGLE_DROP
        else:
            t["fails"] = t["p_drop_adj"] < alpha and t["drop"] >= min_drop
            t["gains"] = t["p_gain_adj"] < alpha and -t["drop"] >= min_drop
        by_cell.setdefault(t.pop("key"), {})[t["metric"]] = t
    rows = []
    for key in sorted(set(base_cells) | set(cur_cells), key=_sort_key):
        b, c, ts = base_cells.get(key), cur_cells.get(key), by_cell.get(key, {})
        row: dict[str, Any] = {**dict(zip(CELL, key, strict=True)), "status": "ok"}
        for side, cell in [("baseline", b), ("current", c)]:
            row[f"n_{side}"] = cell["linear_acc"]["n"] if cell else None
            row[side] = {m: cell[m]["mean"] for m in METRICS} if cell else None
        row |= {"diverged": c.get("diverged", 0) if c else 0, "tests": ts}
        row["failed_metrics"] = [m for m, t in ts.items() if t["fails"]]
        if row["diverged"]:
            row["status"] = "DIVERGED"
        elif b is None:
            row["status"] = "new"
        elif c is None or not c["linear_acc"]["n"]:
            row["status"] = "MISSING"
        elif row["failed_metrics"] or any(t["gains"] for t in ts.values()):
            row["status"] = "DROP" if row["failed_metrics"] else "improved"
        rows.append(row)
    return rows


def source_change(old: Any, method: str, objective: str) -> dict[str, list] | None:
    """Files changed/added/removed since the baseline (None: the baseline has no digests)."""
    if not isinstance(old, dict):
        return None
    now = _cell_sources(method, objective) or {}
    changed = sorted(f for f in old.keys() & now.keys() if old[f] != now[f])
    return {"changed": changed, "added": sorted(set(now) - set(old)),
            "removed": sorted(set(old) - set(now))}  # fmt: skip


def describe_change(change: dict[str, list] | None) -> str:
    parts = [f"{k}: {', '.join(v)}" for k, v in (change or {}).items() if v]
    none = "no source change (noise or nondeterminism)" if change is not None else ""
    return "; ".join(parts) or none or "sources unknown (the baseline has no source digests)"


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale if scale != 1 else value, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    """One line per cell: means and current-minus-baseline deltas in points, adjusted p."""
    header = ["method", "objective", "dataset", "encoder", "batch", "neg", "tuned", "sweep",
              "seeds b/c", "base lin%", "d lin", "p adj", "base knn%", "d knn", "p adj", "status"]  # fmt: skip
    body = []
    for r in rows:
        line = [*(r[k] for k in CELL[:4]), _fmt(r["batch_size"], "d"), _fmt(r["negatives"], "d"),
                "yes" if r["tuned"] else "no", r["sweep"],
                f"{_fmt(r['n_baseline'], 'd')}/{_fmt(r['n_current'], 'd')}" + (f" ({r['diverged']} div)" if r["diverged"] else "")]  # fmt: skip
        for m in METRICS:
            t, base = r["tests"].get(m) or {}, (r["baseline"] or r["current"] or {}).get(m)
            delta = None if t.get("drop") is None else 0.0 - t["drop"]  # no "-0.00"
            line += [_fmt(base, ".2f", 100), _fmt(delta, "+.2f", 100), _fmt(t.get("p_drop_adj"), ".2g")]  # fmt: skip
        body.append([*line, r["status"]])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    just = [str.rjust if i in {4, 5, 9, 10, 11, 12, 13, 14} else str.ljust for i in range(16)]
    lines = [zip(just, cells, widths, strict=True) for cells in [header, [], *body]]
    lines[1] = zip([str.ljust] * 16, ["-" * w for w in widths], widths, strict=True)
    return "\n".join("  ".join(j(str(c), w) for j, c, w in line).rstrip() for line in lines)


def format_flagged(rows: list[dict[str, Any]], correction: str) -> str:
    """Why each failing cell fails: drop, 95% interval, adjusted p, changed source files."""
    out, pad = [], " " * 10
    for r in (r for r in rows if r["status"] in FAILING):
        tuned = "tuned" if r["tuned"] else "untuned"
        where = f"{r['dataset']} {r['encoder']} batch={r['batch_size']} neg={r['negatives']}"
        out.append(f"{r['status']:<8}  {r['method']}/{r['objective']} {where} {tuned} sweep={r['sweep']}")  # fmt: skip
        why = {"MISSING": "in the baseline; no finished seed in the results",
               "DIVERGED": f"{r['diverged']} current seed(s) diverged"}  # fmt: skip
        out += [pad + why[r["status"]]] if r["status"] in why else []
        for m, t in ((m, r["tests"][m]) for m in r["failed_metrics"]):
            if t["test"] == "single":
                how = f"single value on a side (limit {SINGLE_DROP * 100:g} points, no p-value)"
            else:
                kind = f"paired t over {t['pairs']} seeds" if t["test"] == "paired" else "Welch t"
                how = (f"95% CI [{t['ci'][0] * 100:.2f}, {t['ci'][1] * 100:.2f}], {kind} "
                       f"(df {t['df']:.3g}), adjusted p {t['p_drop_adj']:.2g} ({correction})")  # fmt: skip
            out.append(f"{pad}{m}: drop {t['drop'] * 100:.2f} points, {how}")
        out += [f"{pad}sources: {describe_change(r['source_change'])}"] if "source_change" in r else []  # fmt: skip
    return "\n".join(out)


def summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    counts = {s.lower(): sum(r["status"] == s for r in rows) for s in STATUSES}
    failing = [r for r in rows if r["status"] in FAILING]
    tests = sum(t["p_drop"] is not None for r in rows for t in r["tests"].values())
    return dict(passed=not failing, cells=len(rows), counts=counts, tests=tests, alpha=args.alpha,
                correction=args.correction, min_drop=args.min_drop, variance=args.variance,
                single_drop=SINGLE_DROP, baseline=str(args.baseline), results=str(args.results),
                failing=failing)  # fmt: skip


def verdict(result: dict[str, Any]) -> str:
    c, n, ok = result["counts"], len(result["failing"]), result["passed"]
    return (
        f"check: {'PASS' if ok else 'FAIL'}: {n} of {result['cells']} cells failing "
        f"({c['drop']} drop, {c['missing']} missing, {c['diverged']} diverged), {c['ok']} ok, "
        f"{c['improved']} improved, {c['new']} new; one-sided paired/Welch t ({result['variance']} "
        f"variance), {result['tests']} tests, {result['correction']}-adjusted, alpha "
        f"{result['alpha']:g}, min drop {result['min_drop'] * 100:g} points"
    )
