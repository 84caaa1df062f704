"""Suites (declarative grids) and params.yaml, validated when loaded (pydantic).

A suite is a list of *blocks*; a block expands into grid cells: (method, objective) x
batch sizes x negative counts x method-option combinations x seeds, on one dataset and
encoder. Every bad value gives one line naming the key, the value and what is allowed.

Three levels, each a superset of the one before:

- the YAML alone (no torch): types, ranges, empty or repeated lists, repeated blocks,
  unknown keys (``load_suite(..., check_names=False)``, what dvc.yaml is generated from);
- the registries (``check_names``, imports torch): method, objective, dataset and
  encoder names, method/objective compatibility, method and dataset options (their
  names, and values against the option's default: an integer option whose default is
  >= 1 takes integers >= 1, ...; a method's own ``check_options(options)`` when it has
  one), settings that the block's method or objectives do not take, repeated cells;
- the data (``check_data``, what the prepare stage runs): data directories, data kinds,
  encoders against the samples' shape, batch sizes against the training split.
"""

from __future__ import annotations

from benchmark.config.cell import (
    HYPERPARAMETER_FIELDS,
    PRECISIONS,
    SPEED_DEFAULTS,
    CellConfig,
    cell_config,
)
from benchmark.config.cells import (
    DEFAULT_ENCODER,
    KIND_ENCODER,
    SuiteCell,
    _block_cells,
    block_objectives,
    data_key,
    pair_grid,
    pair_name,
    suite_cells,
    suite_pairs,
    testbed_key,
    testbed_label,
)
from benchmark.config.checks import (
    _at,
    _bad_value,
    check_dataset_options,
    check_method_options,
    check_value,
)
from benchmark.config.loading import (
    _construct_mapping,
    _model_at,
    _one_line,
    _read_yaml,
    _UniqueKeyLoader,
    all_pairs,
    load_params,
    load_suite,
    searched_pairs,
)
from benchmark.config.models import (
    MAX_COUNT,
    MAX_DATASET_OPTION,
    MAX_EPOCHS_SCALE,
    MAX_OPTION,
    MAX_PROCESSES,
    MAX_SEED,
    SUITES_DIR,
    Block,
    ConfigError,
    Count,
    Name,
    Number,
    Params,
    Processes,
    Range,
    SearchSpace,
    Seed,
    Strict,
    Suite,
    Sweep,
    TuneParams,
    Tuning,
    _distinct,
    _objectives,
    _option_values,
    _shown,
    _yaml_number,
    one_line,
    suite_path,
)
from benchmark.config.validation import (
    check_encoder_on,
    check_methods_build,
    quiet_deprecations,
    validate_against_data,
    validate_names,
)

__all__ = [
    "DEFAULT_ENCODER",
    "HYPERPARAMETER_FIELDS",
    "PRECISIONS",
    "SPEED_DEFAULTS",
    "CellConfig",
    "KIND_ENCODER",
    "MAX_COUNT",
    "MAX_DATASET_OPTION",
    "MAX_EPOCHS_SCALE",
    "MAX_OPTION",
    "MAX_PROCESSES",
    "MAX_SEED",
    "SUITES_DIR",
    "Block",
    "ConfigError",
    "Count",
    "Name",
    "Number",
    "Params",
    "Processes",
    "Range",
    "SearchSpace",
    "Seed",
    "Strict",
    "Suite",
    "SuiteCell",
    "Sweep",
    "TuneParams",
    "Tuning",
    "_UniqueKeyLoader",
    "_at",
    "_bad_value",
    "_block_cells",
    "_construct_mapping",
    "_distinct",
    "_model_at",
    "_objectives",
    "_one_line",
    "_option_values",
    "_read_yaml",
    "_shown",
    "_yaml_number",
    "all_pairs",
    "searched_pairs",
    "block_objectives",
    "cell_config",
    "check_dataset_options",
    "check_encoder_on",
    "check_method_options",
    "check_methods_build",
    "check_value",
    "data_key",
    "load_params",
    "load_suite",
    "one_line",
    "pair_grid",
    "pair_name",
    "quiet_deprecations",
    "suite_cells",
    "suite_pairs",
    "testbed_key",
    "testbed_label",
    "suite_path",
    "validate_against_data",
    "validate_names",
]
