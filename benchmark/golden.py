"""`python -m benchmark golden`: recompute the objectives' golden values file.

Every registered objective is evaluated, with its default hyperparameters and with one
non-default configuration (``VARIANTS``), on fixed float64 inputs. The file is what
``tests/objectives/test_golden.py`` compares against, so a change of any objective's value
is caught and named; after an intended change, rerun this command and commit the file.

The inputs come from Python's ``random`` with a fixed seed (its sequence is stable across
platforms and versions), so they do not depend on torch's generators.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

DEFAULT_PATH = Path("tests/objectives/golden.json")
SEED = 20240601
TOLERANCE = {"rel_tol": 1e-9, "abs_tol": 1e-12}  # float64 values; summation order may differ

# one non-default configuration per objective (JSON-able keyword arguments)
VARIANTS: dict[str, dict[str, Any]] = {
    "contrastive": {"similarity": "cosine", "margin": 0.5},
    "triplet": {"semihard": 1.0, "margin": 0.5},
    "lifted": {"margin": 0.5},
    "npair": {"l2_reg": 0.1},
    "nce": {"temperature": 0.2},
    "infonce": {"similarity": "dot", "temperature": 0.5},
    "ntxent": {"temperature": 0.1},
    "jsd": {"similarity": "cosine"},
    "nwj": {"normalize": True},
    "dv": {"similarity": "cosine"},
}

Inputs = tuple[Tensor, Tensor, Tensor | None, Tensor | None]


def golden_inputs() -> dict[str, Inputs]:
    """Named (embeddings, labels, ref_embeddings, ref_labels), float64, fixed."""
    rng = random.Random(SEED)

    def randn(n: int, d: int) -> Tensor:
        return torch.tensor([[rng.gauss(0.0, 1.0) for _ in range(d)] for _ in range(n)]).double()

    views = torch.arange(8).repeat(2)  # two views per instance
    classes = torch.arange(4).repeat_interleave(5)  # several positives per class
    anchors = torch.tensor([0, 1, 2, 3, 4, 9])  # 9 is absent from the queue
    queue = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 6])
    return {
        "views": (randn(16, 8), views, None, None),
        "classes": (randn(20, 8), classes, None, None),
        "ref": (randn(6, 8), anchors, randn(16, 8), queue),
    }


def golden_configs(name: str) -> dict[str, dict[str, Any]]:
    """Configurations of one objective: ``default`` and, if defined, ``variant``."""
    configs: dict[str, dict[str, Any]] = {"default": {}}
    if name in VARIANTS:
        configs["variant"] = dict(VARIANTS[name])
    return configs


def compute(name: str, kwargs: dict[str, Any]) -> dict[str, float]:
    """The objective's value on every golden input."""
    from benchmark.objectives import build_objective

    objective = build_objective(name, **kwargs)
    with torch.no_grad():
        return {key: objective(*inputs).item() for key, inputs in golden_inputs().items()}


def golden_entry(name: str) -> dict[str, dict[str, Any]]:
    """{config: {"kwargs": ..., "values": {input: value}}} of one objective."""
    return {
        config: {"kwargs": kwargs, "values": compute(name, kwargs)}
        for config, kwargs in golden_configs(name).items()
    }


def golden_values() -> dict[str, dict[str, dict[str, Any]]]:
    """The golden file's content: :func:`golden_entry` of every registered objective."""
    from benchmark.objectives import OBJECTIVES

    return {name: golden_entry(name) for name in OBJECTIVES.names()}


def differences(golden: dict, current: dict) -> list[str]:
    """One line per objective, config or value of ``current`` that ``golden`` does not match."""
    out = []
    for name in sorted(golden.keys() | current.keys()):
        if name not in golden:
            out.append(f"objective {name!r} has no golden values")
            continue
        if name not in current:
            out.append(f"objective {name!r} has golden values but is not registered")
            continue
        for config in sorted(golden[name].keys() | current[name].keys()):
            old, new = golden[name].get(config), current[name].get(config)
            if old is None or new is None or old["kwargs"] != new["kwargs"]:
                kwargs = [c and c["kwargs"] for c in (old, new)]
                out.append(f"objective {name!r} {config}: configuration {kwargs[0]} -> {kwargs[1]}")
                continue
            for key in sorted(old["values"].keys() | new["values"].keys()):
                a, b = old["values"].get(key), new["values"].get(key)
                if a is None or b is None or not math.isclose(a, b, **TOLERANCE):
                    out.append(f"objective {name!r} {config} on {key!r}: golden {a!r}, now {b!r}")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--path",
        type=Path,
        default=DEFAULT_PATH,
        help=f"file to write (default: {DEFAULT_PATH}, relative to the working directory)",
    )


def run(args: argparse.Namespace) -> int:
    values = golden_values()
    path: Path = args.path
    old = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    count = sum(len(c["values"]) for configs in values.values() for c in configs.values())
    print(f"wrote {count} values of {len(values)} objectives to {path}")
    for line in differences(old, values) if old else []:
        print(f"changed: {line}")
    return 0
