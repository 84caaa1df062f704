"""What the YAML alone cannot judge: registry names, compatibility, options, unused
settings, repeated cells (``validate_names``); the data, encoders and built methods
(``validate_against_data``). Imports torch (lazily)."""

from __future__ import annotations

import contextlib
import itertools
import json
import warnings

from benchmark.config.cells import (
    DEFAULT_ENCODER,
    KIND_ENCODER,
    _block_cells,
    block_objectives,
    data_key,
)
from benchmark.config.checks import check_dataset_options, check_method_options
from benchmark.config.models import Block, ConfigError, Suite, one_line, suite_path


def validate_names(suite: Suite, source: str, *, check_data: bool) -> None:
    """Registry names, compatibility, options, settings the block's method or objectives do
    not take, repeated cells; with ``check_data`` also the data (see the module docstring)."""
    from benchmark.compat import HYPERPARAMETERS, TUNABLE
    from benchmark.config.cell import HYPERPARAMETER_FIELDS
    from benchmark.datasets import DATASETS
    from benchmark.encoders import ENCODERS
    from benchmark.methods import METHODS, NO_OBJECTIVE, check_compatible

    cells: dict[str, int] = {}
    tuning: dict[str, tuple[int, int]] = {}
    for i, block in enumerate(suite.blocks):
        where = f"{source}: blocks.{i}"
        for key, reg, value in (
            ("method", METHODS, block.method),
            ("dataset", DATASETS, block.dataset),
            ("encoder", ENCODERS, block.encoder),
        ):
            if value is not None and value not in reg:
                raise ConfigError(
                    one_line(f"{where}.{key}: unknown {value!r}; allowed: {', '.join(reg.names())}")
                )
        objectives = block_objectives(block)
        for objective in objectives:
            try:
                check_compatible(block.method, objective)
            except (KeyError, ValueError) as err:
                raise ConfigError(one_line(f"{where}.objectives: {err.args[0]}")) from None
        cls = METHODS.get(block.method)
        # each value alone (the first bad one is named), then each combination the grid
        # builds (a method may refuse two options together)
        for key, values in block.options.items():
            for value in values:
                check_method_options(block.method, {key: value}, f"{where}.options")
        if len(block.options) > 1:
            for combo in itertools.product(*block.options.values()):
                options = dict(zip(block.options, combo, strict=True))
                check_method_options(block.method, options, f"{where}.options")
        check_dataset_options(block.dataset, block.dataset_options, f"{where}.dataset_options")
        # a setting nothing in the block reads is a mistake, not a no-op
        given = block.model_fields_set
        if objectives == [NO_OBJECTIVE] and block.negatives != [None]:
            raise ConfigError(
                f"{where}.negatives: method {block.method!r} uses no objective, so it has no "
                f"negatives to keep (got {block.negatives!r}); allowed: leave it out"
            )
        if not cls.trains:
            unused = sorted(
                {"batch_sizes", "negatives", "epochs", "lr", "tuning_epochs", "options"} & given
            )
            if unused:
                raise ConfigError(
                    f"{where}.{unused[0]}: method {block.method!r} does not train, so it "
                    f"takes no {unused[0]}; allowed: leave it out"
                )
        if block.temperatures is not None:
            cold = [o for o in objectives if "temperature" not in TUNABLE.get(o, ())]
            if cold:
                raise ConfigError(
                    f"{where}.temperatures: objective {cold[0]!r} has no temperature; "
                    f"allowed: objectives with one ("
                    f"{', '.join(o for o, hp in TUNABLE.items() if 'temperature' in hp)})"
                )
        for key in block.objective_options:
            if block.tuned and key in (suite.search_space.model_extra or {}):
                raise ConfigError(
                    f"{where}.objective_options.{key}: the search space searches {key} for "
                    f"tuned blocks; allowed: drop one, or set tuned: false"
                )
            cold = [o for o in objectives if key not in HYPERPARAMETERS.get(o, {})]
            if key in HYPERPARAMETER_FIELDS or cold:
                why = (
                    f"{key} is tuned, or fixed by temperatures / tuned: false"
                    if key in HYPERPARAMETER_FIELDS
                    else f"objective {cold[0]!r} has no {key} (its hyperparameters: "
                    f"{', '.join(HYPERPARAMETERS.get(cold[0], {})) or 'none'})"
                )
                raise ConfigError(
                    f"{where}.objective_options.{key}: {why}; allowed: the objectives' other "
                    f"hyperparameters, for objectives that all declare them"
                )
        if "lr_batch" in given and block.lr_scaling == "none":
            raise ConfigError(
                f"{where}.lr_batch: lr_scaling is none, so lr holds at every batch size "
                f"(got lr_batch {block.lr_batch}); allowed: set lr_scaling sqrt or linear"
            )
        tunable = [o for o in objectives if suite.search_space.searched(o)]
        if "tuning_epochs" in given and (not tunable or not block.tuned):
            if objectives == [NO_OBJECTIVE]:
                why = f"method {block.method!r} uses no objective, so there is nothing to tune"
            elif tunable:
                why = "the block is not tuned (tuned: false)"
            else:
                why = (
                    f"none of its objectives ({', '.join(objectives)}) has a hyperparameter to tune"
                )
            raise ConfigError(
                f"{where}.tuning_epochs: {why} (got {block.tuning_epochs}); allowed: leave it out"
            )
        for cell in _block_cells(suite, block):
            # a pair is tuned once, with its first cell's setting (benchmark.tune)
            first, epochs = tuning.setdefault(cell.pair, (i, cell.tuning_epochs))
            if "tuning_epochs" in given and cell.tuning_epochs != epochs:
                raise ConfigError(
                    f"{where}.tuning_epochs: {cell.pair} is tuned once, with the "
                    f"tuning_epochs of blocks.{first} ({epochs}), not {cell.tuning_epochs}; "
                    f"allowed: {epochs} or leave it out"
                )
            key = json.dumps(cell.record(), sort_keys=True, default=repr)
            if key in cells and cells[key] != i:
                raise ConfigError(
                    f"{where}: repeats the cell {cell.pair} batch {cell.batch_size} "
                    f"negatives {cell.negatives} seed {cell.seed} of blocks.{cells[key]} "
                    f"(sweep {cell.sweep!r}); allowed: each cell once per sweep"
                )
            cells.setdefault(key, i)

    if check_data and not suite.validate_only:
        validate_against_data(suite, {}, source)


@contextlib.contextmanager
def quiet_deprecations():
    """Silence torch's "torch.jit.script is deprecated" FutureWarning (torch_geometric's
    layers trigger it when built): a refusal is one line on stderr, with no noise before."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        yield


def check_encoder_on(encoder: str, data, where: str) -> None:
    """Build ``encoder`` for the data's samples and run it on two of them (or the graph):
    an encoder of another data kind fails here, not in the middle of a stage."""
    import torch

    from benchmark.encoders import build_encoder

    shape = tuple(data.x.shape[1:])
    try:
        with torch.no_grad(), quiet_deprecations():
            net = build_encoder(encoder, shape).eval()
            if data.edge_index is not None:
                net(data.x, data.edge_index)
            else:
                net(data.x[:2])
    except Exception as err:  # any failure means: this encoder cannot read this data
        detail = one_line(err.args[0] if err.args else type(err).__name__)[:120]
        suggestion = KIND_ENCODER.get(data.kind, "mlp")
        raise ConfigError(
            f"{where}: {encoder!r} cannot encode {data.kind} data of sample shape "
            f"{shape} ({type(err).__name__}: {detail}); allowed: an encoder of {data.kind} "
            f"data, e.g. {suggestion}"
        ) from None


def validate_against_data(suite: Suite, prepared: dict, source: str | None = None) -> None:
    """Data directories exist, the data suits the method and the encoder, batches fit the
    training split.

    ``prepared`` maps (dataset, data_root, sorted options) to already built data;
    the others are loaded (or built) through the cache.
    """
    from benchmark.datasets import DatasetFilesMissing, prepare_dataset
    from benchmark.methods import METHODS, check_compatible

    source = source or str(suite_path(suite.name))
    probed: set[tuple] = set()
    built: set[str] = set()
    for i, block in enumerate(suite.blocks):
        where = f"{source}: blocks.{i}"
        key = data_key(block)
        data = prepared.get(key)
        if data is None:
            try:
                data = prepare_dataset(block.dataset, root=block.data_root, **block.dataset_options)
            except DatasetFilesMissing as err:
                raise ConfigError(one_line(f"{where}.data_root: {err}")) from None
            except (TypeError, ValueError) as err:
                raise ConfigError(one_line(f"{where}.dataset_options: {err}")) from None
        try:
            check_compatible(block.method, block_objectives(block)[0], data.kind)
        except ValueError as err:
            raise ConfigError(one_line(f"{where}.dataset: {err.args[0]}")) from None
        encoder = block.encoder or DEFAULT_ENCODER.get(block.dataset, "mlp")
        if (encoder, key) not in probed:
            check_encoder_on(encoder, data, f"{where}.encoder")
            probed.add((encoder, key))
        # on graphs every method sees the whole graph at each step: no batch to bound
        whole = data.kind == "graph" or METHODS.get(block.method).full_graph
        if whole and "batch_sizes" in block.model_fields_set:
            raise ConfigError(
                f"{where}.batch_sizes: method {block.method!r} trains on the whole graph of "
                f"{block.dataset!r} at every step, so it takes no batch size (got "
                f"{block.batch_sizes}); allowed: leave it out"
            )
        n_train = data.num_train
        too_big = [b for b in block.batch_sizes if b > n_train]
        if too_big and not whole and METHODS.get(block.method).trains:  # random draws none
            raise ConfigError(
                f"{where}.batch_sizes: {too_big[0]} is larger than the training "
                f"split of {block.dataset!r} ({n_train} samples); allowed: 2 to {n_train}"
            )
        check_methods_build(block, encoder, data, where, built)


def check_methods_build(block: Block, encoder: str, data, where: str, built: set[str]) -> None:
    """Build the block's methods (each objective and option combination) on its data, as
    a cell will: what only a method can judge (DIM needs a convolutional encoder, CLIP
    paired data, CPC a horizon shorter than the sequence, ...) is refused here, before
    anything runs, rather than in the middle of a train stage. ``built`` skips repeats."""
    import torch

    from benchmark.config.cell import CellConfig
    from benchmark.train import build_method

    combos = [
        dict(zip(block.options, combo, strict=True))
        for combo in itertools.product(*block.options.values())
    ]
    for objective in block_objectives(block):
        for options in combos:
            cfg = CellConfig(
                method=block.method,
                objective=objective,
                dataset=block.dataset,
                encoder=encoder,
                batch_size=block.batch_sizes[0],
                method_options=options,
                dataset_options=dict(block.dataset_options),
                data_root=block.data_root,
                objective_options=dict(block.objective_options),
            )
            key = json.dumps([cfg.config_hash(), data_key(block)], default=repr)
            if key in built:
                continue
            built.add(key)
            shown = f" {json.dumps(options, default=repr)}" if options else ""
            try:
                with torch.no_grad(), quiet_deprecations():
                    build_method(cfg, data, torch.device("cpu"))
            except (ValueError, TypeError, KeyError) as err:
                detail = one_line(err.args[0] if err.args else type(err).__name__)
                raise ConfigError(f"{where}: {block.method}-{objective}{shown}: {detail}") from None
            except (RuntimeError, MemoryError) as err:  # an allocation the options made absurd
                detail = one_line(err.args[0] if err.args else type(err).__name__)[:200]
                raise ConfigError(
                    f"{where}.options:{shown or ' (defaults)'} the method cannot be built: {detail}"
                ) from None
