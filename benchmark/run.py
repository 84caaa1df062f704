"""`python -m benchmark run`: train and evaluate one grid cell, print its row as JSON."""

from __future__ import annotations

import argparse
import json
import math

from benchmark.errors import UserError


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
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default 256; graph data train on the whole graph and take none",
    )
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
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: encoders under bf16 autocast, heads and losses in fp32",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option, e.g. queue_size=4096 (repeatable)",
    )
    parser.add_argument(
        "--objective-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another hyperparameter of the objective, e.g. semihard=1 for triplet, "
        "l2_reg=0.01 for npair (repeatable; `list` names each objective's)",
    )
    parser.add_argument(
        "--dataset-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset builder option, e.g. num_train=3000 (repeatable)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for small cells on a shared CPU)",
    )
    parser.add_argument("--no-progress", action="store_true")


MAX_SEED = 2**32 - 1


def _key_values(items: list[str], flag: str) -> dict:
    """["k=v", ...] -> {k: v}; values that parse as JSON (numbers, true/false) are parsed,
    the rest kept as strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE")
        if key in out:
            raise UserError(f"{flag} {key}: given twice; allowed: each key once")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
        if isinstance(out[key], float) and not math.isfinite(out[key]):
            out[key] = value  # NaN / Infinity: kept as text, refused by the option's check
    return out


def check_flags(args: argparse.Namespace) -> None:
    """Numeric flags in range (argparse only checks their types)."""
    checks = (
        (
            "--batch-size",
            args.batch_size,
            args.batch_size is None or args.batch_size >= 2,
            "an integer >= 2",
        ),
        (
            "--negatives",
            args.negatives,
            args.negatives is None or args.negatives >= 1,
            "an integer >= 1 (leave it out for all)",
        ),
        ("--epochs", args.epochs, args.epochs >= 0, "an integer >= 0"),
        ("--lr", args.lr, math.isfinite(args.lr) and args.lr > 0, "a number > 0"),
        ("--seed", args.seed, 0 <= args.seed <= MAX_SEED, f"an integer in [0, {MAX_SEED}]"),
        ("--threads", args.threads, args.threads >= 1, "an integer >= 1"),
    )
    for flag, value, ok, allowed in checks:
        if not ok:
            raise UserError(f"{flag} {value}: not allowed; allowed: {allowed}")


HYPERPARAMETERS = {
    # flag attribute -> (is the value allowed, what is)
    "temperature": (lambda v: math.isfinite(v) and v > 0, "a number > 0"),
    "margin": (lambda v: math.isfinite(v) and v >= 0, "a number >= 0"),
}


def check_objective_options(options: dict, objective: str) -> None:
    """--objective-option: names the objective declares, other than temperature and margin
    (their own flags), with numeric values."""
    from benchmark.compat import HYPERPARAMETERS as DECLARED

    declared = DECLARED.get(objective, {})
    for key, value in options.items():
        flag = f"--objective-option {key}={value}"
        if key in HYPERPARAMETERS:
            raise UserError(f"{flag}: {key} has its own flag; allowed: --{key}")
        if key not in declared:
            others = ", ".join(k for k in declared if k not in HYPERPARAMETERS) or "none"
            raise UserError(f"{flag}: objective {objective!r} has no {key}; allowed: {others}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{flag}: not a number; allowed: a number")


def check_hyperparameters(args: argparse.Namespace, objective: str) -> None:
    """--temperature / --margin only for an objective that has them, and in range."""
    from benchmark.methods import NO_OBJECTIVE
    from benchmark.objectives import OBJECTIVES

    declared = {} if objective == NO_OBJECTIVE else OBJECTIVES.get(objective).hyperparameters
    for name, (ok, allowed) in HYPERPARAMETERS.items():
        value = getattr(args, name)
        if value is None:
            continue
        flag = f"--{name}"
        if objective == NO_OBJECTIVE:
            raise UserError(
                f"{flag} {value:g}: method {args.method!r} uses no objective, so it has no "
                f"{name}; allowed: leave it out"
            )
        if name not in declared:
            has = ", ".join(sorted(declared)) or "none"
            raise UserError(
                f"{flag} {value:g}: objective {objective!r} has no {name} "
                f"(its hyperparameters: {has}); allowed: leave it out"
            )
        if not ok(value):
            raise UserError(f"{flag} {value:g}: not allowed; allowed: {allowed}")


def run(args: argparse.Namespace) -> int:
    from benchmark.config import (
        KIND_ENCODER,
        CellConfig,
        ConfigError,
        check_dataset_options,
        check_encoder_on,
        check_method_options,
        quiet_deprecations,
    )
    from benchmark.datasets import DATASETS, cache_path, prepare_dataset
    from benchmark.encoders import ENCODERS
    from benchmark.methods import METHODS, NO_OBJECTIVE, check_compatible
    from benchmark.train import build_method, run_cell

    # everything the flags alone decide, before any data is built or written
    check_flags(args)
    try:
        method_cls = METHODS.get(args.method)
        DATASETS.get(args.dataset)
        if args.encoder is not None:
            ENCODERS.get(args.encoder)
        objective = args.objective or method_cls.default_objective
        check_compatible(args.method, objective)
    except (KeyError, ValueError) as err:
        raise UserError(err.args[0]) from None
    check_hyperparameters(args, objective)
    if objective == NO_OBJECTIVE and args.negatives is not None:
        raise UserError(
            f"--negatives {args.negatives}: method {args.method!r} uses no objective, so it "
            "has no negatives to keep; allowed: leave it out"
        )
    options = _key_values(args.option, "--option")
    dataset_options = _key_values(args.dataset_option, "--dataset-option")
    objective_options = _key_values(args.objective_option, "--objective-option")
    check_objective_options(objective_options, objective)
    try:
        check_method_options(args.method, options, "--option")
        check_dataset_options(args.dataset, dataset_options, "--dataset-option")
    except ConfigError as err:
        raise UserError(str(err)) from None
    import torch

    torch.set_num_threads(args.threads)
    cache = cache_path(args.dataset, cache_dir="data/cache", **dataset_options)
    try:
        # built in memory; cached only once the cell has been built from it
        data = prepare_dataset(
            args.dataset,
            root=args.data_root,
            cache_dir="data/cache" if cache.is_file() else None,
            **dataset_options,
        )
        check_compatible(args.method, objective, data.kind)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        raise UserError(_line(err)) from None
    except (IndexError, ZeroDivisionError, RuntimeError) as err:  # a builder choked on an option
        raise UserError(f"--dataset-option: {_line(err)}") from None
    encoder = args.encoder or KIND_ENCODER[data.kind]
    try:
        check_encoder_on(encoder, data, "--encoder")
    except ConfigError as err:
        raise UserError(str(err)) from None
    n_train = data.num_train
    whole_graph = data.kind == "graph" or method_cls.full_graph
    if whole_graph and args.batch_size is not None:
        raise UserError(
            f"--batch-size {args.batch_size}: method {args.method!r} trains on the whole graph "
            f"of {args.dataset!r} at every step, so it takes no batch size; allowed: leave it out"
        )
    batch_size = 256 if args.batch_size is None else args.batch_size
    if not whole_graph and method_cls.trains and batch_size > n_train:
        raise UserError(
            f"--batch-size {batch_size}: larger than the training split of "
            f"{args.dataset!r} ({n_train} samples); allowed: 2 to {n_train}"
        )
    cfg = CellConfig(
        method=args.method,
        objective=objective,
        dataset=args.dataset,
        encoder=encoder,
        batch_size=batch_size,
        negatives=args.negatives,
        seed=args.seed,
        temperature=args.temperature,
        margin=args.margin,
        epochs=args.epochs,
        lr=args.lr,
        method_options=options,
        dataset_options=dataset_options,
        data_root=args.data_root,
        precision=args.precision,
        objective_options=objective_options,
    )
    try:
        # the method checks its own options (and the objective its hyperparameters) here
        with quiet_deprecations():
            build_method(cfg, data, torch.device("cpu"))
    except (ValueError, TypeError, KeyError) as err:
        raise UserError(_line(err)) from None
    except (RuntimeError, MemoryError) as err:  # e.g. an allocation the options made absurd
        raise UserError(f"--option: the method cannot be built: {_line(err)[:200]}") from None
    if not cache.is_file():
        data.save(cache)
    try:
        row = run_cell(cfg, data=data, progress=not args.no_progress)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        raise UserError(_line(err)) from None
    print(json.dumps(row))
    return 0


def _line(err: BaseException) -> str:
    from benchmark.config import one_line

    return one_line(err.args[0] if err.args else type(err).__name__)
