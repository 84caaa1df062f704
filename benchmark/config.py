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

import contextlib
import itertools
import json
import math
import re
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

SUITES_DIR = Path("suites")
Sweep = Literal["batch", "negatives", "queue", "method"]

# sanity bounds: beyond them a number is a typo (and overflows int32/int64 code paths)
MAX_COUNT = 2**31 - 1  # epochs, batch sizes, negatives, trials
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_PROCESSES = 1024  # threads, workers
MAX_EPOCHS_SCALE = 1000.0
MAX_OPTION = 2**20  # an integer method option (queue and bank sizes, widths, horizons)
MAX_DATASET_OPTION = 10**6  # an integer dataset option (sizes of the generated testbeds)


class ConfigError(ValueError):
    """One line: where, what, what is allowed."""


def one_line(text: object) -> str:
    """``text`` on one line (error messages of other modules may hold newlines)."""
    return " ".join(str(text).split())


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads ``1e-3`` as a string; accept it as the number it means."""
    if isinstance(value, str) and re.fullmatch(
        r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value
    ):
        return float(value)
    return value


Number = Annotated[float, BeforeValidator(_yaml_number)]
Name = Annotated[str, StringConstraints(min_length=1)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Processes = Annotated[int, Field(ge=1, le=MAX_PROCESSES)]


def _distinct(values: list | None, what: str, plural: str | None = None) -> list | None:
    """Refuse an empty list or a repeated entry (each would silently drop or double cells)."""
    if values is None:
        return values
    if not values:
        raise ValueError(f"must not be empty; allowed: a list of at least one {what}")
    seen: list = []
    for v in values:
        if any(v == s and type(v) is type(s) for s in seen):
            raise ValueError(f"{v!r} appears twice; allowed: distinct {plural or what + 's'}")
        seen.append(v)
    return values


class Strict(BaseModel):
    # strict: no silent coercion ("10" is not 10, 1.0 is not an integer, 1 is not true)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Range(Strict):
    low: Number = Field(gt=0)
    high: Number = Field(gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low {self.low:g} is above high {self.high:g}; allowed: low <= high")
        return self


class SearchSpace(Strict):
    temperature: Range = Range(low=0.03, high=1.0, log=True)
    margin: Range = Range(low=0.05, high=1.5)


class Tuning(Strict):
    trials: Count | None = None  # caps params.yaml's tune.trials for this suite
    epochs: int = Field(10, ge=1, le=MAX_COUNT)
    batch_size: int = Field(256, ge=2, le=MAX_COUNT)
    seed: Seed = 0


def _objectives(value: Any) -> Any:
    if isinstance(value, str) and value in ("all", "none"):
        return value
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return _distinct(value, "objective name")
    raise ValueError("allowed: all, none or a list of distinct objective names")


def _option_values(values: list) -> list:
    return _distinct(values, "value")


class Block(Strict):
    """One declarative grid block; lists multiply."""

    sweep: Sweep = "method"
    method: Name
    objectives: Annotated[list[str] | Literal["all", "none"], BeforeValidator(_objectives)] = "all"
    dataset: Name = "digits"
    encoder: Name | None = None  # default: by the dataset's kind
    batch_sizes: list[Annotated[int, Field(ge=2, le=MAX_COUNT)]] = [256]
    negatives: list[Annotated[int, Field(ge=1, le=MAX_COUNT)] | None] = [None]
    options: dict[Name, Annotated[list[Any], AfterValidator(_option_values)]] = {}
    epochs: Count | None = None
    tuning_epochs: int | None = Field(None, ge=1, le=MAX_COUNT)  # each Optuna trial's
    lr: Number | None = Field(None, gt=0)  # this block's learning rate; default the suite's
    seeds: list[Seed] | None = None
    tuned: bool = True  # cells use Optuna's best values; False = the objective's defaults
    dataset_options: dict[Name, Any] = {}
    data_root: Name | None = None

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        return _distinct(v, "batch size")

    @field_validator("negatives")
    @classmethod
    def _negatives(cls, v: list[int | None]) -> list[int | None]:
        return _distinct(v, "number of negatives (null: all)", "numbers of negatives")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        return _distinct(v, "seed")


class Suite(Strict):
    name: Name
    description: str = ""
    epochs: Count = 20
    seeds: list[Seed] = [0]
    lr: Number = Field(2e-3, gt=0)
    search_space: SearchSpace = SearchSpace()
    tuning: Tuning = Tuning()
    blocks: list[Block]
    validate_only: bool = False  # gpu: checked here, not run

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        return _distinct(v, "seed")

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, v: list[Block]) -> list[Block]:
        if not v:
            raise ValueError("must not be empty; allowed: a list of at least one block")
        seen: dict[str, int] = {}
        for i, block in enumerate(v):
            key = json.dumps(block.model_dump(), sort_keys=True, default=repr)
            if key in seen:
                raise ValueError(f"block {i} repeats block {seen[key]}; allowed: distinct blocks")
            seen[key] = i
        return v


class TuneParams(Strict):
    trials: Count = 8
    storage: Name = "sqlite:///optuna.db"  # any Optuna storage URL (postgresql://...)
    sampler_seed: Seed = 0
    # shared-study workers (``tune --workers N``, or N invocations on N machines): null
    # keeps the deterministic batches of ``workers`` forked trials in one process
    workers: Processes | None = None
    heartbeat_seconds: Annotated[int, Field(ge=1, le=3600)] = 20  # shared-study workers
    grace_seconds: Annotated[int, Field(ge=2, le=86400)] = 60  # silent longer: failed, retried
    retries: Annotated[int, Field(ge=0, le=100)] = 3  # retries of a trial whose worker died


class Params(Strict):
    """params.yaml: the suite to run and global settings."""

    # a name under suites/ (not a path: the stages find the file by it)
    suite: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")] = "core"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Processes = 1  # CPU threads per process (torch.set_num_threads)
    workers: Processes = 2  # cells trained in parallel processes by a train stage
    epochs_scale: Number = Field(1.0, gt=0, le=MAX_EPOCHS_SCALE)
    seeds: list[Seed] | None = None  # overrides every suite's seeds when set
    progress: bool = True
    tune: TuneParams = TuneParams()
    mlflow_uri: Name = "sqlite:///mlflow.db"
    # where a train stage's cells run: local processes, Slurm jobs (submitit), or
    # submitit's local executor (real subprocesses through the Slurm code path)
    executor: Literal["local", "slurm", "submitit-local"] = "local"

    class Cluster(Strict):
        """``cluster:``: the job array of the slurm / submitit-local executors."""

        folder: Name = ".submitit"  # logs, pickles and the resume manifest, per pair
        partition: str | None = None
        timeout_min: Annotated[int, Field(ge=1, le=10**6)] = 60
        cpus_per_task: Processes = 1
        gpus_per_task: Annotated[int, Field(ge=0, le=64)] = 0
        mem_gb: Annotated[float, Field(gt=0, le=10**5)] | None = None
        array_parallelism: Processes | None = None  # tasks at once (null: all; local: workers)
        poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0
        slurm_additional: dict[str, str | int | float | bool] = {}  # any other sbatch option

    cluster: Cluster = Cluster()

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        return _distinct(v, "seed")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the last key of ``loc`` (for 'unknown key' messages)."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = [
            t
            for t in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if not inner:
            return None
        model = inner[0]
    return model


def _one_line(
    err: ValidationError, source: str, model: type[BaseModel] | None = None
) -> ConfigError:
    e = err.errors()[0]
    loc_parts = tuple(p for p in e["loc"] if p != "[key]")
    loc = ".".join(str(p) for p in loc_parts)
    value = e.get("input")
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        holder = _model_at(model, loc_parts) if model is not None else None
        allowed = f"; allowed: {', '.join(holder.model_fields)}" if holder is not None else ""
        msg = f"unknown key{allowed}"
    elif e["type"] == "missing":
        msg = "required key is missing"
    # scalars and lists of scalars are shown; a whole mapping would not fit on the line
    scalar = not isinstance(value, dict | list) or (
        isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)
    )
    quiet = e["type"] in ("missing", "extra_forbidden")
    shown = f" (got {_shown(value)})" if loc and scalar and not quiet else ""
    return ConfigError(one_line(f"{source}: {loc}: {msg}{shown}" if loc else f"{source}: {msg}"))


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: let the constructor say so
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid YAML (not UTF-8 text)") from None
    except OSError as err:
        raise ConfigError(one_line(f"{path}: cannot be read ({err.strerror or err})")) from None
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None)
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = f"{problem}{where}" if problem else str(err).splitlines()[0]
        raise ConfigError(one_line(f"{path}: not valid YAML ({detail})")) from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None
    return {} if doc is None else doc


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        return Params.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise _one_line(err, str(path), Params) from None


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
        allowed = ", ".join(names) if names else f"none (no *.yaml in {SUITES_DIR}/)"
        raise ConfigError(one_line(f"suite: {str(name_or_path)!r} not found; allowed: {allowed}"))
    try:
        suite = Suite.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise _one_line(err, str(path), Suite) from None
    if check_names:
        validate_names(suite, str(path), check_data=check_data)
    return suite


# -- option values, judged by the option's default (the registries hold no schema) --------


def _bad_value(where: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(one_line(f"{where}: {_shown(value)} is not allowed; allowed: {allowed}"))


def check_value(where: str, key: str, value: Any, default: Any, *, maximum: int) -> None:
    """``value`` of option ``key`` has the kind of its ``default``: a bool takes true/false;
    an integer default >= 1 (a size, a count) integers >= 1, a 0 integers >= 0 (seeds
    too); a float a finite number (a ``*_fraction`` one in [0, 1)); a string a string
    unless the option also takes numbers (defaults such as "auto"). None: anything but an
    integer beyond ``maximum``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _bad_value(where, value, "true or false")
    elif isinstance(default, int):
        low = 0 if default < 1 or key.endswith("seed") else 1
        high = MAX_SEED if key.endswith("seed") else maximum
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _bad_value(where, value, f"an integer in [{low}, {high}]")
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise _bad_value(where, value, "a finite number")
        if key.endswith("_fraction") and not 0 <= value < 1:
            raise _bad_value(where, value, "a fraction in [0, 1)")
    elif isinstance(default, str):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _bad_value(where, value, "a string")
    # whatever the default (None: "chosen by the method"), an integer past the bound is a
    # typo that would only show as a failed allocation
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > maximum:
        high = MAX_SEED if key.endswith("seed") else maximum
        if abs(value) > high:
            raise _bad_value(where, value, f"an integer of at most {high}")


def _at(where: str, key: str) -> str:
    """``where.key`` in a file, ``--flag key`` on the command line."""
    return f"{where} {key}" if where.startswith("--") else f"{where}.{key}"


def check_method_options(method: str, options: dict, where: str) -> None:
    """Option names against the method's ``option_defaults``; then the method's own
    ``check_options(options)`` (its rules, one-line ValueErrors); then, for what its rules
    leave open, the value against the option's default (:func:`check_value`: K=0 or a
    string where a size goes is refused even by a method that declares no rule)."""
    from benchmark.methods import METHODS

    cls = METHODS.get(method)
    defaults = cls.option_defaults
    for key in options:
        if key not in defaults:
            raise ConfigError(
                f"{where}: method {method!r} has no option {key!r}; "
                f"allowed: {', '.join(sorted(defaults)) or 'none'}"
            )
    check = getattr(cls, "check_options", None)
    if callable(check):
        try:
            check(dict(options))
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(one_line(f"{where}: {err.args[0] if err.args else err}")) from None
    for key, value in options.items():
        check_value(_at(where, key), key, value, defaults[key], maximum=MAX_OPTION)


def check_dataset_options(dataset: str, options: dict, where: str) -> None:
    """Option names against the dataset builder's keyword arguments, values against their
    defaults (the builder checks the rest when it runs)."""
    from benchmark.datasets import dataset_options

    try:
        defaults = dataset_options(dataset)
        full = dataset_options(dataset, **options)
    except TypeError as err:
        raise ConfigError(one_line(f"{where}: {err}")) from None
    for key, value in options.items():
        check_value(_at(where, key), key, value, defaults[key], maximum=MAX_DATASET_OPTION)
    # the held-out fractions leave something to train on
    fractions = {k: v for k, v in full.items() if k.endswith("_fraction")}
    if len(fractions) > 1 and sum(fractions.values()) >= 1:
        shown = " + ".join(f"{k} {v:g}" for k, v in fractions.items())
        raise ConfigError(
            f"{where}: {shown} leaves no training data; allowed: fractions summing to < 1"
        )


def _block_cells(suite: Suite, block: Block, params: Params | None = None) -> list[dict]:
    params = params or Params()
    encoder = block.encoder or DEFAULT_ENCODER.get(block.dataset, "mlp")
    epochs = block.epochs if block.epochs is not None else suite.epochs
    epochs = max(1, round(epochs * params.epochs_scale)) if epochs else 0
    seeds = params.seeds or block.seeds or suite.seeds
    keys = list(block.options)
    combos = list(itertools.product(*block.options.values())) or [()]
    cells = []
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


def validate_names(suite: Suite, source: str, *, check_data: bool) -> None:
    """Registry names, compatibility, options, settings the block's method or objectives do
    not take, repeated cells; with ``check_data`` also the data (see the module docstring)."""
    from benchmark.compat import TUNABLE
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
        tunable = [o for o in objectives if TUNABLE.get(o)]
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
            first, epochs = tuning.setdefault(cell["pair"], (i, cell["tuning_epochs"]))
            if "tuning_epochs" in given and cell["tuning_epochs"] != epochs:
                raise ConfigError(
                    f"{where}.tuning_epochs: {cell['pair']} is tuned once, with the "
                    f"tuning_epochs of blocks.{first} ({epochs}), not {cell['tuning_epochs']}; "
                    f"allowed: {epochs} or leave it out"
                )
            key = json.dumps(cell, sort_keys=True, default=repr)
            if key in cells and cells[key] != i:
                raise ConfigError(
                    f"{where}: repeats the cell {cell['pair']} batch {cell['batch_size']} "
                    f"negatives {cell['negatives']} seed {cell['seed']} of blocks.{cells[key]} "
                    f"(sweep {cell['sweep']!r}); allowed: each cell once per sweep"
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
        n_train = len(data.splits["train"])
        too_big = [b for b in block.batch_sizes if b > n_train]
        if too_big and not whole:
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

    from benchmark.train import CellConfig, build_method

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


def pair_name(method: str, objective: str) -> str:
    return f"{method}-{objective}"


def suite_cells(suite: Suite, params: Params | None = None) -> list[dict]:
    """Every cell of the suite as a dict: CellConfig fields plus sweep, tuned, pair."""
    return [cell for block in suite.blocks for cell in _block_cells(suite, block, params)]


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
