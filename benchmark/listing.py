"""`python -m benchmark list [--json]`: every registry, as DESIGN.md names them."""

from __future__ import annotations

import argparse
import json


def registries() -> dict[str, list[str]]:
    from benchmark.objectives import OBJECTIVES

    out = {"objectives": OBJECTIVES.names(), "methods": [], "encoders": [], "datasets": []}
    try:
        from benchmark.methods import METHODS

        out["methods"] = METHODS.names()
    except ImportError:
        pass
    try:
        from benchmark.encoders import ENCODERS

        out["encoders"] = ENCODERS.names()
    except ImportError:
        pass
    try:
        from benchmark.datasets import DATASETS

        out["datasets"] = DATASETS.names()
    except ImportError:
        pass
    return out


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
