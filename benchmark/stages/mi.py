"""`python -m benchmark mi`: the MI check's stage. Each bound of ``benchmark.mi_check``
with the optimal critic on gaussian_mi at several true MI values, written to
``reports/mi_check.csv``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch

from benchmark.atomic import write_csv as write_csv_atomic
from benchmark.datasets import prepare_dataset
from benchmark.mi_check import BOUNDS, estimate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mi",
        type=float,
        nargs="+",
        default=[0.5, 1, 2, 3, 4, 6, 8, 10],
        help="true mutual information values (nats)",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--out", default="reports/mi_check.csv")


def run(args: argparse.Namespace) -> int:
    rows = []
    for mi in args.mi:
        n = args.batch_size * args.batches
        data = prepare_dataset(
            "gaussian_mi", cache_dir=None, mi=mi, dim=args.dim, num_samples=n, labels="zeros"
        )
        rho = data.meta["rho"]
        for bound in BOUNDS:
            values = [
                estimate(
                    bound, data.x[i : i + args.batch_size], data.x2[i : i + args.batch_size], rho
                )
                for i in range(0, n, args.batch_size)
            ]
            v = torch.tensor(values, dtype=torch.float64)
            rows.append(
                {
                    "bound": bound,
                    "true_mi": data.meta["true_mi"],
                    "estimate": float(v.mean()),
                    "std": float(v.std()),
                    "batch_size": args.batch_size,
                }
            )
    df = pd.DataFrame(rows)
    write_csv_atomic(df, Path(args.out))
    print(df.pivot(index="true_mi", columns="bound", values="estimate").round(3).to_string())
    print(f"log N = {math.log(args.batch_size):.3f}; written {args.out}")
    return 0
