"""`python -m benchmark check`: regression check of results.csv against reports/baseline.json.

A cell is (method, objective, dataset, encoder, batch_size, negatives, tuned, sweep). The
baseline holds, per cell, mean/std/n over seeds of ``linear_acc`` and ``knn_acc``
(diverged seeds excluded). A cell fails when

* its mean linear accuracy drops by more than ``tol = max(2 * SE, --min-drop)``, where
  ``SE = sqrt(s_b^2 / n_b + s_c^2 / n_c)`` is the standard error of the difference of the
  two means from the seed-to-seed spread (a side with one seed borrows the other side's
  std; with one seed on both sides only the floor applies);
* it is in the baseline but absent from the results (or has no finished seed);
* any of its current seeds diverged.

Cells not in the baseline are reported as "new". ``--update-baseline`` rewrites the
baseline from the current results. A summary is written to ``reports/check.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.cli import UserError
from benchmark.report import atomic_write_json, load_results

CELL = ["method", "objective", "dataset", "encoder", "batch_size", "negatives", "tuned", "sweep"]
METRICS = ["linear_acc", "knn_acc"]
FORMAT_VERSION = 1
FAILING = {"DROP", "MISSING", "DIVERGED"}


def _py(value: Any) -> Any:
    """pandas/numpy scalar -> plain JSON-able Python (NA -> None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _key(values: Any) -> tuple:
    method, objective, dataset, encoder, batch, negatives, tuned, sweep = (_py(v) for v in values)
    return (
        str(method),
        str(objective),
        str(dataset),
        str(encoder),
        None if batch is None else int(batch),
        None if negatives is None else int(negatives),
        bool(tuned),
        str(sweep),
    )


def _stats(values: pd.Series) -> dict[str, Any]:
    a = values.to_numpy(dtype=float)
    a = a[np.isfinite(a)]
    n = len(a)
    return {
        "mean": float(a.mean()) if n else None,
        "std": float(a.std(ddof=1)) if n > 1 else (0.0 if n else None),
        "n": n,
    }


def cell_stats(results: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    """cell key -> {linear_acc: {mean, std, n}, knn_acc: {...}, seeds, diverged}."""
    out = {}
    for values, g in results.groupby(CELL, dropna=False, sort=True):
        ok = g[~g["diverged"]]
        out[_key(values)] = {
            **{m: _stats(ok[m]) for m in METRICS},
            "seeds": int(g["seed"].nunique()),
            "diverged": int(g["diverged"].sum()),
        }
    return out


def baseline_from_results(results: pd.DataFrame) -> dict[str, Any]:
    suites = sorted(results["suite"].unique())
    cells = []
    for key, st in sorted(cell_stats(results).items(), key=lambda kv: _sort_key(kv[0])):
        cells.append({**dict(zip(CELL, key, strict=True)), **{m: st[m] for m in METRICS}})
    return {
        "version": FORMAT_VERSION,
        "suite": suites[0] if len(suites) == 1 else suites,
        "metrics": METRICS,
        "cells": cells,
    }


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, -1 if v is None else v) for v in key)


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(
            f"{path}: baseline not found; create it with `python -m benchmark check --update-baseline`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"{path}: not valid JSON ({err}); expected a baseline written by --update-baseline"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UserError(
            f"{path}: expected an object with a 'cells' list (written by --update-baseline)"
        )
    cells = {}
    for i, cell in enumerate(data["cells"]):
        missing = [k for k in [*CELL, "linear_acc"] if not isinstance(cell, dict) or k not in cell]
        if missing:
            raise UserError(f"{path}: cells[{i}] lacks {', '.join(missing)}")
        lin = cell["linear_acc"]
        if not isinstance(lin, dict) or not {"mean", "std", "n"} <= set(lin):
            raise UserError(f"{path}: cells[{i}].linear_acc must have mean, std and n")
        cells[_key([cell[k] for k in CELL])] = cell
    data["_cells"] = cells
    return data


def tolerance(base: dict[str, Any], cur: dict[str, Any], floor: float) -> float:
    """max(2 * SE of the difference of means, floor); one-seed sides borrow the other's std."""
    nb, nc = int(base.get("n") or 0), int(cur.get("n") or 0)
    sb = base.get("std") if nb > 1 else None
    sc = cur.get("std") if nc > 1 else None
    sb = sb if sb is not None else (sc if sc is not None else 0.0)
    sc = sc if sc is not None else sb
    se = math.sqrt((sb**2 / nb if nb else 0.0) + (sc**2 / nc if nc else 0.0))
    return max(2.0 * se, floor)


def compare(
    baseline: dict[str, Any], current: dict[tuple, dict[str, Any]], floor: float
) -> list[dict[str, Any]]:
    base_cells = baseline["_cells"]
    rows = []
    for key in sorted(set(base_cells) | set(current), key=_sort_key):
        b, c = base_cells.get(key), current.get(key)
        row: dict[str, Any] = dict(zip(CELL, key, strict=True))
        b_lin = b["linear_acc"] if b else {}
        c_lin = c["linear_acc"] if c else {}
        row |= {
            "baseline": b_lin.get("mean"),
            "baseline_n": b_lin.get("n"),
            "current": c_lin.get("mean"),
            "current_n": c_lin.get("n"),
            "diverged": c["diverged"] if c else 0,
            "delta": None,
            "tolerance": None,
            "knn_delta": None,
        }
        if b and c and b_lin.get("mean") is not None and c_lin.get("mean") is not None:
            row["delta"] = c_lin["mean"] - b_lin["mean"]
            row["tolerance"] = tolerance(b_lin, c_lin, floor)
            b_knn, c_knn = (b.get("knn_acc") or {}).get("mean"), c["knn_acc"]["mean"]
            if b_knn is not None and c_knn is not None:
                row["knn_delta"] = c_knn - b_knn
        if c and c["diverged"]:
            status = "DIVERGED"
        elif b is None:
            status = "new"
        elif c is None or c_lin.get("mean") is None:
            status = "MISSING"
        elif row["delta"] is None:  # baseline cell without a mean: nothing to compare
            status = "ok"
        elif row["delta"] < -row["tolerance"]:
            status = "DROP"
        elif row["delta"] > row["tolerance"]:
            status = "improved"
        else:
            status = "ok"
        row["status"] = status
        rows.append(row)
    return rows


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "method",
        "objective",
        "dataset",
        "encoder",
        "batch",
        "neg",
        "tuned",
        "sweep",
        "n b/c",
        "baseline",
        "current",
        "delta",
        "tol",
        "knn delta",
        "status",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r["method"],
                r["objective"],
                r["dataset"],
                r["encoder"],
                _fmt(r["batch_size"], "d"),
                _fmt(r["negatives"], "d"),
                "yes" if r["tuned"] else "no",
                r["sweep"],
                f"{_fmt(r['baseline_n'], 'd')}/{_fmt(r['current_n'], 'd')}"
                + (f" ({r['diverged']} div)" if r["diverged"] else ""),
                _fmt(r["baseline"], ".4f"),
                _fmt(r["current"], ".4f"),
                _fmt(r["delta"], "+.4f"),
                _fmt(r["tolerance"], ".4f"),
                _fmt(r["knn_delta"], "+.4f"),
                r["status"],
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    numeric = {4, 5, 9, 10, 11, 12, 13}

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)


def summary(
    rows: list[dict[str, Any]], baseline_path: Path, results_path: Path, floor: float
) -> dict[str, Any]:
    counts = {s: 0 for s in ["ok", "improved", "new", "DROP", "MISSING", "DIVERGED"]}
    for r in rows:
        counts[r["status"]] += 1
    failing = [r for r in rows if r["status"] in FAILING]
    return {
        "passed": not failing,
        "cells": len(rows),
        "counts": {k.lower(): v for k, v in counts.items()},
        "min_drop": floor,
        "baseline": str(baseline_path),
        "results": str(results_path),
        "failing": failing,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="reports/results.csv", help="tidy results table")
    parser.add_argument(
        "--baseline", default="reports/baseline.json", help="committed reference metrics"
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="rewrite the baseline from the current results and exit 0",
    )
    parser.add_argument(
        "--min-drop",
        type=float,
        default=0.01,
        help="floor of the tolerated drop in mean linear accuracy (fraction, default 0.01)",
    )
    parser.add_argument(
        "--summary", default="reports/check.json", help="where to write the JSON summary"
    )


def run(args: argparse.Namespace) -> int:
    if not (args.min_drop >= 0):
        raise UserError(f"--min-drop must be a fraction >= 0; got {args.min_drop}")
    results_path, baseline_path = Path(args.results), Path(args.baseline)
    results = load_results(results_path)

    if args.update_baseline:
        new = baseline_from_results(results)
        atomic_write_json(baseline_path, new)
        diverged = int(results["diverged"].sum())
        note = f" ({diverged} diverged seeds left out of the statistics)" if diverged else ""
        print(f"check: wrote {baseline_path} with {len(new['cells'])} cells{note}")
        atomic_write_json(
            args.summary,
            {
                "passed": True,
                "baseline_updated": True,
                "cells": len(new["cells"]),
                "baseline": str(baseline_path),
                "results": str(results_path),
                "failing": [],
            },
        )
        return 0

    baseline = load_baseline(baseline_path)
    suite = baseline.get("suite")
    if isinstance(suite, str) and suite not in set(results["suite"]):
        # e.g. `dvc exp run -S suite=smoke`: there is nothing to compare, which is not a fail
        found = ", ".join(sorted(results["suite"].unique()))
        reason = f"baseline {baseline_path} is of suite {suite!r}; results are of {found}"
        atomic_write_json(
            args.summary,
            {
                "passed": True,
                "skipped": reason,
                "baseline": str(baseline_path),
                "results": str(results_path),
                "failing": [],
            },
        )
        print(f"check: skipped: {reason} (nothing to compare)")
        return 0
    if isinstance(suite, str):
        results = results[results["suite"] == suite]
    rows = compare(baseline, cell_stats(results), args.min_drop)
    result = summary(rows, baseline_path, results_path, args.min_drop)
    atomic_write_json(args.summary, result)
    print(format_table(rows))
    c = result["counts"]
    verdict = "PASS" if result["passed"] else "FAIL"
    print(
        f"check: {verdict}: {c['ok']} ok, {c['improved']} improved, {c['new']} new, "
        f"{c['drop']} dropped, {c['missing']} missing, {c['diverged']} diverged "
        f"(tol = max(2 SE, {args.min_drop:g}))"
    )
    return 0 if result["passed"] else 1
