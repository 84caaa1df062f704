"""`python -m benchmark list [--json]`: every registry, as DESIGN.md names them."""

from __future__ import annotations

import argparse
import json


def registries() -> dict[str, list[str]]:
    from benchmark.datasets import DATASETS
    from benchmark.encoders import ENCODERS
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    return {
        "objectives": OBJECTIVES.names(),
        "methods": METHODS.names(),
        "encoders": ENCODERS.names(),
        "datasets": DATASETS.names(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    regs = registries()
    if args.json:
        print(json.dumps(regs))
    else:
        for kind, names in regs.items():
            print(f"{kind}: {', '.join(names)}")
    return 0
