"""`python -m benchmark prepare`: build every dataset the suite uses, with its seeded
splits, and write the suite's grid, one file per pair.

Everything is built in memory and validated (params.yaml, the suite, data directories,
data kinds, encoders, batch sizes against the training splits) before anything is
written, so a bad suite leaves no half-prepared cache behind. Each dataset is then cached
once under data/prepared/ (atomic writes) and reused by every cell.

``reports/cells/<pair>.json`` holds everything of the suite the pair's tune@ and train@
stages read (``benchmark.config.pair_grid``: its cells, the tuning settings, the search
ranges of what its objective searches); a pair the suite does not use gets an empty
list. Those stages depend on their pair's file instead of the whole suite file, so an
edit to one block of a suite reruns only the stages of the pairs whose cells it changes
(DVC compares hashes: a file rewritten with the same content changes nothing).
"""

from __future__ import annotations

import argparse
import json
import time

from benchmark import atomic
from benchmark.config import (
    ConfigError,
    all_pairs,
    data_key,
    load_params,
    load_suite,
    one_line,
    pair_grid,
    suite_cells,
    suite_path,
    validate_against_data,
)
from benchmark.errors import UserError
from benchmark.layout import CELLS_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml")


def run(args: argparse.Namespace) -> int:
    from benchmark.datasets import cache_path, prepare_dataset

    try:
        params = load_params(args.params)
        suite = load_suite(params.suite, check_data=False)
    except ConfigError as err:
        raise UserError(str(err)) from None
    import torch

    torch.set_num_threads(params.threads)
    built: dict[tuple, tuple] = {}
    for i, block in enumerate(suite.blocks):
        key = data_key(block)
        if key in built:
            continue
        where = f"{suite_path(params.suite)}: blocks.{i}"
        t0 = time.perf_counter()
        try:
            data = prepare_dataset(
                block.dataset, root=block.data_root, cache_dir=None, **block.dataset_options
            )
        except FileNotFoundError as err:
            raise UserError(one_line(f"{where}.data_root: {err}")) from None
        except (TypeError, ValueError, IndexError, ZeroDivisionError, RuntimeError) as err:
            # the builder refused (or choked on) an option value: the options are the input
            detail = err.args[0] if err.args else type(err).__name__
            raise UserError(one_line(f"{where}.dataset_options: {detail}")) from None
        built[key] = (block, data, time.perf_counter() - t0)
    try:
        validate_against_data(
            suite, {k: v[1] for k, v in built.items()}, str(suite_path(params.suite))
        )
    except ConfigError as err:
        raise UserError(str(err)) from None
    if suite.validate_only:  # checked against its data, never cached (nor run)
        print(f"prepare: suite {suite.name!r} is valid (validate_only: nothing written)")
        return 0
    write_grid(params, suite)
    for block, data, seconds in built.values():
        path = cache_path(block.dataset, **block.dataset_options)
        data.save(path)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in data.splits.items())
        print(
            f"prepare: {block.dataset} {tuple(data.x.shape)} ({sizes}) in {seconds:.1f}s -> {path}"
        )
    return 0


def write_grid(params, suite) -> None:
    """reports/cells/<pair>.json for every pair of any suite (see the module docstring);
    a file whose content is unchanged is left as it is."""
    pairs, changed = all_pairs(), 0
    cells = suite_cells(suite, params)
    for pair in pairs:
        path = CELLS_DIR / f"{pair}.json"
        grid = pair_grid(suite, pair, params, expanded=cells)
        text = json.dumps(grid, indent=1, sort_keys=True, default=str)
        if not path.is_file() or path.read_text(encoding="utf-8") != text + "\n":
            atomic.write_text(path, text + "\n")
            changed += 1
    print(f"prepare: the grid of {len(pairs)} pairs under {CELLS_DIR}/ ({changed} rewritten)")
