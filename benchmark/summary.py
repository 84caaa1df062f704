"""`python -m benchmark summary`: what a person needs after `dvc repro` (make run ends with it).

Where the report is, the top of each testbed's leaderboard (mean linear-probe accuracy
over seeds of the tuned headline cells, beside the untrained encoder of that testbed),
the regression check's verdict, and how to recompute everything from scratch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SCRATCH = "rm -rf reports/runs reports/tuned reports/trials optuna.db mlflow.db && dvc repro"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="reports/results.csv")
    parser.add_argument("--check", default="reports/check.json")
    parser.add_argument("--top", type=int, default=3, help="cells shown per testbed")


def top_cells(results, top: int) -> list[str]:
    """One line per testbed: its best `top` headline cells and its untrained encoder."""
    df = results[~results["diverged"].astype(bool)]
    lines = []
    for (dataset, encoder), g in df.groupby(["dataset", "encoder"], sort=True):
        head = g[(g["sweep"] == "method") & g["tuned"].astype(bool)]
        head = head[~head["method"].isin(["random", "supervised"])]
        means = head.groupby(["method", "objective"])["linear_acc"].mean()
        if means.empty:
            continue
        best = means.sort_values(ascending=False).head(top)
        shown = ", ".join(f"{m}/{o} {100 * v:.1f}" for (m, o), v in best.items())
        floor = g[g["method"] == "random"]["linear_acc"].mean()
        tail = f"  (untrained {100 * floor:.1f})" if floor == floor else ""
        lines.append(f"  {dataset}/{encoder}: {shown}{tail}")
    return lines


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    results_path, check_path = Path(args.results), Path(args.check)
    print("")
    print("== summary ==")
    if not results_path.is_file():
        print(f"no results yet ({results_path}); run `dvc repro`")
        return 0
    results = pd.read_csv(results_path)
    suites = ", ".join(sorted(results["suite"].astype(str).unique())) or "-"
    print(f"suite {suites}: {len(results)} rows in {results_path}")
    print("report: reports/index.html (open in a browser), reports/leaderboard.md")
    print("best tuned headline cells, linear-probe accuracy % (mean over seeds):")
    for line in top_cells(results, args.top):
        print(line)
    if check_path.is_file():
        check = json.loads(check_path.read_text())
        if check.get("skipped"):
            verdict = f"skipped ({check['skipped']})"
        else:
            verdict = "PASS" if check.get("passed") else "FAIL"
            failing = check.get("failing") or []
            if failing:
                names = ", ".join(
                    f"{f.get('method')}/{f.get('objective')} B={f.get('batch_size')}"
                    for f in failing[:5]
                )
                verdict += (
                    f": {len(failing)} failing cells ({names}{', ...' if len(failing) > 5 else ''})"
                )
        print(f"regression check: {verdict}  ({check_path}; details: python -m benchmark check)")
    print(f"recompute from scratch: {SCRATCH}")
    return 0
