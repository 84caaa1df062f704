"""`python -m benchmark <subcommand>`: one entry point for every stage and tool.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported lazily so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import warnings

from benchmark.errors import UserError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "list": ("benchmark.listing", "list the registered objectives, methods, encoders, datasets"),
    "perf": ("benchmark.perf", "measurements: `perf objectives|train|pipeline|gate|drill`"),
    "run": ("benchmark.run", "train and evaluate one grid cell, print its results row as JSON"),
    "prepare": ("benchmark.stages.prepare", "stage: prepare datasets and splits"),
    "tune": ("benchmark.stages.tune", "stage: Optuna study for one (method, objective)"),
    "train": ("benchmark.stages.train", "stage: run the grid cells of one (method, objective)"),
    "results": ("benchmark.stages.results", "stage: gather per-stage rows into results.csv"),
    "report": ("benchmark.stages.report", "stage: leaderboard tables, figures and index.html"),
    "check": ("benchmark.stages.check", "stage: regression check against reports/baseline.json"),
    "mi": ("benchmark.stages.mi", "stage: MI bounds with the optimal critic on gaussian_mi"),
    "golden": ("benchmark.golden", "recompute the objectives' golden values file"),
    "pipeline": ("benchmark.pipeline", "write dvc.yaml from the suites and the registries"),
    "summary": (
        "benchmark.summary",
        "where the report is, the leaderboard's top, the check verdict",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """A bad flag or subcommand is one line on stderr and exit code 2, like every other bad
    input (argparse would print the whole usage text first)."""

    def error(self, message: str):
        print(f"error: {self.prog}: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m benchmark",
        description=(
            "Reference benchmark suite for contrastive representation learning. "
            "`dvc repro` runs the stages below on the suite named in params.yaml."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="<subcommand>", required=True)
    argv = sys.argv[1:]
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        # import only the module of the chosen subcommand
        if name in argv[:1]:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    # torch_geometric's import-time notice about torch.jit.script, on every stage
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args()
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only directory, a full disk: the file and the reason
        if err.filename is None and err.errno not in (errno.ENOSPC, errno.EACCES, errno.EROFS):
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(
            f"error: {where}{err.strerror or err}; nothing was half-written (every file is "
            "replaced atomically), free the space or fix the permissions and run it again",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept", file=sys.stderr)
        return 130
