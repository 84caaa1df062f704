"""The report's figures (seaborn on matplotlib's Agg backend), one function per figure.

Accuracy curves are means over seeds with the 95% t interval as a band; each testbed
(dataset, encoder) gets its own panel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from benchmark.report.plotting import (
    figure_legend,
    grid,
    log2_axis,
    method_entries,
    method_styles,
    objective_entries,
    placeholder,
)
from benchmark.report.stats import t_interval
from benchmark.report.tables import (
    METHOD_ROLE,
    REFERENCE_ROLES,
    TESTBED,
    objective_order,
    prefer_tuned,
)

FIGURES = {
    "acc_vs_batch": "Linear-probe accuracy vs batch size",
    "acc_vs_negatives": "Linear-probe accuracy vs number of negatives",
    "acc_vs_temperature": "Linear-probe accuracy vs temperature",
    "method_objective_heatmap": "Method x objective linear-probe accuracy",
    "paired_differences": "Paired difference to each testbed's best entry",
    "sensitivity": "Sensitivity of validation accuracy to temperature and margin",
    "mi_check": "Mutual-information bounds on gaussian_mi",
}


MAX_SERIES = 4  # more series than this in one panel: one panel per objective instead


def _split(panels: list[tuple[str, str, pd.DataFrame]]) -> list[tuple[str, str, pd.DataFrame]]:
    """(heading, testbed, rows) panels; a crowded one becomes one panel per objective."""
    out = []
    for heading, testbed, rows in panels:
        if rows.groupby(["method", "objective"]).ngroups <= MAX_SERIES:
            out.append((heading, testbed, rows))
            continue
        for o in objective_order(rows["objective"].unique()):
            out.append(
                (f"{o} ({heading})" if heading else o, testbed, rows[rows["objective"] == o])
            )
    return out


def _line_panels(
    data: pd.DataFrame,
    panels: list[tuple[str, str, pd.DataFrame]],
    x: str,
    xlabel: str,
    title: str,
    palette: dict[str, Any],
) -> Any:
    """Linear accuracy (%) vs x (log2), hue objective, style method; y shared per testbed."""
    import seaborn as sns

    styles = method_styles(data["method"].unique())
    multi_method = len(styles) > 1
    panels = _split(panels)
    many = len(panels) > 4
    ncols = 5 if many else 3
    fig, axes = grid(len(panels), ncols=ncols, size=(3.6, 3.0) if many else (5.0, 3.8))
    ylims: dict[str, list[float]] = {}
    for i, (ax, (heading, testbed, rows)) in enumerate(zip(axes, panels, strict=True)):
        rows = rows.assign(acc=100 * rows["linear_acc"])
        present = sorted(rows["method"].unique())
        sns.lineplot(
            data=rows,
            x=x,
            y="acc",
            hue="objective",
            hue_order=[o for o in palette if o in set(rows["objective"])],
            palette=palette,
            style="method" if multi_method else None,
            style_order=present if multi_method else None,
            markers={m: styles[m][0] for m in present} if multi_method else True,
            dashes={m: styles[m][1] for m in present} if multi_method else True,
            marker=None if multi_method else "o",
            markersize=7,
            errorbar=lambda v: tuple(100 * np.asarray(t_interval(np.asarray(v) / 100))),
            err_style="band",
            legend=False,
            ax=ax,
        )
        log2_axis(ax, rows[x].dropna().astype(float).tolist())
        ax.set_title(f"{heading}\n{testbed}" if heading else testbed)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("linear-probe test accuracy (%)" if i % ncols == 0 else "")
        lo, hi = ax.get_ylim()
        ylims.setdefault(testbed, [lo, hi])
        ylims[testbed] = [min(lo, ylims[testbed][0]), max(hi, ylims[testbed][1])]
    for ax, (_, testbed, _) in zip(axes, panels, strict=True):
        ax.set_ylim(*ylims[testbed])
    fig.suptitle(title + " (mean, band = 95% t interval over seeds)")
    fig.tight_layout(w_pad=2.0)
    if x != "temperature":
        fig.text(0.01, -0.02, hyperparameter_note(data), ha="left", va="top", fontsize=9)
    sections = [("objective", objective_entries(data["objective"].unique(), palette))]
    if multi_method:
        sections.append(("method", method_entries(styles, lines=True)))
    figure_legend(fig, sections)
    return fig


def hyperparameter_note(rows: pd.DataFrame) -> str:
    """Which temperature / margin the points use: each tuned pair's value on the testbed
    (tuned once per pair and testbed, at the tuning cell), the same at every point of the
    axis; several values when the rows span testbeds or fixed points."""
    used = []
    for (method, objective), g in rows.groupby(["method", "objective"], sort=True):
        for col, sym in (("temperature", "τ"), ("margin", "m")):
            values = sorted(g[col].dropna().unique())
            if values:
                kind = "tuned" if g["tuned"].all() else "default"
                shown = ", ".join(f"{v:.3g}" for v in values)
                used.append(f"{method}/{objective} {sym}={shown} ({kind})")
    if not used:
        return "No temperature or margin on these points."
    return "Every point of a series uses one value: " + "; ".join(used)


def figure_acc_vs_batch(results: pd.DataFrame, palette: dict[str, Any]) -> Any:
    title = FIGURES["acc_vs_batch"]
    rows = prefer_tuned(results[(results["sweep"] == "batch") & ~results["diverged"]])
    if rows.empty:
        return placeholder(title, "no batch-size sweep cells (sweep = batch) in results")
    panels = [("", f"{d} / {e}", g) for (d, e), g in rows.groupby(TESTBED, sort=True)]
    xlabel = "batch size (log2 scale)"
    return _line_panels(rows, panels, "batch_size", xlabel, title, palette)


def figure_acc_vs_negatives(results: pd.DataFrame, palette: dict[str, Any]) -> Any:
    title = FIGURES["acc_vs_negatives"]
    rows = results[results["sweep"].isin(["negatives", "queue"]) & ~results["diverged"]]
    rows = prefer_tuned(rows[rows["negatives"].notna() & (rows["negatives"].fillna(0) > 0)])
    if rows.empty:
        return placeholder(title, "no negatives sweep cells (sweep = negatives / queue) in results")
    rows = rows.assign(negatives=rows["negatives"].astype(float))
    names = {"negatives": "in-batch", "queue": "queue / memory bank K"}
    panels = [
        (names[s], f"{d} / {e}", g) for (s, d, e), g in rows.groupby(["sweep", *TESTBED], sort=True)
    ]
    xlabel = "negatives per anchor (log2 scale)"
    return _line_panels(rows, panels, "negatives", xlabel, title, palette)


def figure_acc_vs_temperature(results: pd.DataFrame, palette: dict[str, Any]) -> Any:
    """The temperature sweep: each point a fixed temperature (no tuned value is used)."""
    title = FIGURES["acc_vs_temperature"]
    rows = results[(results["sweep"] == "temperature") & ~results["diverged"]]
    rows = rows[rows["temperature"].notna()]
    if rows.empty:
        return placeholder(title, "no temperature sweep cells (sweep = temperature) in results")
    rows = rows.assign(temperature=rows["temperature"].astype(float))
    panels = [("", f"{d} / {e}", g) for (d, e), g in rows.groupby(TESTBED, sort=True)]
    xlabel = "temperature, fixed (log2 scale)"
    return _line_panels(rows, panels, "temperature", xlabel, title, palette)


def figure_heatmap(lb: pd.DataFrame) -> Any:
    import seaborn as sns

    title = FIGURES["method_objective_heatmap"]
    if lb.empty or lb["linear_acc"].notna().sum() == 0:
        return placeholder(title, "no headline cells in results")
    groups = list(lb.groupby(TESTBED, sort=True))
    n_methods = lb["method"].nunique()
    n_obj = lb["objective"].nunique()
    size = (2.5 + 0.9 * n_obj, 1.5 + 0.45 * n_methods)
    with sns.axes_style("white"):
        fig, axes = grid(len(groups), ncols=2, size=size)
    for ax, ((d, e), g) in zip(axes, groups, strict=True):
        table = g.pivot_table(
            index="method", columns="objective", values="linear_acc", aggfunc="mean"
        )
        methods = sorted(table.index, key=lambda m: (m in REFERENCE_ROLES, m))
        table = 100 * table.reindex(index=methods, columns=objective_order(table.columns))
        table.columns = ["—" if c == "none" else c for c in table.columns]
        table.index = [REFERENCE_ROLES.get(m, m) for m in table.index]
        sns.heatmap(
            table,
            annot=True,
            fmt=".1f",
            cmap="viridis",
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": "linear-probe test accuracy (%)"},
            ax=ax,
        )
        ax.set_title(f"{d} / {e}")
        ax.set_xlabel("objective (— = method without an objective)")
        ax.set_ylabel("method")
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(title + " (headline cells, mean over seeds)")
    fig.tight_layout()
    return fig


def figure_paired(lb: pd.DataFrame) -> Any:
    """Per testbed: each entry's paired difference to the best, 95% interval as a bar."""
    title = FIGURES["paired_differences"]
    rows = lb[(lb["role"] == METHOD_ROLE) & lb["diff_to_best"].notna()] if not lb.empty else lb
    groups = [(k, g) for k, g in rows.groupby(TESTBED, sort=True) if len(g) > 1]
    if not groups:
        return placeholder(title, "no testbed with two or more self-supervised entries")
    import matplotlib.pyplot as plt

    sizes = [len(g) + 1.5 for _, g in groups]  # one column, each panel as tall as its entries
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(8.5, 0.9 + 0.3 * sum(sizes)),
        squeeze=False,
        gridspec_kw={"height_ratios": sizes},
    )
    axes = list(axes.ravel())
    colors = {"best": "black", "tied": "tab:blue", "below": "tab:red"}
    for ax, ((d, e), g) in zip(axes, groups, strict=True):
        g = g.iloc[::-1]  # best at the top
        names = [
            m if o == "none" else f"{m}/{o}"
            for m, o in zip(g["method"], g["objective"], strict=True)
        ]
        y = np.arange(len(g))
        status = [
            "best" if b else ("tied" if t else "below")
            for b, t in zip(
                g["is_best"].fillna(False), g["tied_with_best"].fillna(True), strict=True
            )
        ]
        mean = 100 * g["diff_to_best"].to_numpy(dtype=float)
        low = 100 * g["diff_ci_low"].to_numpy(dtype=float)
        high = 100 * g["diff_ci_high"].to_numpy(dtype=float)
        for i, st in enumerate(status):
            err = [[mean[i] - low[i]], [high[i] - mean[i]]] if np.isfinite(low[i]) else None
            ax.errorbar(mean[i], y[i], xerr=err, fmt="o", color=colors[st], capsize=3)
        ax.axvline(0, color="0.4", linestyle="--", linewidth=1)
        ax.set_ylim(-0.6, len(g) - 0.4)
        ax.set_yticks(y)
        ax.set_yticklabels(names)
        ax.set_xlabel("linear acc minus the best entry (points), 95% paired t interval")
        ax.set_title(f"{d} / {e}")
    fig.suptitle(title + " (paired by seed)")
    fig.tight_layout()
    from matplotlib.lines import Line2D

    entries = [
        (k, Line2D([], [], color=c, marker="o", linestyle="none")) for k, c in colors.items()
    ]
    figure_legend(fig, [("vs best", entries)])
    return fig


def figure_sensitivity(trials: pd.DataFrame | None, reason: str, palette: dict[str, Any]) -> Any:
    """One panel per (objective, hyperparameter): completed trials' val accuracy, best starred."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    title = FIGURES["sensitivity"]
    if trials is None:
        return placeholder(title, f"no trials ({reason})")
    done = trials[(trials["state"] == "COMPLETE") & trials["val_acc"].notna()]
    panels = []
    for objective in objective_order(done["objective"].unique()):
        rows = done[done["objective"] == objective]
        for param in ["temperature", "margin"]:
            sub = rows[rows[param].notna()]
            if param == "temperature":
                sub = sub[sub[param] > 0]
            if len(sub):
                panels.append((objective, param, sub.assign(acc=100 * sub["val_acc"])))
    if not panels:
        why = reason or "none completed with a temperature or margin"
        return placeholder(title, f"no completed trials ({why})")
    styles = method_styles(done["method"].unique())
    fig, axes = grid(len(panels), ncols=3, size=(4.6, 3.6))
    for ax, (objective, param, rows) in zip(axes, panels, strict=True):
        for method, g in rows.groupby("method", sort=True):
            g = g.sort_values(param)
            ax.plot(
                g[param],
                g["acc"],
                linestyle="none",
                marker=styles[method][0],
                color=palette.get(objective, "C0"),
                alpha=0.75,
                markersize=7,
            )
            best = g.loc[g["acc"].idxmax()]
            ax.plot(
                [best[param]],
                [best["acc"]],
                marker="*",
                markersize=17,
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="black",
                markeredgewidth=1.2,
            )
        if param == "temperature":
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{param} (dimensionless{', log scale' if param == 'temperature' else ''})")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(f"{objective}: {len(rows)} completed trials")
    fig.suptitle(title + " (completed Optuna trials)")
    fig.tight_layout()
    star = Line2D(
        [],
        [],
        marker="*",
        markersize=14,
        linestyle="none",
        markerfacecolor="none",
        markeredgecolor="black",
    )
    figure_legend(
        fig, [("method", method_entries(styles, lines=False)), ("marker", [("best trial", star)])]
    )
    return fig


def figure_mi(mi: pd.DataFrame | None, reason: str) -> Any:
    import seaborn as sns
    from matplotlib.lines import Line2D

    title = FIGURES["mi_check"]
    if mi is None or mi.empty:
        return placeholder(title, f"no MI check ({reason})")
    sizes = sorted(int(b) for b in mi["batch_size"].dropna().unique())
    bounds = sorted(mi["bound"].unique())
    palette = dict(zip(bounds, sns.color_palette("Set2", len(bounds)), strict=True))
    fig, axes = grid(len(sizes), ncols=3, size=(4.8, 4.0))
    for ax, n in zip(axes, sizes, strict=True):
        rows = mi[mi["batch_size"] == n]
        sns.lineplot(
            data=rows,
            x="true_mi",
            y="estimate",
            hue="bound",
            hue_order=bounds,
            palette=palette,
            marker="o",
            errorbar=t_interval,
            legend=False,
            ax=ax,
        )
        hi = float(np.nanmax([rows["true_mi"].max(), rows["estimate"].max(), math.log(n)]))
        lo = float(min(0.0, np.nanmin(rows["estimate"])))
        ax.plot([0, hi], [0, hi], color="0.4", linestyle="--", linewidth=1)
        ax.axhline(math.log(n), color="crimson", linestyle=":", linewidth=1.5)
        ax.annotate(
            f"log N = {math.log(n):.2f}",
            (0.02, math.log(n)),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            color="crimson",
            fontsize="small",
        )
        ax.set_ylim(lo - 0.1, hi * 1.08 + 0.1)
        ax.set_xlabel("true mutual information (nats)")
        ax.set_ylabel("bound estimate (nats)")
        ax.set_title(f"batch size N = {n}")
    fig.suptitle(title + " (mean estimate vs true MI)")
    fig.tight_layout()
    sections = [
        ("bound", [(b, Line2D([], [], color=palette[b], marker="o", linewidth=2)) for b in bounds]),
        (
            "reference",
            [
                ("true MI (y = x)", Line2D([], [], color="0.4", linestyle="--")),
                ("log N ceiling", Line2D([], [], color="crimson", linestyle=":", linewidth=1.5)),
            ],
        ),
    ]
    figure_legend(fig, sections)
    return fig
