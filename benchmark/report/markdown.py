"""Formatted tables (strings, accuracies in %) shared by leaderboard.md, README and index.html."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.report import stats
from benchmark.report.tables import METHOD_ROLE, UNTRAINED, testbeds

HEADROOM_NEEDED = 10.0  # points: DESIGN.md's headroom rule for a default-grid testbed

LEGEND = (
    "Linear-probe and kNN test accuracy in %, mean ± half-width of the 95% Student-t "
    "interval over seeds (n − 1 degrees of freedom; a t interval rather than a bootstrap, "
    "which is too narrow with three seeds; no interval with one seed; diverged seeds "
    "excluded). *vs best*: `best` is the self-supervised entry with the highest mean on the "
    "testbed; `tied` marks the entries whose paired difference to it (paired by seed) has a "
    "95% t interval containing 0, i.e. a paired t test at 0.05 does not separate them; "
    "`below` the others. *over untrained*: difference of means to the untrained encoder of "
    "the same testbed, in points. Temperature/margin are the tuned values used for the "
    "accuracy shown; *untuned linear* is the objective's default at the same cell; "
    "*negatives* is the effective number of negatives per anchor. The `supervised "
    "reference` (the encoder trained with labels: a reference, not a ceiling, since "
    "self-supervised entries can beat it) and the `untrained encoder` (method `random`) "
    "are not ranked."
)
PAIRED_LEGEND = (
    "Each self-supervised entry minus the testbed's best entry, linear-probe accuracy in "
    "points, paired by seed (the seeds both finished): mean, 95% Student-t interval and the "
    "two-sided paired t test's p-value. *tied*: the interval contains 0. A difference "
    "that is the same on every seed has a zero-width interval."
)
TRENDS_LEGEND = (
    "Effects in points of linear-probe test accuracy (slopes: points per doubling), with "
    "95% intervals. Rule: *reproduced* when the interval excludes 0 on the side the paper "
    "claims; *not reproduced* when it excludes 0 on the other side, or lies entirely inside "
    f"±{stats.EQUIVALENCE_BAND:g} points (practically no effect); *inconclusive* otherwise, "
    "or when the data the trend needs are missing. Paired differences use a t interval over "
    "seeds; slopes a regression over every run (slope ± t(0.975, n − 2) · stderr); the "
    "tuning-gap trend a percentile bootstrap over seeds (4000 resamples)."
)
RIGHT = {"rank", "negatives", "batch", "train time (s)", "temperature", "margin", "paired seeds"}


def _finite(value: Any) -> bool:
    if value is None or value is pd.NA or isinstance(value, str):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _flag(value: Any) -> bool | None:
    """A nullable boolean cell as True / False / None."""
    return None if value is None or value is pd.NA else bool(value)


def _pct(mean: float, ci: float = 0.0) -> str:
    if not _finite(mean):
        return "—"
    if _finite(ci) and ci > 0:
        return f"{100 * mean:.1f} ± {100 * ci:.1f}"
    return f"{100 * mean:.1f}"


def _num(value: Any, fmt: str = "{:g}") -> str:
    return fmt.format(value) if _finite(value) else "—"


def _pts(value: float) -> str:
    """A fraction as signed points, one decimal ("+0.0", never "-0.0")."""
    return f"{round(100 * value, 1) + 0.0:+.1f}" if _finite(value) else "—"


def _p(value: float) -> str:
    return "—" if not _finite(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _vs_best(r: Any) -> str:
    if r.role != METHOD_ROLE or _flag(r.tied_with_best) is None:
        return "—"
    return "best" if _flag(r.is_best) else ("tied" if _flag(r.tied_with_best) else "below")


def method_label(method: str, role: str) -> str:
    return method if role == METHOD_ROLE else role


def display_table(lb: pd.DataFrame) -> pd.DataFrame:
    """One testbed's leaderboard as formatted strings (accuracies in %)."""
    rows = []
    for r in lb.itertuples(index=False):
        seeds = str(r.n_seeds) + (f" ({r.n_diverged} diverged)" if r.n_diverged else "")
        rows.append(
            {
                "rank": _num(r.rank, "{}"),
                "method": method_label(r.method, r.role),
                "objective": "—" if r.objective == "none" else r.objective,
                "linear acc (%)": _pct(r.linear_acc, r.linear_acc_ci95),
                "vs best": _vs_best(r),
                "over untrained (pts)": _pts(r.headroom),
                "kNN acc (%)": _pct(r.knn_acc, r.knn_acc_ci95),
                "untuned linear (%)": _pct(r.untuned_linear_acc, r.untuned_linear_acc_ci95),
                "temperature": _num(r.temperature, "{:.3g}"),
                "margin": _num(r.margin, "{:.3g}"),
                "negatives": _num(r.negatives, "{}"),
                "batch": _num(r.batch_size, "{}"),
                "train time (s)": _num(r.train_seconds, "{:.1f}"),
                "seeds": seeds,
            }
        )
    return pd.DataFrame(rows)


def paired_table(lb: pd.DataFrame) -> pd.DataFrame:
    """One testbed's paired differences to its best entry, as strings (points)."""
    rows = []
    for r in lb[lb["role"] == METHOD_ROLE].itertuples(index=False):
        best = bool(_flag(r.is_best))
        ci = f"[{_pts(r.diff_ci_low)}, {_pts(r.diff_ci_high)}]"
        ci = "—" if best or not _finite(r.diff_ci_low) else ci
        rows.append(
            {
                "rank": _num(r.rank, "{}"),
                "method": r.method,
                "objective": "—" if r.objective == "none" else r.objective,
                "linear acc (%)": _pct(r.linear_acc, r.linear_acc_ci95),
                "minus best (pts)": "—" if best else _pts(r.diff_to_best),
                "95% CI (pts)": ci,
                "p (paired t)": "—" if best else _p(r.diff_p_value),
                "paired seeds": _num(r.n_paired, "{}"),
                "vs best": _vs_best(r),
            }
        )
    return pd.DataFrame(rows)


def testbed_summary(g: pd.DataFrame) -> str:
    """One sentence: the best entry and its headroom over the untrained encoder."""
    methods = g[(g["role"] == METHOD_ROLE) & g["linear_acc"].notna()]
    if methods.empty:
        return "No self-supervised entry."
    best = methods.iloc[0]
    name = best["method"] + ("" if best["objective"] == "none" else f"/{best['objective']}")
    tied = int(methods["tied_with_best"].fillna(False).sum()) - 1
    text = f"Best: {name}, {_pct(best['linear_acc'], best['linear_acc_ci95'])}%"
    text += f" ({tied} other entr{'y' if tied == 1 else 'ies'} tied with it)."
    if _finite(best["headroom"]):
        ok = 100 * best["headroom"] >= HEADROOM_NEEDED
        text += (
            f" Headroom over the {UNTRAINED}: {_pts(best['headroom'])} points "
            f"({'meets' if ok else 'below'} the {HEADROOM_NEEDED:g} points a default-grid "
            "testbed needs)."
        )
    else:
        text += f" No {UNTRAINED} row on this testbed."
    return text


def trends_table(trends: pd.DataFrame) -> pd.DataFrame:
    def f(v: Any) -> str:
        return f"{v:+.2f}" if _finite(v) else "—"

    return pd.DataFrame(
        {
            "trend": trends["trend"],
            "source": trends["source"],
            "effect": [f(v) for v in trends["measured_effect"]],
            "95% CI": [
                f"[{f(lo)}, {f(hi)}]" if _finite(lo) else "—"
                for lo, hi in zip(trends["ci_low"], trends["ci_high"], strict=True)
            ],
            "verdict": trends["verdict"],
            "detail": trends["detail"],
        }
    )


def markdown_table(table: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |"]
    lines.append("|" + "|".join("---:" if c in RIGHT else "---" for c in cols) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_markdown(lb: pd.DataFrame, level: int = 2) -> str:
    """Legend + one heading and pipe table per testbed: embeddable in README.md."""
    if lb.empty:
        return "_No headline cells in results.csv._\n"
    parts = [LEGEND, ""]
    for (dataset, encoder), g in testbeds(lb):
        parts += [f"{'#' * level} {dataset} / {encoder}", "", testbed_summary(g), ""]
        parts.append(markdown_table(display_table(g)))
    return "\n".join(parts)


def paired_markdown(lb: pd.DataFrame, level: int = 2) -> str:
    parts = [f"{'#' * level} Paired differences to the best entry", "", PAIRED_LEGEND, ""]
    for (dataset, encoder), g in testbeds(lb):
        table = paired_table(g)
        if not table.empty:
            parts += [f"{'#' * (level + 1)} {dataset} / {encoder}", "", markdown_table(table)]
    return "\n".join(parts)


def trends_markdown(trends: pd.DataFrame, level: int = 2) -> str:
    head = [f"{'#' * level} Published trends", "", TRENDS_LEGEND, ""]
    return "\n".join(head) + "\n" + markdown_table(trends_table(trends))


QUALITY_TITLE = "Does the grid measure?"
QUALITY_LEGEND = (
    "The targets a default grid must meet for its comparisons to mean something: headroom "
    "of each testbed's best self-supervised entry over its untrained encoder (>= 10 points, "
    "95% intervals apart), the precision of the headline entries (95% half-width <= 1 "
    "point), a spread of Optuna's trials wide enough that tuning chooses (> 2 points of "
    "validation accuracy), and tuned entries at least as good as untuned ones (paired by "
    "seed). A `no` says which comparisons of this report cannot be trusted."
)


def quality_markdown(quality: pd.DataFrame, level: int = 2) -> str:
    head = [f"{'#' * level} {QUALITY_TITLE}", "", QUALITY_LEGEND, ""]
    return "\n".join(head) + "\n" + markdown_table(quality)


def report_markdown(
    lb: pd.DataFrame, trends: pd.DataFrame, quality: pd.DataFrame | None = None
) -> str:
    """The whole of reports/leaderboard.md."""
    parts = ["# Leaderboard", "", leaderboard_markdown(lb, level=2)]
    if not lb.empty:
        parts.append(paired_markdown(lb, level=2))
    if quality is not None and not quality.empty:
        parts.append(quality_markdown(quality, level=2))
    parts.append(trends_markdown(trends, level=2))
    return "\n".join(parts)


def readme_markdown(lb: pd.DataFrame, trends: pd.DataFrame) -> str:
    """What goes between the README's leaderboard markers (headings under its own ##)."""
    pointer = (
        "Paired differences to each testbed's best entry: `reports/leaderboard.md` and "
        "`reports/index.html`."
    )
    return "\n".join(
        [leaderboard_markdown(lb, level=3), pointer, "", trends_markdown(trends, level=3)]
    )
