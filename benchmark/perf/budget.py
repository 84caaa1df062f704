"""`perf budget`: what a grid's seeds cost against the precision and headroom they buy,
recomputed from committed results (no training).

For each policy "the first k seeds of every headline entry" (and the committed grid, all
seeds) the leaderboard is rebuilt on that subset of the results and one line printed:
cells, training CPU-minutes (the kept rows' ``train_seconds``), a wall-time projection,
the median and widest 95% half-width over the self-supervised headline entries, how many
of them are within the precision target, and the smallest headroom of a testbed. Sweeps,
untuned comparisons and sweep-only cells are kept whole in every policy; a second table
gives the training CPU of each sweep, so the cost of the axes is visible beside the cost
of the seeds.

The projection scales a measured wall time of the committed grid (``--wall``, from
``perf pipeline``) by the ratio of training CPU-seconds. It assumes the rest (tuning,
probes, start-up) scales alike; tuning does not shrink with fewer seeds, so for small k
the projection errs low.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.loading import load_results
from benchmark.report.quality import HALF_WIDTH_POINTS
from benchmark.report.tables import KEY, METHOD_ROLE, TESTBED, headline_rows, leaderboard


def policy_rows(results: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """The results a grid with ``k`` seeds per headline entry would hold: every row that is
    not in an entry's headline configuration, and of the headline rows those whose seed is
    among the entry's first ``k`` (all of them when ``k`` is None)."""
    if k is None:
        return results
    head = headline_rows(results)
    first = head.groupby(KEY, dropna=False)["seed"].transform(lambda s: s.rank(method="dense") <= k)
    drop = head.index[~first.astype(bool)]
    return results.drop(index=drop)


def policy_summary(results: pd.DataFrame, k: int | None) -> dict:
    rows = policy_rows(results, k)
    lb = leaderboard(rows)
    methods = lb[(lb["role"] == METHOD_ROLE) & lb["linear_acc_ci95"].notna()]
    half = 100 * methods["linear_acc_ci95"]
    widest = methods.loc[methods["linear_acc_ci95"].idxmax()] if len(methods) else None
    headroom = 100 * lb[lb["role"] == METHOD_ROLE].groupby(TESTBED)["headroom"].max()
    return {
        "seeds": "all" if k is None else f"first {k}",
        "cells": len(rows),
        "cpu_min": rows["train_seconds"].sum() / 60,
        "median": half.median(),
        "widest": half.max(),
        "widest_entry": "" if widest is None else f"{widest['method']}/{widest['objective']}",
        "within": int((half <= HALF_WIDTH_POINTS).sum()),
        "entries": len(half),
        "headroom": headroom.min(),
    }


def perf_budget(results_path: Path, ks: list[int], wall: float | None, suite: str) -> int:
    from benchmark.errors import UserError

    if any(k < 1 for k in ks):
        raise UserError(f"--seeds: {min(ks)} is not allowed; allowed: integers >= 1")
    if not results_path.is_file():
        raise UserError(f"--results: {results_path} does not exist; run `dvc repro` first")
    results = load_results(results_path)
    held = sorted(results["suite"].unique())
    results = results[results["suite"] == suite]
    if results.empty:
        raise UserError(
            f"--suite: {results_path} holds no rows of suite {suite!r}; allowed: " + ", ".join(held)
        )
    lines = [policy_summary(results, k) for k in sorted(set(ks))] + [policy_summary(results, None)]
    full_cpu = lines[-1]["cpu_min"]
    print(
        f"{suite}: seeds per headline entry against training CPU, precision and headroom "
        f"(recomputed from {results_path}; half-widths of the 95% interval in points, "
        f"target <= {HALF_WIDTH_POINTS:g})"
    )
    head = (
        f"{'seeds':>9} {'cells':>6} {'CPU-min':>8} {'wall-min':>9} {'median':>7} "
        f"{'widest':>7}  {'widest entry':<16} {'<= target':>10} {'headroom':>9}"
    )
    print(head)
    for s in lines:
        projected = f"{wall / 60 * s['cpu_min'] / full_cpu:9.1f}" if wall else f"{'-':>9}"
        print(
            f"{s['seeds']:>9} {s['cells']:>6} {s['cpu_min']:8.1f} {projected} "
            f"{s['median']:7.2f} {s['widest']:7.2f}  {s['widest_entry']:<16} "
            f"{s['within']:>4} of {s['entries']:<3} {s['headroom']:+9.1f}"
        )
    if wall:
        print(
            f"wall-min: the measured {wall / 60:.1f} min of the committed grid scaled by "
            "training CPU (tuning and overheads assumed to scale alike: low for small k)"
        )
    else:
        print("wall-min: pass --wall SECONDS (the committed grid's `perf pipeline` time)")
    print("headroom: the smallest, over testbeds, of the best entry minus the untrained one")
    by_sweep = results.groupby("sweep")["train_seconds"].agg(["size", "sum"])
    print("training CPU by sweep (all seeds):")
    for sweep, row in by_sweep.iterrows():
        print(
            f"  {sweep:<12} {int(row['size']):>4} cells {row['sum'] / 60:7.1f} CPU-min "
            f"({row['sum'] / 60 / full_cpu:.0%})"
        )
    return 0
