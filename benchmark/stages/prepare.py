"""`python -m benchmark prepare`: build every dataset the suite uses, with its seeded splits.

Each is cached once under data/prepared/ (atomic writes) and reused by every cell.
"""

from __future__ import annotations

import argparse
import time

from benchmark.cli import UserError
from benchmark.config import ConfigError, load_params, load_suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml")


def run(args: argparse.Namespace) -> int:
    from benchmark.datasets import prepare_dataset

    try:
        params = load_params(args.params)
        suite = load_suite(params.suite, check_data=False)
    except ConfigError as err:
        raise UserError(str(err)) from None
    seen = set()
    for block in suite.blocks:
        key = (block.dataset, block.data_root, tuple(sorted(block.dataset_options.items())))
        if key in seen or suite.validate_only:
            continue
        seen.add(key)
        t0 = time.perf_counter()
        try:
            data = prepare_dataset(block.dataset, root=block.data_root, **block.dataset_options)
        except (FileNotFoundError, TypeError, ValueError) as err:
            raise UserError(f"prepare: {block.dataset}: {err}") from None
        sizes = ", ".join(f"{k} {len(v)}" for k, v in data.splits.items())
        print(
            f"prepare: {block.dataset} {tuple(data.x.shape)} ({sizes}) "
            f"in {time.perf_counter() - t0:.1f}s"
        )
    try:  # now the full validation (batch sizes against the splits, data kinds)
        load_suite(params.suite)
    except ConfigError as err:
        raise UserError(str(err)) from None
    return 0
