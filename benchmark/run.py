"""`python -m benchmark run`: train and evaluate one grid cell, print its row as JSON."""

from __future__ import annotations

import argparse
import json

from benchmark.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, help="e.g. simclr, moco, npid, cpc, dgi, ...")
    parser.add_argument(
        "--objective",
        default=None,
        help="objective name (default: the method's own; 'none' for byol, "
        "rotation, jigsaw, supervised, random)",
    )
    parser.add_argument("--dataset", default="digits")
    parser.add_argument(
        "--encoder",
        default=None,
        help="default: cnn2d for images, cnn1d for sequences, gcn for graphs",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--negatives",
        type=int,
        default=None,
        help="keep K random negatives per anchor (default: all available)",
    )
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--data-root", default=None, help="directory of real datasets' files")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option, e.g. queue_size=4096 (repeatable)",
    )
    parser.add_argument(
        "--dataset-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset builder option, e.g. num_samples=4000 (repeatable)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for small cells on a shared CPU)",
    )
    parser.add_argument("--no-progress", action="store_true")


DEFAULT_ENCODER = {"image": "cnn2d", "sequence": "cnn1d", "graph": "gcn", "vectors": "mlp"}


def _key_values(items: list[str], flag: str) -> dict:
    """["k=v", ...] -> {k: v}; values that parse as JSON (numbers, true/false) are parsed,
    the rest kept as strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from benchmark.datasets import DATASETS, prepare_dataset
    from benchmark.methods import METHODS
    from benchmark.train import CellConfig, run_cell

    try:
        method_cls = METHODS.get(args.method)
        DATASETS.get(args.dataset)
    except KeyError as err:
        raise UserError(err.args[0]) from None
    import torch

    torch.set_num_threads(args.threads)
    options = _key_values(args.option, "--option")
    dataset_options = _key_values(args.dataset_option, "--dataset-option")
    try:
        data = prepare_dataset(
            args.dataset, root=args.data_root, cache_dir="data/cache", **dataset_options
        )
        cfg = CellConfig(
            method=args.method,
            objective=args.objective or method_cls.default_objective,
            dataset=args.dataset,
            encoder=args.encoder or DEFAULT_ENCODER[data.kind],
            batch_size=args.batch_size,
            negatives=args.negatives,
            seed=args.seed,
            temperature=args.temperature,
            margin=args.margin,
            epochs=args.epochs,
            lr=args.lr,
            method_options=options,
            dataset_options=dataset_options,
            data_root=args.data_root,
        )
        row = run_cell(cfg, data=data, progress=not args.no_progress)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise UserError(err.args[0] if err.args else str(err)) from None
    print(json.dumps(row))
    return 0
