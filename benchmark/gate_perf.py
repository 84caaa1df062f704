"""Measure the regression gate (benchmark.check) by simulation from the committed seed spreads.

``python -m benchmark.gate_perf`` reads a results table (default ``reports/results.csv``) and,
for each of ``--suites`` simulated suites (seeded), draws a "baseline" and a "current" result
set for every cell: each seed's linear_acc and knn_acc independently from a normal distribution
with the cell's observed mean and a seed-to-seed std. ``--spread pooled`` (default) uses the
std pooled over the cells of the cell's dataset, per metric (root mean variance: a 3-seed std
on its own is too noisy to stand for the truth); ``--spread cell`` uses each cell's own
observed std (so it exaggerates how much the cells differ). It then runs the gate's own
``check.compare`` on every simulated pair and prints

(a) the false-alarm rate: the share of simulated suites with >= 1 failing cell when nothing
    changed, with its exact (Clopper-Pearson) binomial 95% interval; target <= alpha;
(b) the power: with drops (``--drops``, default 1, 2 and 5 points) planted in ``--planted``
    (default linear_acc) of (i) the headline cell (sweep "method", simclr, ntxent, tuned; the
    mnist1d one when present) and (ii) every cell of ``--objective`` (default triplet): the
    share of suites where every planted cell is flagged, the mean share of planted cells
    flagged, and the mean number of other cells flagged per suite (false flags).

Every scenario reuses the same draws (common random numbers), so the figures compare across
drops. ``--current-seeds 1`` simulates a one-seed current run (the single-value rule). With
``--current PATH --baseline PATH`` it instead runs the real check of a results CSV against a
baseline (a baseline.json, or another results CSV) and prints how many cells are flagged.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from benchmark import check
from benchmark.errors import UserError
from benchmark.report import load_results


def read_results(path: str | Path) -> pd.DataFrame:
    """load_results, tolerating a table without the code_digest column (older results)."""
    return load_results(path, optional=("code_digest",))


def cell_params(results: pd.DataFrame, spread: str = "pooled") -> dict[tuple, dict[str, Any]]:
    """cell key -> {metric: (mean, std)} and the cell's seeds, from observed results."""
    stats = check.cell_stats(results)
    out: dict[tuple, dict[str, Any]] = {}
    for key, st in stats.items():
        if not st["linear_acc"]["n"]:
            continue
        out[key] = {
            "seeds": sorted(st["linear_acc"]["seeds"], key=int),
            **{m: (st[m]["mean"], st[m]["std"] or 0.0) for m in check.METRICS},
        }
    if spread == "pooled":  # root mean variance over the cells of a dataset, per metric
        for dataset in {k[2] for k in out}:
            group = [p for k, p in out.items() if k[2] == dataset]
            for m in check.METRICS:
                pooled = math.sqrt(np.mean([p[m][1] ** 2 for p in group]))
                for p in group:
                    p[m] = (p[m][0], pooled)
    return out


def draw(params: dict[tuple, dict], rng: np.random.Generator) -> dict[tuple, np.ndarray]:
    """cell key -> standard normal noise of shape (metrics, seeds)."""
    return {
        k: rng.standard_normal((len(check.METRICS), len(p["seeds"]))) for k, p in params.items()
    }


def cells(
    params: dict[tuple, dict],
    noise: dict[tuple, np.ndarray],
    shift: dict[tuple, dict[str, float]] | None = None,
    n_seeds: int | None = None,
) -> dict[tuple, dict]:
    """Simulated cells in check.cell_stats' shape: mean + std * noise - planted drop."""
    out = {}
    for key, p in params.items():
        seeds = p["seeds"][:n_seeds] if n_seeds else p["seeds"]
        entry: dict[str, Any] = {"diverged": 0}
        for i, m in enumerate(check.METRICS):
            mean, std = p[m]
            drop = (shift or {}).get(key, {}).get(m, 0.0)
            vals = mean + std * noise[key][i, : len(seeds)] - drop
            entry[m] = check.metric_entry(dict(zip(seeds, vals.tolist(), strict=True)))
        out[key] = entry
    return out


def headline(params: dict[tuple, dict]) -> tuple | None:
    """The simclr/ntxent tuned cell of the method sweep (the mnist1d one if present)."""
    found = [
        k for k in params if k[0] == "simclr" and k[1] == "ntxent" and k[6] and k[7] == "method"
    ]
    return next((k for k in found if k[2] == "mnist1d"), found[0] if found else None)


def simulate(params: dict[tuple, dict], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every scenario on the same draws; one tally per scenario."""
    rng = np.random.default_rng(args.seed)
    head, group = headline(params), [k for k in params if k[1] == args.objective]
    planted = args.planted.split(",")
    scenarios = [{"name": "no change", "drop": 0.0, "targets": []}]
    for d in args.drops:
        if head is not None:
            scenarios.append({"name": "headline cell", "drop": d / 100, "targets": [head]})
        if group:
            name = f"all {len(group)} {args.objective} cells"
            scenarios.append({"name": name, "drop": d / 100, "targets": group})
    for s in scenarios:
        s |= {"any": 0, "all": 0, "share": 0.0, "false": 0, "false_any": 0}
    for _ in range(args.suites):
        base = cells(params, draw(params, rng))
        noise = draw(params, rng)
        for s in scenarios:
            shift = {k: {m: s["drop"] for m in planted} for k in s["targets"]}
            cur = cells(params, noise, shift, args.current_seeds)
            rows = check.compare(
                base, cur, args.alpha, args.correction, args.min_drop, args.moderated
            )
            flagged = {
                tuple(r[c] for c in check.CELL) for r in rows if r["status"] in check.FAILING
            }
            targets = set(s["targets"])
            s["any"] += bool(flagged)
            s["false"] += len(flagged - targets)
            s["false_any"] += bool(flagged - targets)
            if targets:
                s["all"] += targets <= flagged
                s["share"] += len(flagged & targets) / len(targets)
    return scenarios


def _rate(k: int, n: int) -> str:
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k}/{n} = {k / n:.1%} (95% CI {ci.low:.1%} to {ci.high:.1%})"


def report(params: dict[tuple, dict], scenarios: list[dict], args: argparse.Namespace) -> None:
    n = args.suites
    stds = {m: np.median([p[m][1] for p in params.values()]) * 100 for m in check.METRICS}
    spread = ", ".join(f"{m} {v:.2f}" for m, v in stds.items())
    print(
        f"gate_perf: {len(params)} cells x {len(check.METRICS)} metrics from {args.results} "
        f"(median seed std, points: {spread}; spread {args.spread}); {n} simulated suites, "
        f"seed {args.seed}, current seeds {args.current_seeds or 'all'}"
    )
    print(
        f"gate: one-sided paired/Welch t, {args.variance} variance, {args.correction}, "
        f"alpha {args.alpha:g}, min drop {args.min_drop * 100:g} points, single-value limit "
        f"{check.SINGLE_DROP * 100:g} points"
    )
    null = scenarios[0]
    print(
        f"(a) false alarms (suites with >= 1 failing cell, nothing changed): {_rate(null['any'], n)}"
    )
    print(f"    failing cells per suite: {null['false'] / n:.3f}")
    if len(scenarios) == 1:
        return print("(b) power: no drop planted (--drops)")
    print(f"(b) power: planted drop in {args.planted}; caught = every planted cell flagged")
    header = f"    {'planted in':<24} {'drop':>6}  {'caught (95% CI)':<38} {'share':>6}  other cells flagged"
    print(header)
    for s in scenarios[1:]:
        print(
            f"    {s['name']:<24} {s['drop'] * 100:4.0f} pt  {_rate(s['all'], n):<38} "
            f"{s['share'] / n:6.1%}  {s['false'] / n:.2f} per suite"
        )


def real_check(args: argparse.Namespace) -> None:
    """The real gate on a results CSV against a baseline (JSON, or another results CSV)."""
    results = read_results(args.current)
    if Path(args.baseline).suffix == ".csv":
        base_cells = check.cell_stats(read_results(args.baseline))
    else:
        baseline = check.load_baseline(Path(args.baseline))
        base_cells = baseline["_cells"]
        if isinstance(baseline.get("suite"), str):
            results = results[results["suite"] == baseline["suite"]]
    cur_cells = check.cell_stats(results)
    rows = check.compare(
        base_cells, cur_cells, args.alpha, args.correction, args.min_drop, args.moderated
    )
    flagged = [r for r in rows if r["status"] in check.FAILING]
    counts = {st: sum(r["status"] == st for r in rows) for st in check.STATUSES}
    print(
        f"gate_perf: {args.current} against {args.baseline}: {len(flagged)} of {len(rows)} "
        f"cells flagged ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
        f"{args.variance} variance, {args.correction}, alpha {args.alpha:g}, "
        f"min drop {args.min_drop * 100:g} points"
    )
    for r in flagged:  # a results CSV as baseline has no source digests: "unknown"
        key = tuple(r[c] for c in check.CELL)
        old = base_cells.get(key, {}).get("sources")
        r["source_change"] = check.source_change(old, r["method"], r["objective"])
    if flagged:
        print(check.format_flagged(flagged, args.correction))
    diffs = [abs(t["drop"]) for r in rows for t in r["tests"].values() if t["drop"] is not None]
    if diffs:
        print(
            f"  |mean difference| over {len(diffs)} tests, points: median "
            f"{np.median(diffs) * 100:.3f}, max {max(diffs) * 100:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.gate_perf",
        description="Measure the regression gate: false alarms and power by simulation from "
        "the committed seed spreads, or the real check of one results table against another.",
    )
    add = parser.add_argument
    add("--results", default="reports/results.csv", help="results whose seed spreads to use")
    add("--suites", type=int, default=200, help="simulated suites (default 200)")
    add("--seed", type=int, default=0, help="random seed of the simulation (default 0)")
    add("--spread", choices=["pooled", "cell"], default="pooled",
        help="per-seed std: pooled over the cells of a dataset (default) or each cell's own")  # fmt: skip
    add("--drops", type=float, nargs="*", default=[1.0, 2.0, 5.0], help="planted drops, points")
    add("--planted", default="linear_acc", help="metric(s) the drop is planted in, comma-separated")
    add("--objective", default="triplet", help="objective whose cells all get the drop")
    add("--current-seeds", type=int, default=None, help="seeds of the simulated current run")
    add("--alpha", type=float, default=0.05, help="gate alpha (default 0.05)")
    add("--correction", choices=check.CORRECTIONS, default="bh", help="gate correction")
    add("--min-drop", type=float, default=0.005, help="gate practical floor (fraction)")
    add("--variance", choices=check.VARIANCES, default="moderated", help="gate seed variance")
    add("--single-drop", type=float, default=check.SINGLE_DROP,
        help="gate drop that fails a cell with one value on a side (fraction)")  # fmt: skip
    add("--current", help="a results CSV to check for real (with --baseline)")
    add("--baseline", help="baseline.json or results CSV the --current table is checked against")
    args = parser.parse_args(argv)
    args.moderated = args.variance == "moderated"
    check.SINGLE_DROP = args.single_drop  # compare reads the module's value
    try:
        return _main(parser, args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if bool(args.current) != bool(args.baseline):
        parser.error("--current and --baseline go together")
    if args.current:
        real_check(args)
        return 0
    if args.suites < 1 or not set(args.planted.split(",")) <= set(check.METRICS):
        parser.error(f"need --suites >= 1 and --planted among {', '.join(check.METRICS)}")
    params = cell_params(read_results(args.results), args.spread)
    t0 = time.perf_counter()
    scenarios = simulate(params, args)
    report(params, scenarios, args)
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
