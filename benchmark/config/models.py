"""The schemas of a suite and of params.yaml (pydantic, strict), their bounds, where the
suites live, and the one-line error every bad value becomes (see ``benchmark.config``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

SUITES_DIR = Path("suites")
Sweep = Literal["batch", "negatives", "queue", "temperature", "method"]
LrScaling = Literal["none", "sqrt", "linear"]

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


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suite_path(name: str) -> Path:
    return SUITES_DIR / f"{name}.yaml"


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
    """The ranges Optuna searches. An objective's ``tunable`` hyperparameters (the
    registry's: temperature or margin) are searched wherever it is tuned; any other
    hyperparameter it declares (triplet's ``semihard``, npair's ``l2_reg``) is searched
    too once it is given a range here, for example ``semihard: {low: 0.01, high: 1}``."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)
    __pydantic_extra__: dict[str, Range] = Field(init=False)

    temperature: Range = Range(low=0.03, high=1.0, log=True)
    margin: Range = Range(low=0.05, high=1.5)

    @model_validator(mode="after")
    def _declared(self) -> SearchSpace:
        from benchmark.compat import HYPERPARAMETERS

        declared = sorted({h for hp in HYPERPARAMETERS.values() for h in hp})
        for name in self.model_extra or {}:
            if name not in declared:
                raise ValueError(
                    f"{name!r} is no objective's hyperparameter; allowed: {', '.join(declared)}"
                )
        return self

    def range(self, name: str) -> Range:
        return getattr(self, name) if name in type(self).model_fields else self.model_extra[name]

    def searched(self, objective: str) -> tuple[str, ...]:
        """What a study of ``objective`` searches: its tunable hyperparameters, then the
        other ones it declares that have a range here, in declaration order."""
        from benchmark.compat import HYPERPARAMETERS, TUNABLE

        extra = self.model_extra or {}
        own = TUNABLE.get(objective, ())
        return own + tuple(h for h in HYPERPARAMETERS.get(objective, {}) if h in extra)


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
    # the rule that moves lr with the batch size: lr * (B / lr_batch) ** (1/2 or 1) (SimCLR
    # appendix B.1 compares square-root and linear scaling); none keeps lr at every B
    lr_scaling: LrScaling = "none"
    lr_batch: int = Field(256, ge=2, le=MAX_COUNT)  # the batch size at which lr holds
    # bf16: the encoders under bf16 autocast, heads and losses in fp32 (DESIGN.md's speed
    # path; pays on convolutions with AVX512-BF16 or a GPU); fp32 everywhere by default
    precision: Literal["fp32", "bf16"] = "fp32"
    # fixed temperatures (a temperature sweep); they replace the tuned temperature
    temperatures: list[Annotated[float, Field(gt=0, le=1e3)]] | None = None
    # fixed values of the objectives' other hyperparameters (triplet's semihard, npair's
    # l2_reg; `list --json` names each objective's); temperature and margin are tuned, or
    # fixed by `temperatures` / `tuned: false`
    objective_options: dict[Name, Number] = {}
    seeds: list[Seed] | None = None
    tuned: bool = True  # cells use Optuna's best values; False = the objective's defaults
    dataset_options: dict[Name, Any] = {}
    data_root: Name | None = None

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        return _distinct(v, "batch size")

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, v: list[float] | None) -> list[float] | None:
        return _distinct(v, "temperature")

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
