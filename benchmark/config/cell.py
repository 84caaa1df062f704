"""The typed grid cell: ``CellConfig`` (frozen, hashed into ``config_hash``) and the one
mapping from a suite cell (a ``suite_cells`` dict) to it. Imports no torch: an objective's
hyperparameters come from the committed registry file (``benchmark.compat``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from benchmark.compat import HYPERPARAMETERS, NO_OBJECTIVE

# the speed path's settings, hashed only when on (the cells that predate them keep their hash)
SPEED_DEFAULTS = {"precision": "fp32", "channels_last": False}
PRECISIONS = ("fp32", "bf16")
_UNSET = object()
# the hyperparameters a cell carries as fields; an objective's others go in objective_options
HYPERPARAMETER_FIELDS = ("temperature", "margin")


@dataclass(frozen=True)
class CellConfig:
    """One grid cell: everything that determines its numbers (hashed into config_hash)."""

    method: str
    objective: str = NO_OBJECTIVE
    dataset: str = "digits"
    encoder: str = "cnn2d"
    batch_size: int = 256
    negatives: int | None = None  # keep this many negatives per anchor; None = all
    seed: int = 0
    temperature: float | None = None  # None = the objective's default
    margin: float | None = None
    epochs: int = 20
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup_epochs: float = 1.0
    method_options: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    data_root: str | None = None
    data_cache: str = "data/prepared"
    augment_strength: float = 1.0
    # the speed path (default off: the committed results are fp32 and contiguous)
    precision: str = "fp32"  # "bf16": the encoders under bf16 autocast, the rest in fp32
    channels_last: bool = False  # image batches and convolution weights in NHWC layout
    # the objective's other hyperparameters (triplet's semihard, npair's l2_reg, ...);
    # hashed only when given, so the cells that predate it keep their hash
    objective_options: dict = field(default_factory=dict)

    def config_hash(self) -> str:
        keys = {k: v for k, v in asdict(self).items() if k not in ("data_cache",)}
        # a speed setting is hashed only when on: the cells that predate it keep their hash
        keys = {k: v for k, v in keys.items() if SPEED_DEFAULTS.get(k, _UNSET) != v}
        if not keys["objective_options"]:
            del keys["objective_options"]
        blob = json.dumps(keys, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def objective_kwargs(self) -> dict:
        """The hyperparameters the objective is built with (the ones given; the rest take
        the objective's defaults). A name the objective does not declare raises."""
        if self.objective == NO_OBJECTIVE:
            return {}
        if self.objective not in HYPERPARAMETERS:
            raise KeyError(
                f"unknown objective {self.objective!r}; valid: {', '.join(sorted(HYPERPARAMETERS))}"
            )
        spec = HYPERPARAMETERS[self.objective]
        given = {"temperature": self.temperature, "margin": self.margin}
        out = {k: v for k, v in given.items() if v is not None}
        out.update(self.objective_options)
        for key in out:
            if key not in spec:
                raise ValueError(
                    f"objective {self.objective!r} has no {key}; its hyperparameters: "
                    f"{', '.join(spec) or 'none'}"
                )
        return out


# the CellConfig fields a suite cell sets (the rest keep their defaults)
_CELL_KEYS = (
    "method",
    "objective",
    "dataset",
    "encoder",
    "batch_size",
    "negatives",
    "seed",
    "epochs",
    "lr",
    "method_options",
    "dataset_options",
    "data_root",
    "precision",
)
FIELD_NAMES = frozenset(f.name for f in fields(CellConfig))


def cell_config(
    cell: Mapping[str, Any], hyperparameters: Mapping[str, Any] | None = None, **overrides: Any
) -> CellConfig:
    """The typed config of one suite cell (a ``suite_cells`` dict): the cell's settings,
    the objective's ``hyperparameters`` (tuned values, a trial's point, a sweep's fixed
    temperature: the caller decides, the cell's own ``temperature`` key is not read here;
    ``temperature`` and ``margin`` are fields, any other name joins the cell's
    ``objective_options``) and ``overrides`` of any field (tuning's batch size, seed and
    epochs)."""
    unknown = sorted(set(overrides) - FIELD_NAMES)
    if unknown:
        raise TypeError(f"CellConfig has no field {unknown[0]!r}")
    settings: dict[str, Any] = {k: cell[k] for k in _CELL_KEYS if k in cell}
    options = dict(cell.get("objective_options") or {})
    for name, value in (hyperparameters or {}).items():
        if name in HYPERPARAMETER_FIELDS:
            settings[name] = value
        else:
            options[name] = value
    if options:
        settings["objective_options"] = options
    return CellConfig(**{**settings, **overrides})
