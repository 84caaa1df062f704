"""Suites (declarative grids) and params.yaml, validated when loaded (pydantic).

A suite is a list of *blocks*; a block expands into grid cells: (method, objective) x
batch sizes x negative counts x method-option combinations x seeds, on one dataset and
encoder. Every bad value gives one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

SUITES_DIR = Path("suites")
Sweep = Literal["batch", "negatives", "queue", "method"]


class ConfigError(ValueError):
    """One line: where, what, what is allowed."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(Strict):
    low: float = Field(gt=0)
    high: float = Field(gt=0)
    log: bool = False


class SearchSpace(Strict):
    temperature: Range = Range(low=0.03, high=1.0, log=True)
    margin: Range = Range(low=0.05, high=1.5)


class Tuning(Strict):
    trials: int | None = Field(None, ge=0)  # caps params.yaml's tune.trials for this suite
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(256, ge=2)
    seed: int = 0


class Block(Strict):
    """One declarative grid block; lists multiply."""

    sweep: Sweep = "method"
    method: str
    objectives: list[str] | Literal["all", "none"] = "all"
    dataset: str = "digits"
    encoder: str | None = None  # default: by the dataset's kind
    batch_sizes: list[int] = [256]
    negatives: list[int | None] = [None]
    options: dict[str, list[Any]] = {}
    epochs: int | None = None
    tuning_epochs: int | None = Field(None, ge=1)  # each Optuna trial's; default tuning.epochs
    lr: float | None = Field(None, gt=0)  # this block's learning rate; default the suite's
    seeds: list[int] | None = None
    tuned: bool = True  # cells use Optuna's best values; False = the objective's defaults
    dataset_options: dict[str, Any] = {}
    data_root: str | None = None

    @field_validator("batch_sizes")
    @classmethod
    def _positive_batches(cls, v: list[int]) -> list[int]:
        for b in v:
            if b < 2:
                raise ValueError(f"batch size must be >= 2, got {b}")
        return v


class Suite(Strict):
    name: str
    description: str = ""
    epochs: int = Field(20, ge=0)
    seeds: list[int] = [0]
    lr: float = Field(2e-3, gt=0)
    search_space: SearchSpace = SearchSpace()
    tuning: Tuning = Tuning()
    blocks: list[Block]
    validate_only: bool = False  # gpu: checked here, not run


class TuneParams(Strict):
    trials: int = Field(8, ge=0)
    storage: str = "sqlite:///optuna.db"
    sampler_seed: int = 0


class Params(Strict):
    """params.yaml: the suite to run and global settings."""

    suite: str = "core"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(1, ge=1)  # CPU threads per process (torch.set_num_threads)
    workers: int = Field(2, ge=1)  # cells trained in parallel processes by a train stage
    epochs_scale: float = Field(1.0, gt=0)
    seeds: list[int] | None = None  # overrides every suite's seeds when set
    progress: bool = True
    tune: TuneParams = TuneParams()
    mlflow_uri: str = "sqlite:///mlflow.db"


def _one_line(err: ValidationError, source: str) -> ConfigError:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    value = e.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    msg = e["msg"].removeprefix("Value error, ")
    return ConfigError(f"{source}: {loc}: {msg}{shown}" if loc else f"{source}: {msg}")


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        return Params.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise _one_line(err, str(path)) from None


def suite_path(name: str) -> Path:
    return SUITES_DIR / f"{name}.yaml"


def load_suite(
    name_or_path: str | Path, *, check_data: bool = True, check_names: bool = True
) -> Suite:
    """Load and validate a suite by name (suites/<name>.yaml) or path.

    ``check_names`` validates registry names and compatibility (imports torch);
    ``check_data`` also the data (batch sizes against the splits, data directories).
    """
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") else suite_path(str(name_or_path))
    if not path.is_file():
        names = sorted(f.stem for f in SUITES_DIR.glob("*.yaml"))
        raise ConfigError(f"suite: {name_or_path!r} not found; allowed: {', '.join(names)}")
    try:
        suite = Suite.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise _one_line(err, str(path)) from None
    if check_names:
        validate_names(suite, str(path), check_data=check_data)
    return suite


def validate_names(suite: Suite, source: str, *, check_data: bool) -> None:
    """Registry names, compatibility, batch sizes against the training split, data dirs."""
    from benchmark.datasets import DATASETS
    from benchmark.encoders import ENCODERS
    from benchmark.methods import METHODS, check_compatible

    for i, block in enumerate(suite.blocks):
        where = f"{source}: blocks.{i}"
        for key, reg, value in (
            ("method", METHODS, block.method),
            ("dataset", DATASETS, block.dataset),
            ("encoder", ENCODERS, block.encoder),
        ):
            if value is not None and value not in reg:
                raise ConfigError(
                    f"{where}.{key}: unknown {value!r}; allowed: {', '.join(reg.names())}"
                )
        for objective in block_objectives(block):
            try:
                check_compatible(block.method, objective)
            except (KeyError, ValueError) as err:
                raise ConfigError(f"{where}.objectives: {err.args[0]}") from None
        options = METHODS.get(block.method).option_defaults
        for key in block.options:
            if key not in options:
                raise ConfigError(
                    f"{where}.options: method {block.method!r} has no option "
                    f"{key!r}; allowed: {', '.join(sorted(options)) or 'none'}"
                )

    if check_data and not suite.validate_only:
        validate_against_data(suite, {}, source)


def validate_against_data(suite: Suite, prepared: dict, source: str | None = None) -> None:
    """Data directories exist, the data suits the method, batches fit the training split.

    ``prepared`` maps (dataset, data_root, sorted options) to already built data;
    the others are loaded (or built) through the cache.
    """
    from benchmark.datasets import DatasetFilesMissing, prepare_dataset
    from benchmark.methods import METHODS, check_compatible

    source = source or str(suite_path(suite.name))
    for i, block in enumerate(suite.blocks):
        where = f"{source}: blocks.{i}"
        key = (block.dataset, block.data_root, tuple(sorted(block.dataset_options.items())))
        data = prepared.get(key)
        if data is None:
            try:
                data = prepare_dataset(block.dataset, root=block.data_root, **block.dataset_options)
            except DatasetFilesMissing as err:
                raise ConfigError(f"{where}.data_root: {err}") from None
            except TypeError as err:
                raise ConfigError(f"{where}.dataset_options: {err}") from None
        try:
            check_compatible(block.method, block_objectives(block)[0], data.kind)
        except ValueError as err:
            raise ConfigError(f"{where}.dataset: {err.args[0]}") from None
        n_train = len(data.splits["train"])
        too_big = [b for b in block.batch_sizes if b > n_train]
        # on graphs every method sees the whole graph at each step: no batch to bound
        if too_big and data.kind != "graph" and not METHODS.get(block.method).full_graph:
            raise ConfigError(
                f"{where}.batch_sizes: {too_big[0]} is larger than the training "
                f"split of {block.dataset!r} ({n_train} samples)"
            )


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


def pair_name(method: str, objective: str) -> str:
    return f"{method}-{objective}"


def suite_cells(suite: Suite, params: Params | None = None) -> list[dict]:
    """Every cell of the suite as a dict: CellConfig fields plus sweep, tuned, pair."""
    params = params or Params()
    seeds_override = params.seeds
    cells = []
    for block in suite.blocks:
        encoder = block.encoder or DEFAULT_ENCODER.get(block.dataset, "mlp")
        epochs = block.epochs if block.epochs is not None else suite.epochs
        epochs = max(1, round(epochs * params.epochs_scale)) if epochs else 0
        seeds = seeds_override or block.seeds or suite.seeds
        keys = list(block.options)
        combos = list(itertools.product(*block.options.values())) or [()]
        for objective in block_objectives(block):
            for b, k, combo, seed in itertools.product(
                block.batch_sizes, block.negatives, combos, seeds
            ):
                cells.append(
                    {
                        "pair": pair_name(block.method, objective),
                        "sweep": block.sweep,
                        "tuned": block.tuned,
                        "method": block.method,
                        "objective": objective,
                        "dataset": block.dataset,
                        "encoder": encoder,
                        "batch_size": b,
                        "negatives": k,
                        "seed": seed,
                        "epochs": epochs,
                        "tuning_epochs": block.tuning_epochs or suite.tuning.epochs,
                        "lr": block.lr or suite.lr,
                        "method_options": dict(zip(keys, combo, strict=True)),
                        "dataset_options": dict(block.dataset_options),
                        "data_root": block.data_root,
                    }
                )
    return cells


def suite_pairs(suite: Suite) -> list[str]:
    seen: dict[str, None] = {}
    for block in suite.blocks:
        for objective in block_objectives(block):
            seen[pair_name(block.method, objective)] = None
    return list(seen)


def all_pairs(suites_dir: Path = SUITES_DIR) -> dict[str, tuple[str, str]]:
    """pair name -> (method, objective) of every pair any suite in ``suites_dir`` uses, in
    suite-file then block order: the train@/tune@ stages of dvc.yaml (benchmark.pipeline)."""
    seen: dict[str, tuple[str, str]] = {}
    for path in sorted(suites_dir.glob("*.yaml")):
        suite = load_suite(path, check_names=False)
        for block in suite.blocks:
            for objective in block_objectives(block):
                seen.setdefault(pair_name(block.method, objective), (block.method, objective))
    return seen
