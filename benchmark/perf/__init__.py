"""`python -m benchmark perf {objectives,train,pipeline,budget,gate,drill}`: speed, memory,
budget, gate and kill-drill figures.

Timings are medians of repeated runs on this machine, with ratios to a reference
measured in the same run, so that a noisy shared machine shifts both sides alike.
Peak memory is the process's resident high-water mark (Linux VmHWM, reset before each
measurement through /proc/self/clear_refs): large CPU tensors are mmap-ed and returned
on free, so the mark follows what a measurement allocates. On a GPU, torch.cuda's peak
allocator statistics are used instead.

The command line is here; each measurement is a module: ``measure`` (time and peak memory
of a call), ``objectives``, ``training`` (``perf train``), ``pipeline`` and ``budget``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmark.perf.measure import measure
from benchmark.perf.objectives import perf_objectives
from benchmark.perf.pipeline import perf_pipeline
from benchmark.perf.training import matmul_peak_flops, perf_train

__all__ = [
    "add_arguments",
    "matmul_peak_flops",
    "measure",
    "perf_objectives",
    "perf_pipeline",
    "perf_train",
    "run",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="<benchmark>", required=True)
    threads = dict(
        type=int,
        default=None,
        help="torch CPU threads (default: torch's, one per core); 1 gives a figure that "
        "another busy core does not disturb",
    )
    p = sub.add_parser("objectives", help="time and memory of every loss vs ntxent")
    p.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[256, 1024, 4096],
        help="instances per batch (two views each)",
    )
    p.add_argument("--dim", type=int, default=128, help="embedding dimension")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (median)")
    p.add_argument("--threads", **threads)
    p = sub.add_parser("train", help="a SimCLR step's views/s and model-FLOP utilisation")
    p.add_argument("--steps", type=int, default=30, help="timed training steps")
    p.add_argument("--threads", **threads)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--encoder", default="cnn2d", help="e.g. resnet18 (with --image-size 32)")
    p.add_argument("--image-size", type=int, default=None, help="random 3xNxN images, not digits")
    p.add_argument("--batch-size", type=int, default=256)
    for flag, what in (
        ("bf16", "bf16 autocast, losses in fp32"),
        ("channels-last", "channels_last memory format"),
        ("compile", "torch.compile the encoder"),
    ):
        p.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                       help=f"{what} (default: on with CUDA except compile, off on CPU)")  # fmt: skip
    p = sub.add_parser("pipeline", help="wall time and peak memory of a command")
    p.add_argument(
        "--command",
        dest="measured",
        default="dvc repro",
        help="the command to run and measure (default `dvc repro`; e.g. "
        "'dvc exp run -S suite=smoke')",
    )
    p = sub.add_parser(
        "budget",
        help="seeds per headline entry against training CPU, interval width and headroom, "
        "recomputed from committed results (no training)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path("reports/results.csv"),
        help="the tidy results table (default reports/results.csv)",
    )
    p.add_argument("--suite", default="core", help="whose rows to use (default core)")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[3, 5, 8],
        help="policies: the first k seeds of every headline entry (default 3 5 8; the "
        "committed grid is always the last line)",
    )
    p.add_argument(
        "--wall",
        type=float,
        default=None,
        help="measured wall seconds of the committed grid (`perf pipeline`): projects each "
        "policy's wall time by its training CPU",
    )
    p = sub.add_parser(
        "gate",
        help="the regression gate's false-alarm rate and power, simulated from the committed "
        "seed spreads (`perf gate --help` for its options)",
        add_help=False,
        prefix_chars="+",  # every argument, options included, goes to benchmark.gate_perf
    )
    p.add_argument("gate_args", nargs="*", help=argparse.SUPPRESS)
    p = sub.add_parser(
        "drill",
        help="kill drills: `dvc repro` of a suite killed with SIGKILL at seeded moments and "
        "resumed, compared with an uninterrupted run (benchmark/drill/)",
    )
    from benchmark import drill

    drill.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.what == "gate":
        from benchmark import gate_perf

        return int(gate_perf.main(args.gate_args) or 0)
    if args.what == "drill":
        from benchmark import drill

        return drill.main(args)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.what == "objectives":
        perf_objectives(args.batch_sizes, args.dim, args.repeats)
    elif args.what == "pipeline":
        return perf_pipeline(args.measured)
    elif args.what == "budget":
        from benchmark.perf.budget import perf_budget

        return perf_budget(args.results, args.seeds, args.wall, args.suite)
    else:
        perf_train(args.steps, **_train_options(args))
    return 0


def _train_options(args: argparse.Namespace) -> dict:
    """The device and the speed path: on CUDA bf16 and channels_last default on."""
    from benchmark.errors import UserError

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device on this machine; allowed: auto, cpu")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    flags = {"bf16": cuda, "channels_last": cuda, "compile": False}
    flags = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in flags.items()}
    sizes = dict(encoder=args.encoder, image_size=args.image_size, batch_size=args.batch_size)
    return {"device": device, **flags, **sizes}
