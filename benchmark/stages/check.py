"""`python -m benchmark check`: the regression gate's stage. It reads results.csv and the
committed baseline, runs the drop tests of ``benchmark.check`` and writes
``reports/check.json``; exit 1 when a cell fails (``--update-baseline`` rewrites it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark import atomic, check
from benchmark.check import (
    CELL,
    CORRECTIONS,
    VARIANCES,
    baseline_from_results,
    cell_stats,
    compare,
    format_flagged,
    format_table,
    load_baseline,
    source_change,
    summary,
    verdict,
)
from benchmark.errors import UserError
from benchmark.report.loading import load_results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description, parser.formatter_class = check.__doc__, argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add("--results", default="reports/results.csv", help="tidy results table")
    add("--baseline", default="reports/baseline.json", help="committed reference metrics")
    add("--update-baseline", action="store_true", help="rewrite the baseline and exit 0")
    add("--alpha", type=float, default=0.05, help="suite-wide error rate (default 0.05)")
    add("--correction", choices=CORRECTIONS, default="bh", help="multiplicity adjustment over all "
        "tests: Benjamini-Hochberg (default) or Holm")  # fmt: skip
    add("--variance", choices=VARIANCES, default="moderated", help="seed variance of a cell's "
        "test: shrunk towards its dataset's (default) or the cell's own")  # fmt: skip
    add("--min-drop", type=float, default=0.005, help="practical floor: a smaller drop never "
        "fails (fraction, default 0.005 = 0.5 point)")  # fmt: skip
    add("--summary", default="reports/check.json", help="where to write the JSON summary")


def run(args: argparse.Namespace) -> int:
    if not (args.min_drop >= 0 and 0 < args.alpha < 1):
        raise UserError(f"need --min-drop >= 0, 0 < --alpha < 1; got {args.min_drop}, {args.alpha}")
    results_path, baseline_path = Path(args.results), Path(args.baseline)
    results = load_results(results_path, optional=("code_digest",))  # older tables: unknown
    paths = {"baseline": str(baseline_path), "results": str(results_path), "failing": []}
    if args.update_baseline:
        new = baseline_from_results(results)
        atomic.write_json(baseline_path, new)
        n, diverged = len(new["cells"]), sum(c["diverged"] for c in new["cells"])
        note = f" ({diverged} diverged seeds left out of the values)" if diverged else ""
        print(f"check: wrote {baseline_path} with {n} cells{note}")
        summ = {"passed": True, "baseline_updated": True, "cells": n, **paths}
        atomic.write_json(args.summary, summ)
        return 0
    baseline = load_baseline(baseline_path)
    suite = baseline.get("suite")
    if isinstance(suite, str) and suite not in set(results["suite"]):
        # e.g. `dvc exp run -S suite=smoke`: there is nothing to compare, which is not a fail
        found = ", ".join(sorted(results["suite"].unique()))
        reason = f"baseline {baseline_path} is of suite {suite!r}; results are of {found}"
        atomic.write_json(args.summary, {"passed": True, "skipped": reason, **paths})
        print(f"check: skipped: {reason} (nothing to compare)")
        return 0
    if isinstance(suite, str):
        results = results[results["suite"] == suite]
    base_cells, mod = baseline["_cells"], args.variance == "moderated"
    rows = compare(base_cells, cell_stats(results), args.alpha, args.correction, args.min_drop, mod)
    for r in (r for r in rows if r["status"] in {"DROP", "DIVERGED"}):
        if (key := tuple(r[k] for k in CELL)) in base_cells:
            r["source_change"] = source_change(base_cells[key].get("sources"), *key[:2])
    atomic.write_json(args.summary, result := summary(rows, args))
    print(format_table(rows))
    if flagged := format_flagged(rows, args.correction):
        print(f"\nfailing cells:\n{flagged}")
    print(verdict(result))
    return 0 if result["passed"] else 1
