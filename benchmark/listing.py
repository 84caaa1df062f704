"""`python -m benchmark list [--json [--out FILE]]`: every registry, as DESIGN.md names them.

``--json`` prints ``{"objectives": [...], "methods": [...], "encoders": [...],
"datasets": [...]}``, each list sorted by name, one object per entry with its ``name`` and
the metadata registered beside it:

- objective: ``metric`` and ``normalize`` (the default similarity), ``hyperparameters``
  (name -> default), ``tunable`` (what Optuna tunes), ``scores`` (reads a learned critic's
  score, so it suits DIM, DGI and CPC) and ``order`` (the report's display position, or
  null);
- method: ``objectives``, the compatible objectives (empty: the method takes none), and
  ``default_objective`` ("none" for those).

``benchmark/registry.json`` is this output, committed, so that code without torch reads the
registries from it (tests/objectives/test_registry_file.py checks it is current); after
adding or changing an entry rerun ``python -m benchmark list --json --out
benchmark/registry.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

REGISTRY_FILE = Path(__file__).resolve().parent / "registry.json"


def objective_entry(spec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "metric": spec.metric,
        "normalize": spec.normalize,
        "hyperparameters": dict(spec.hyperparameters),
        "tunable": list(spec.tunable),
        "scores": spec.scores,
        "order": spec.order,
    }


def method_entry(name: str, cls) -> dict[str, Any]:
    return {
        "name": name,
        "objectives": sorted(cls.objectives),
        "default_objective": cls.default_objective,
    }


def registries() -> dict[str, list[dict[str, Any]]]:
    from benchmark.datasets import DATASETS
    from benchmark.encoders import ENCODERS
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    return {
        "objectives": [objective_entry(spec) for spec in OBJECTIVES.values()],
        "methods": [method_entry(name, cls) for name, cls in METHODS.items()],
        "encoders": [{"name": name} for name in ENCODERS.names()],
        "datasets": [{"name": name} for name in DATASETS.names()],
    }


def render(regs: dict[str, list[dict[str, Any]]]) -> str:
    """The JSON text (what ``--json`` prints and ``--out`` writes): one entry a line."""
    kinds = []
    for kind, entries in regs.items():
        lines = ",\n".join(f"    {json.dumps(e)}" for e in entries)
        kinds.append(f"  {json.dumps(kind)}: [\n{lines}\n  ]" if entries else f'  "{kind}": []')
    return "{\n" + ",\n".join(kinds) + "\n}\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--out",
        type=Path,
        help="with --json: write the JSON to this file instead (e.g. benchmark/registry.json)",
    )


def run(args: argparse.Namespace) -> int:
    if args.out is not None and not args.json:
        from benchmark.errors import UserError

        raise UserError("--out needs --json")
    regs = registries()
    if args.json and args.out is not None:
        from benchmark.atomic import write_text

        write_text(args.out, render(regs))
        print(f"wrote {args.out}")
    elif args.json:
        print(render(regs), end="")
    else:
        for kind, entries in regs.items():
            print(f"{kind}: {', '.join(e['name'] for e in entries)}")
    return 0
