"""`python -m benchmark train --pair METHOD-OBJECTIVE`: the grid cells of one pair.

A cell is the unit of work: when it finishes its row is added to
``reports/runs/<pair>.csv`` by an atomic rewrite, so an interruption at any moment
loses at most the unfinished cell; the next run skips every cell whose ``config_hash`` is
already there. Rows of cells no longer in the suite are dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmark.cli import UserError
from benchmark.config import ConfigError
from benchmark.stages.common import (
    RESULT_COLUMNS,
    RUNS_DIR,
    TUNED_DIR,
    apply_device,
    load,
    pair_cells,
    read_csv,
    write_csv_atomic,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", required=True, help="METHOD-OBJECTIVE, e.g. simclr-triplet")
    parser.add_argument("--params", default="params.yaml")


def cell_config(cell: dict, tuned: dict):
    from benchmark.train import CellConfig

    hp = tuned if cell["tuned"] else {}
    return CellConfig(
        method=cell["method"],
        objective=cell["objective"],
        dataset=cell["dataset"],
        encoder=cell["encoder"],
        batch_size=cell["batch_size"],
        negatives=cell["negatives"],
        seed=cell["seed"],
        epochs=cell["epochs"],
        lr=cell["lr"],
        method_options=cell["method_options"],
        dataset_options=cell["dataset_options"],
        data_root=cell["data_root"],
        temperature=hp.get("temperature"),
        margin=hp.get("margin"),
    )


def run(args: argparse.Namespace) -> int:
    try:
        params, suite = load(args.params)
        cells = pair_cells(params, suite, args.pair)
    except ConfigError as err:
        raise UserError(str(err)) from None
    apply_device(params)
    out = RUNS_DIR / f"{args.pair}.csv"
    tuned_path = TUNED_DIR / f"{args.pair}.json"
    tuned = json.loads(tuned_path.read_text())["params"] if tuned_path.is_file() else {}
    configs = [(cell, cell_config(cell, tuned)) for cell in cells]
    wanted = {cfg.config_hash() for _, cfg in configs}
    done = read_csv(out, RESULT_COLUMNS)
    done = done[done["config_hash"].isin(wanted)] if len(done) else done
    write_csv_atomic(done, out)  # drop rows of cells that left the suite
    todo = [(c, cfg) for c, cfg in configs if cfg.config_hash() not in set(done["config_hash"])]
    print(
        f"train@{args.pair}: {len(cells)} cells, {len(cells) - len(todo)} already done, "
        f"{len(todo)} to run"
    )
    if not todo:
        return 0
    import pandas as pd
    from tqdm.auto import tqdm

    from benchmark import tracking
    from benchmark.train import run_cell, val_knn_tracker

    stage = f"train@{args.pair}"
    with tracking.stage_run(
        suite.name, stage, uri=params.mlflow_uri, params={"pair": args.pair, "cells": len(cells)}
    ):
        bar = tqdm(todo, desc=stage, unit="cell", disable=not params.progress, file=sys.stderr)
        for cell, cfg in bar:
            t0 = time.perf_counter()
            history: list[dict] = []
            try:
                row = run_cell(cfg, on_epoch=val_knn_tracker(history), progress=params.progress)
            except (ValueError, KeyError, FileNotFoundError) as err:
                raise UserError(f"{stage}: cell {cfg.config_hash()}: {err}") from None
            row.update(suite=suite.name, tuned=cell["tuned"], sweep=cell["sweep"])
            tracking.log_cell(
                suite.name,
                stage,
                params={**cell, "config_hash": row["config_hash"]},
                row=row,
                history=history,
            )
            done = pd.concat([done, pd.DataFrame([row])[RESULT_COLUMNS]], ignore_index=True)
            write_csv_atomic(done, out)
            bar.write(
                f"  {cfg.method}/{cfg.objective} {cfg.dataset} B={row['batch_size']} "
                f"neg={row['negatives']} seed={cfg.seed} tuned={cell['tuned']}: "
                f"linear={row['linear_acc']:.4f} knn={row['knn_acc']:.4f} "
                f"({time.perf_counter() - t0:.1f}s{', DIVERGED' if row['diverged'] else ''})"
            )
    return 0
