"""`python -m benchmark train --pair METHOD-OBJECTIVE`: the grid cells of one pair.

A cell is the unit of work: when it finishes its row is added to
``reports/runs/<pair>.csv`` by an atomic rewrite, so an interruption at any moment
loses at most the unfinished cell; the next run skips every cell whose ``config_hash`` and
``code_digest`` (the source it ran, ``benchmark.sources``) are already there, and
retrains a cell whose code changed. Rows of cells no longer in the suite are dropped.
Cells train in local worker processes, or as Slurm jobs (``executor: slurm``, see
``benchmark/executor.py``); either way their rows come back here and are written the same.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmark.config import ConfigError, SuiteCell
from benchmark.errors import UserError
from benchmark.sources import code_digest
from benchmark.stages.common import (
    RESULT_COLUMNS,
    RUNS_DIR,
    TUNED_DIR,
    apply_device,
    load_for_pair,
    read_csv,
    write_csv_atomic,
    write_header_only,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", required=True, help="METHOD-OBJECTIVE, e.g. simclr-triplet")
    parser.add_argument("--params", default="params.yaml")


def cell_slot(cell: SuiteCell) -> str:
    """The grid position a cell fills, whatever its tuned hyperparameters and code: the
    suite's settings of the cell (not its sweep: a configuration shared by two sweeps is
    one run). Its MLflow run supersedes the earlier runs of the same slot."""
    import hashlib

    keys = {k: v for k, v in cell.record().items() if k not in ("sweep", "pair")}
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:12]


def tuned_for(cell: SuiteCell, answer: dict) -> dict:
    """The tuned values of the cell's testbed: a pair tuned on several testbeds keeps one
    study per testbed (``answer["testbeds"]``); otherwise its one ``params``."""
    from benchmark.config import testbed_key

    per_testbed = answer.get("testbeds")
    if per_testbed:
        return per_testbed.get(testbed_key(cell), {}).get("params", {})
    return answer.get("params", {})


def run(args: argparse.Namespace) -> int:
    try:
        params, suite, cells = load_for_pair(args.pair, args.params)
    except ConfigError as err:
        raise UserError(str(err)) from None
    out = RUNS_DIR / f"{args.pair}.csv"
    if not cells:
        write_header_only(out, RESULT_COLUMNS)
        print(f"train@{args.pair}: not in suite {suite.name!r}")
        return 0
    apply_device(params)
    tuned_path = TUNED_DIR / f"{args.pair}.json"
    answer = json.loads(tuned_path.read_text()) if tuned_path.is_file() else {}
    configs = [(cell, cell.trained_config(tuned_for(cell, answer))) for cell in cells]
    # a row is identified by (config_hash, sweep): one configuration can belong to several
    # sweeps (batch 256 is also the headline cell and the all-negatives point); it is
    # trained once and its row copied under each sweep. A row is current only when its
    # code_digest is the source this pair runs now: an edited objective, method or shared
    # core retrains the cell, and the new row replaces the old one when it lands (until
    # then the old row stays, so an interruption loses nothing).
    digest = code_digest(cells[0].method, cells[0].objective)
    wanted = {(cfg.config_hash(), cell.sweep) for cell, cfg in configs}
    done = read_csv(out, RESULT_COLUMNS)
    if "code_digest" not in done.columns:
        done["code_digest"] = None
    if len(done):
        keys = list(zip(done["config_hash"], done["sweep"], strict=True))
        done = done[[k in wanted for k in keys]]
    write_csv_atomic(done, out)  # drop rows of cells that left the suite
    current = done[done["code_digest"] == digest]
    have = set(zip(current["config_hash"], current["sweep"], strict=True))
    todo = [(c, cfg) for c, cfg in configs if (cfg.config_hash(), c.sweep) not in have]
    stale = len(done) - len(current)
    print(
        f"train@{args.pair}: {len(cells)} cells, {len(cells) - len(todo)} already done, "
        f"{len(todo)} to run" + (f" ({stale} of them for changed code)" if stale else "")
    )
    if not todo:
        return 0
    import pandas as pd
    from tqdm.auto import tqdm

    from benchmark import executor, tracking

    stage = f"train@{args.pair}"
    # rows already trained (with this code) under another sweep are copied, not re-run
    trained = set(current["config_hash"])
    copies = [(c, cfg) for c, cfg in todo if cfg.config_hash() in trained]
    fresh = [(c, cfg) for c, cfg in todo if (c, cfg) not in copies]
    first_seen: dict[str, tuple[dict, object]] = {}
    for c, cfg in fresh:  # identical configs within this run: train once
        first_seen.setdefault(cfg.config_hash(), (c, cfg))
    waiting = [(c, cfg) for c, cfg in fresh if first_seen[cfg.config_hash()][0] is not c]
    fresh = list(first_seen.values())

    def finish(cell: SuiteCell, row: dict, seconds: float) -> None:
        nonlocal done
        row = {**row, "suite": suite.name, "tuned": cell.tuned, "sweep": cell.sweep}
        replaced = (done["config_hash"] == row["config_hash"]) & (done["sweep"] == cell.sweep)
        done = pd.concat([done[~replaced], pd.DataFrame([row])[RESULT_COLUMNS]], ignore_index=True)
        write_csv_atomic(done, out)
        bar.write(
            f"  {cell.method}/{cell.objective} {cell.dataset} B={row['batch_size']} "
            f"neg={row['negatives']} seed={cell.seed} {cell.sweep}"
            f"{'' if cell.tuned else ' untuned'}: "
            f"linear={row['linear_acc']:.4f} knn={row['knn_acc']:.4f} "
            f"({seconds:.1f}s{', DIVERGED' if row['diverged'] else ''})"
        )
        bar.update()

    with tracking.stage_run(
        suite.name, stage, uri=params.mlflow_uri, params={"pair": args.pair, "cells": len(cells)}
    ):
        bar = tqdm(
            total=len(todo), desc=stage, unit="cell", disable=not params.progress, file=sys.stderr
        )
        # params.executor: local processes (run_many), or Slurm / submitit-local job arrays
        cells_done = executor.run_cells(fresh, params, args.pair, digest)
        for cell, _cfg, row, history, seconds in cells_done:
            tracking.log_cell(
                suite.name,
                stage,
                params={**cell.record(), "config_hash": row["config_hash"]},
                row=row,
                history=history,
                slot=cell_slot(cell),
            )
            finish(cell, row, seconds)
        for cell, cfg in copies + waiting:
            same = (done["config_hash"] == cfg.config_hash()) & (done["code_digest"] == digest)
            row = done[same].iloc[0].to_dict()
            finish(cell, row, 0.0)
        bar.close()
    return 0
