"""The report: tidy results -> leaderboards, statistics, trends, figures, html (the stage,
`python -m benchmark report`, is ``benchmark/stages/report.py``).

Inputs (produced by other stages):

* ``reports/results.csv`` -- one row per finished grid cell and seed (DESIGN.md); ``sweep``
  defaults to "method" and ``code_digest`` may be absent (older tables);
* ``reports/trials.csv`` -- Optuna trials (optional);
* ``reports/mi_check.csv`` -- MI bound estimates on ``gaussian_mi`` (optional).

Outputs (under ``--out``, default ``reports/``), every one written atomically:

* ``leaderboard.csv`` -- one row per entry (method, objective, dataset, encoder) from its
  headline cells: mean and 95% t half-width over seeds, the paired difference to the
  testbed's best entry with its interval, ``tied_with_best``, ``headroom`` over the
  untrained encoder (fractions);
* ``leaderboard.md`` -- a leaderboard per testbed, the paired-differences tables and the
  "Published trends" section;
* ``quality.csv`` -- whether the grid measures: headroom, precision, tuning spread, tuned
  vs untuned (``quality.py``), also a section of leaderboard.md;
* ``trends.csv`` -- one row per published trend and scope: ``trend, source,
  measured_effect, ci_low, ci_high, verdict, detail`` (points; rule in ``trends.py``);
* ``figures/*.png`` and ``figures/*.svg``; ``index.html`` (self-contained);
* ``metrics.json`` -- flat headline metrics for ``dvc metrics diff``;
* ``plots/acc_vs_batch.csv``, ``plots/acc_vs_negatives.csv``, ``plots/acc_vs_temperature.csv`` -- tidy data for ``dvc plots``.

Modules: ``loading`` (inputs), ``stats`` (intervals, paired differences,
ties, slopes, bootstrap, verdicts), ``tables`` (leaderboard, curves, metrics), ``trends``,
``markdown`` (formatted tables), ``plotting`` and ``figures``, ``html``.
"""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import atomic
from benchmark.config.models import Sweep
from benchmark.errors import UserError
from benchmark.report import figures as fig
from benchmark.report import markdown as md
from benchmark.report.html import index_html
from benchmark.report.loading import (
    load_mi,
    load_results,
    load_trials,
)
from benchmark.report.plotting import objective_palette, save
from benchmark.report.quality import measurement_checks
from benchmark.report.tables import headline_metrics, leaderboard, sweep_curve
from benchmark.report.trends import published_trends

__all__ = [
    "OPTIONAL_RESULT_COLUMNS",
    "README_END",
    "README_START",
    "analyse",
    "build_report",
    "load_mi",
    "load_results",
    "load_trials",
    "log_to_mlflow",
    "update_readme",
]

README_START = "<!-- leaderboard:start -->"
README_END = "<!-- leaderboard:end -->"
KNOWN_SWEEPS = typing.get_args(Sweep)  # the sweeps a suite block may name
OPTIONAL_RESULT_COLUMNS = ("code_digest",)


@dataclass(frozen=True)
class Analysis:
    leaderboard: pd.DataFrame
    trends: pd.DataFrame


def analyse(results: pd.DataFrame) -> Analysis:
    return Analysis(leaderboard(results), published_trends(results))


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.6g")


def _figures(results, lb, trials_df, trials_reason, mi_df, mi_reason, fig_dir) -> dict:
    """Render every figure; name -> written paths (PNG first)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import seaborn as sns

    objectives = set(results["objective"])
    if trials_df is not None and not trials_df.empty:
        objectives |= set(trials_df["objective"])
    palette = objective_palette(sorted(objectives))
    makers = {
        "acc_vs_batch": lambda: fig.figure_acc_vs_batch(results, palette),
        "acc_vs_negatives": lambda: fig.figure_acc_vs_negatives(results, palette),
        "acc_vs_temperature": lambda: fig.figure_acc_vs_temperature(results, palette),
        "method_objective_heatmap": lambda: fig.figure_heatmap(lb),
        "paired_differences": lambda: fig.figure_paired(lb),
        "sensitivity": lambda: fig.figure_sensitivity(trials_df, trials_reason, palette),
        "mi_check": lambda: fig.figure_mi(mi_df, mi_reason),
    }
    rc = {"svg.hashsalt": "benchmark-report", "figure.max_open_warning": 0}
    with plt.rc_context(rc), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        return {name: save(make(), fig_dir / name) for name, make in makers.items()}


def _extra_tables(trials_df, trials_reason, mi_df, mi_reason, notes: list[str]) -> list:
    extra: list[tuple[str, pd.DataFrame]] = []
    if trials_df is not None and not trials_df.empty:
        done = trials_df[trials_df["state"] == "COMPLETE"]
        study = ["method", "objective", "dataset", "encoder"]  # one study per testbed
        counts = trials_df.groupby([*study, "state"]).size().unstack(fill_value=0)
        if not done.empty:
            best = done.loc[done.groupby(study)["val_acc"].idxmax()]
            best = best[[*study, "trial", "temperature", "margin", "val_acc"]]
            best = best.merge(counts.reset_index(), on=study, how="left")
            extra.append(("Best Optuna trial per method, objective and testbed", best))
    else:
        notes.append(f"Sensitivity figure is a placeholder: {trials_reason}.")
    if mi_df is not None and not mi_df.empty:
        mi_table = mi_df.groupby(["bound", "batch_size", "true_mi"], as_index=False)[
            "estimate"
        ].mean()
        mi_table["log_N"] = np.log(mi_table["batch_size"].astype(float))
        extra.append(("MI check: mean estimate per bound (nats)", mi_table.round(4)))
    else:
        notes.append(f"MI figure is a placeholder: {mi_reason}.")
    return extra


def build_report(
    results: pd.DataFrame,
    out: Path | str,
    trials: tuple[pd.DataFrame | None, str] = (None, "no trials table given"),
    mi: tuple[pd.DataFrame | None, str] = (None, "no MI check table given"),
    analysis: Analysis | None = None,
) -> list[Path]:
    """Render every table, figure and page under ``out``; return the written paths."""
    out = Path(out)
    analysis = analysis or analyse(results)
    lb, trends = analysis.leaderboard, analysis.trends
    trials_df, trials_reason = trials
    mi_df, mi_reason = mi
    quality = measurement_checks(results, lb, trials_df)
    written = [
        atomic.write_text(out / "leaderboard.csv", _csv(lb)),
        atomic.write_text(out / "leaderboard.md", md.report_markdown(lb, trends, quality)),
        atomic.write_text(out / "quality.csv", _csv(quality)),
        atomic.write_text(out / "trends.csv", _csv(trends)),
        atomic.write_text(
            out / "plots/acc_vs_batch.csv", _csv(sweep_curve(results, ["batch"], "batch_size"))
        ),
        atomic.write_text(
            out / "plots/acc_vs_negatives.csv",
            _csv(sweep_curve(results, ["negatives", "queue"], "negatives")),
        ),
        atomic.write_text(
            out / "plots/acc_vs_temperature.csv",
            _csv(sweep_curve(results, ["temperature"], "temperature")),
        ),
        atomic.write_json(out / "metrics.json", headline_metrics(results, lb)),
    ]
    figs = _figures(results, lb, trials_df, trials_reason, mi_df, mi_reason, out / "figures")
    written += [p for paths in figs.values() for p in paths]
    notes: list[str] = []
    extra = [(md.QUALITY_TITLE, quality)] if not quality.empty else []
    extra += _extra_tables(trials_df, trials_reason, mi_df, mi_reason, notes)
    unused = sorted(set(results["sweep"]) - set(KNOWN_SWEEPS))
    if unused:
        notes.append(f"Rows of sweep(s) {', '.join(unused)} appear in no table or figure.")
    pngs = {name: paths[0] for name, paths in figs.items()}
    page = index_html(results, lb, trends, pngs, out, extra, notes)
    written.append(atomic.write_text(out / "index.html", page))
    return written


def update_readme(readme: Path | str, markdown: str) -> bool:
    """Replace the text between the leaderboard markers; False (untouched) if they are absent."""
    readme = Path(readme)
    if not readme.is_file():
        raise UserError(f"{readme}: README not found (given with --readme)")
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        return False
    new = pattern.sub(lambda _: f"{README_START}\n{markdown.rstrip()}\n{README_END}", text, count=1)
    if new != text:
        atomic.write_text(readme, new)
    return True


def log_to_mlflow(suites: Sequence[str], paths: list[Path]) -> bool:
    """Hand the outputs to ``benchmark.tracking`` (all MLflow calls live there); False if absent."""
    try:
        from benchmark import tracking

        log = tracking.log_report_artifacts
    except (ImportError, AttributeError) as err:
        print(
            f"report: MLflow logging skipped (benchmark.tracking unavailable: {err})",
            file=sys.stderr,
        )
        return False
    for suite in suites:
        log(suite, paths)
    return True
