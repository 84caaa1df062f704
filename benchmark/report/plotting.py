"""Shared matplotlib/seaborn helpers of the report's figures: palette, grid, legends, saving."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import atomic
from benchmark.report.tables import objective_order


def objective_palette(objectives: Sequence[str]) -> dict[str, Any]:
    import seaborn as sns

    order = objective_order(objectives)
    colors = sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order))
    return dict(zip(order, colors, strict=True))


def save(fig: Any, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    for ext, kwargs in [("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})]:
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, bbox_inches="tight", facecolor="white", **kwargs)
        paths.append(atomic.write_bytes(stem.with_suffix(f".{ext}"), buf.getvalue()))
    plt.close(fig)
    return paths


def placeholder(title: str, message: str) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.4))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="0.35", wrap=True)
    return fig


def grid(n: int, ncols: int = 3, size: tuple[float, float] = (5.0, 3.8)) -> tuple[Any, list]:
    import matplotlib.pyplot as plt

    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def log2_axis(ax: Any, values: Sequence[float]) -> None:
    from matplotlib.ticker import NullLocator

    ticks = sorted({int(v) for v in values if v is not None and v is not pd.NA and v > 0})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks], rotation=45 if len(ticks) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())


METHOD_MARKERS = ["o", "X", "s", "^", "D", "P", "v", "*", "h", "<"]
METHOD_DASHES = ["", (4, 1.5), (1, 1), (3, 1.25, 1.5, 1.25), (5, 1, 1, 1), (2, 2), (6, 2)]


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """method -> (marker, dash pattern), fixed across the panels of a figure."""
    return {
        m: (METHOD_MARKERS[i % len(METHOD_MARKERS)], METHOD_DASHES[i % len(METHOD_DASHES)])
        for i, m in enumerate(sorted(methods))
    }


def figure_legend(fig: Any, sections: list[tuple[str, list[tuple[str, Any]]]]) -> None:
    """One legend for the whole figure, right of the panels; sections of (label, handle)."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for title, entries in sections:
        if not entries:
            continue
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(r"$\bf{" + title.replace(" ", r"\ ") + "}$")
        for label, handle in entries:
            handles.append(handle)
            labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def objective_entries(objectives: Sequence[str], palette: dict[str, Any]) -> list[tuple[str, Any]]:
    from matplotlib.lines import Line2D

    return [
        ("— (none)" if o == "none" else o, Line2D([], [], color=palette[o], linewidth=2.5))
        for o in palette
        if o in set(objectives)
    ]


def method_entries(styles: dict[str, tuple[str, Any]], lines: bool) -> list[tuple[str, Any]]:
    from matplotlib.lines import Line2D

    out = []
    for m, (marker, dash) in styles.items():
        h = Line2D([], [], color="0.25", marker=marker, linestyle="-" if lines else "none")
        if lines and dash:
            h.set_dashes(dash)
        out.append((m, h))
    return out
