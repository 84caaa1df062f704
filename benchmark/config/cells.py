"""A suite's grid: blocks expanded into typed cells (``SuiteCell``), pairs, default
encoders, data keys."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.config.cell import CellConfig, cell_config
from benchmark.config.models import Block, Params, Suite


@dataclass(frozen=True)
class SuiteCell:
    """One cell of a suite's grid: where it sits (its pair, sweep, whether it is tuned and
    with how many tuning epochs) and the settings its block gives it. ``config`` turns it
    into the CellConfig that trains, at the hyperparameters the caller decides."""

    pair: str
    sweep: str
    tuned: bool
    method: str
    objective: str
    dataset: str
    encoder: str
    batch_size: int
    negatives: int | None
    seed: int
    epochs: int
    tuning_epochs: int
    lr: float
    method_options: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    data_root: str | None = None
    temperature: float | None = None  # a temperature sweep's fixed point
    objective_options: dict = field(default_factory=dict)  # the block's fixed ones
    precision: str = "fp32"

    def config(self, hyperparameters: Mapping[str, Any] | None = None, **overrides) -> CellConfig:
        """The CellConfig of this cell at ``hyperparameters`` (tuned values, a trial's point:
        the caller decides; see ``trained_config``) with ``overrides`` of any field (tuning's
        batch size, seed and epochs)."""
        return cell_config(asdict(self), hyperparameters, **overrides)

    def trained_config(self, tuned: Mapping[str, Any]) -> CellConfig:
        """What the train stage runs: the pair's ``tuned`` values when the cell is tuned,
        a temperature sweep's fixed point over them."""
        hp = dict(tuned) if self.tuned else {}
        if self.temperature is not None:
            hp["temperature"] = self.temperature
        return self.config(hp)

    def record(self) -> dict:
        """The cell as plain JSON values: what names it in study keys, MLflow params and
        grid slots. The settings added after the first grids (a fixed temperature, the
        objective's options, the speed path) appear only when a block sets them, so the
        cells that predate them keep their names."""
        out = asdict(self)
        for key, unset in (("temperature", None), ("objective_options", {}), ("precision", "fp32")):
            if out[key] == unset:
                del out[key]
        return out


def _block_cells(suite: Suite, block: Block, params: Params | None = None) -> list[SuiteCell]:
    params = params or Params()
    encoder = block.encoder or DEFAULT_ENCODER.get(block.dataset, "mlp")
    epochs = block.epochs if block.epochs is not None else suite.epochs
    epochs = max(1, round(epochs * params.epochs_scale)) if epochs else 0
    seeds = params.seeds or block.seeds or suite.seeds
    keys = list(block.options)
    combos = list(itertools.product(*block.options.values())) or [()]
    temperatures = block.temperatures or [None]
    power = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}[block.lr_scaling]
    lr = block.lr or suite.lr
    cells = []
    for objective in block_objectives(block):
        for b, k, combo, t, seed in itertools.product(
            block.batch_sizes, block.negatives, combos, temperatures, seeds
        ):
            cells.append(
                SuiteCell(
                    pair=pair_name(block.method, objective),
                    sweep=block.sweep,
                    tuned=block.tuned,
                    method=block.method,
                    objective=objective,
                    dataset=block.dataset,
                    encoder=encoder,
                    batch_size=b,
                    negatives=k,
                    seed=seed,
                    epochs=epochs,
                    tuning_epochs=block.tuning_epochs or suite.tuning.epochs,
                    lr=lr * (b / block.lr_batch) ** power,
                    method_options=dict(zip(keys, combo, strict=True)),
                    dataset_options=dict(block.dataset_options),
                    data_root=block.data_root,
                    temperature=t,
                    objective_options=dict(block.objective_options),
                    precision=block.precision,
                )
            )
    return cells


def data_key(block: Block) -> tuple:
    """What identifies a block's prepared data (dataset, data root, options)."""
    options = tuple(
        sorted(
            (k, json.dumps(v, sort_keys=True, default=repr))
            for k, v in block.dataset_options.items()
        )
    )
    return (block.dataset, block.data_root, options)


def block_objectives(block: Block) -> list[str]:
    from benchmark.compat import NO_OBJECTIVE, compatible_objectives

    if block.objectives == "all":
        return list(compatible_objectives(block.method))
    if block.objectives == "none":
        return [NO_OBJECTIVE]
    return list(block.objectives)


DEFAULT_ENCODER = {
    "digits": "cnn2d",
    "mnist": "cnn2d",
    "cifar10": "resnet18",
    "stl10": "resnet18",
    "mnist1d": "cnn1d",
    "mnist1d_pairs": "cnn1d",
    "csbm": "gcn",
    "cora": "gcn",
    "gaussian_mi": "mlp",
}


# the encoder for each kind of data when neither the block nor the dataset names one
KIND_ENCODER = {"image": "cnn2d", "sequence": "cnn1d", "graph": "gcn", "vectors": "mlp"}


def testbed_key(cell: SuiteCell) -> str:
    """What a cell is tuned on: its data (dataset, options, root) and encoder. A pair is
    tuned once per testbed it appears on (benchmark.tune)."""
    keys = ("dataset", "encoder", "dataset_options", "data_root")
    return json.dumps({k: getattr(cell, k) for k in keys}, sort_keys=True, default=repr)


def testbed_label(cell: SuiteCell) -> str:
    """``dataset / encoder`` plus the dataset options that set it apart, for people."""
    options = ", ".join(f"{k}={v}" for k, v in sorted(cell.dataset_options.items()))
    return f"{cell.dataset} / {cell.encoder}" + (f" ({options})" if options else "")


def pair_name(method: str, objective: str) -> str:
    return f"{method}-{objective}"


def suite_cells(suite: Suite, params: Params | None = None) -> list[SuiteCell]:
    """Every cell of the suite, block by block."""
    return [cell for block in suite.blocks for cell in _block_cells(suite, block, params)]


def pair_grid(
    suite: Suite,
    pair: str,
    params: Params | None = None,
    expanded: list[SuiteCell] | None = None,
) -> dict:
    """Everything of the suite one pair's tune and train stages read, as JSON values: the
    suite's name, the pair's cells, the tuning settings and the search space's ranges for
    what its objective searches (reports/cells/<pair>.json, the key-level dep of its
    stages: an edit to another block leaves it unchanged). ``expanded``: the suite's cells
    when the caller has them already (one expansion for all pairs)."""
    if expanded is None:
        expanded = suite_cells(suite, params)
    cells = [c for c in expanded if c.pair == pair]
    space = suite.search_space
    searched = space.searched(cells[0].objective) if cells else ()
    return {
        "suite": suite.name,
        "pair": pair,
        "validate_only": suite.validate_only,
        "cells": [c.record() for c in cells],
        "tuning": suite.tuning.model_dump(),
        "search_space": {name: space.range(name).model_dump() for name in searched},
    }


def suite_pairs(suite: Suite) -> list[str]:
    seen: dict[str, None] = {}
    for block in suite.blocks:
        for objective in block_objectives(block):
            seen[pair_name(block.method, objective)] = None
    return list(seen)
