"""What the stage commands share: params/suite loading, a pair's cells, atomic CSV I/O."""

from __future__ import annotations

import os
from pathlib import Path

from benchmark import atomic
from benchmark.config import (
    ConfigError,
    Params,
    Suite,
    SuiteCell,
    all_pairs,
    load_params,
    load_suite,
    suite_cells,
    suite_pairs,
)
from benchmark.layout import (  # noqa: F401  (the stages read them from here too)
    RESULT_COLUMNS,
    RUNS_DIR,
    TRIAL_COLUMNS,
    TRIALS_DIR,
    TUNED_DIR,
)


def load(
    params_path: str | Path = "params.yaml", *, check_data: bool = True
) -> tuple[Params, Suite]:
    """params.yaml and its suite, validated (``check_data``: also against the prepared data,
    which the prepare stage has already done for the stages after it)."""
    params = load_params(params_path)
    return params, load_suite(params.suite, check_data=check_data)


def _known_pair(pair: str) -> None:
    pairs = all_pairs()
    if pair not in pairs:
        raise ConfigError(f"--pair: no pair {pair!r} in any suite; allowed: {', '.join(pairs)}")


def pair_cells(params: Params, suite: Suite, pair: str) -> list[SuiteCell]:
    _known_pair(pair)
    return [c for c in suite_cells(suite, params) if c.pair == pair]


def load_for_pair(
    pair: str, params_path: str | Path = "params.yaml"
) -> tuple[Params, Suite, list[SuiteCell]]:
    """params, suite and the pair's cells. A pair the suite does not use is answered from
    the YAML alone (no torch import), so its stages cost a fraction of a second."""
    params = load_params(params_path)
    suite = load_suite(params.suite, check_names=False)
    if suite.validate_only:  # gpu: `prepare` checks it against its data; nothing runs here
        raise ConfigError(
            f"suite {suite.name!r} is validate_only: prepare checked it, and its cells are "
            f"not trained on this machine; allowed: set validate_only: false in "
            f"suites/{params.suite}.yaml to run it (on a GPU machine)"
        )
    _known_pair(pair)
    if pair not in suite_pairs(suite):
        return params, suite, []
    suite = load_suite(params.suite, check_data=False)
    return params, suite, pair_cells(params, suite, pair)


def write_header_only(path: Path, columns: list[str]) -> None:
    """An empty CSV (header line only), atomically, without importing pandas."""
    atomic.write_text(path, ",".join(columns) + "\n")


write_csv_atomic = atomic.write_csv


def read_csv(path: Path, columns: list[str]):
    import pandas as pd

    if path.is_file() and path.stat().st_size > 0:
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError:
            pass
    return pd.DataFrame(columns=columns)


def apply_device(params: Params) -> None:
    """params.device: 'auto' picks CUDA when present; 'cpu' hides the GPU.

    params.threads: torch's CPU threads. 1 by default: the cells are small, and with more
    threads than free cores (a shared machine) OpenMP's barriers slow small ops down by
    an order of magnitude (measured: 0.7 s vs 26 s for one SimCLR cell under load).
    """
    import torch

    if params.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(params.threads)
