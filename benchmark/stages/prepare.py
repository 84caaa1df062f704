"""`python -m benchmark prepare`: build every dataset the suite uses, with its seeded splits.

Everything is built in memory and validated (params.yaml, the suite, data directories,
data kinds, encoders, batch sizes against the training splits) before anything is
written, so a bad suite leaves no half-prepared cache behind. Each dataset is then cached
once under data/prepared/ (atomic writes) and reused by every cell.
"""

from __future__ import annotations

import argparse
import time

from benchmark.config import (
    ConfigError,
    data_key,
    load_params,
    load_suite,
    one_line,
    suite_path,
    validate_against_data,
)
from benchmark.errors import UserError


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
    for block, data, seconds in built.values():
        path = cache_path(block.dataset, **block.dataset_options)
        data.save(path)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in data.splits.items())
        print(
            f"prepare: {block.dataset} {tuple(data.x.shape)} ({sizes}) in {seconds:.1f}s -> {path}"
        )
    return 0
