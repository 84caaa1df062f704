"""`python -m benchmark report`: the report's stage. It reads results.csv, the trials and
the MI check, and writes the leaderboard, tables, figures and index.html
(``benchmark.report``), the README's leaderboard section (``--readme``), and logs them to
the suite's MLflow run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import UserError
from benchmark.report import (
    OPTIONAL_RESULT_COLUMNS,
    README_END,
    README_START,
    analyse,
    build_report,
    load_mi,
    load_results,
    load_trials,
    log_to_mlflow,
    update_readme,
)
from benchmark.report import markdown as md


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="reports/results.csv", help="tidy results table")
    parser.add_argument(
        "--trials",
        default="reports/trials.csv",
        help="Optuna trials (optional; placeholder figure if absent)",
    )
    parser.add_argument(
        "--mi",
        default="reports/mi_check.csv",
        help="MI bound check (optional; placeholder figure if absent)",
    )
    parser.add_argument("--out", default="reports", help="output directory (default: reports)")
    parser.add_argument(
        "--readme",
        default=None,
        metavar="PATH",
        help=f"also write the leaderboard and trends into PATH between {README_START} and "
        f"{README_END}",
    )
    parser.add_argument(
        "--no-mlflow", action="store_true", help="do not log the outputs to the suite's MLflow run"
    )


def run(args: argparse.Namespace) -> int:
    results = load_results(args.results, optional=OPTIONAL_RESULT_COLUMNS)
    trials = load_trials(args.trials)
    mi = load_mi(args.mi)
    if args.readme and not Path(args.readme).is_file():
        raise UserError(f"{args.readme}: README not found (given with --readme)")
    analysis = analyse(results)
    written = build_report(results, args.out, trials=trials, mi=mi, analysis=analysis)
    if args.readme:
        text = md.readme_markdown(analysis.leaderboard, analysis.trends)
        if update_readme(args.readme, text):
            print(f"report: leaderboard written into {args.readme}")
        else:
            print(
                f"report: {args.readme} has no {README_START} ... {README_END} markers; left untouched",
                file=sys.stderr,
            )
    if not args.no_mlflow:
        log_to_mlflow(sorted(results["suite"].unique()), written)
    print(f"report: wrote {len(written)} files under {args.out}")
    return 0
