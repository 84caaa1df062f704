"""reports/index.html: one self-contained page (PNGs inlined as data URIs, links relative)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from benchmark.report import markdown as md
from benchmark.report.figures import FIGURES
from benchmark.report.tables import testbeds

STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;"
    "max-width:1200px;padding:0 1em;color:#222}"
    "table.table{border-collapse:collapse;font-size:0.9em;margin:1em 0}"
    ".table th,.table td{padding:0.25em 0.6em;border-bottom:1px solid #ddd;text-align:left}"
    ".table th{background:#f3f3f3}"
    "figure{margin:2em 0}img{max-width:100%;height:auto}figcaption{color:#555}"
    "p.legend{color:#444;font-size:0.92em}"
)


def _plain(text: str) -> str:
    """Markdown emphasis and code marks dropped, then escaped."""
    return html.escape(text.replace("*", "").replace("`", ""))


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, classes="table", na_rep="—")


def _testbed_sections(lb: pd.DataFrame) -> list[str]:
    parts = ["<h2>Leaderboard</h2>", f'<p class="legend">{_plain(md.LEGEND)}</p>']
    if lb.empty:
        return [*parts, "<p>No headline cells.</p>"]
    for (dataset, encoder), g in testbeds(lb):
        parts += [
            f"<h3>{html.escape(dataset)} / {html.escape(encoder)}</h3>",
            f"<p>{html.escape(md.testbed_summary(g))}</p>",
            _table(md.display_table(g)),
        ]
    parts += [
        "<h2>Paired differences to the best entry</h2>",
        f'<p class="legend">{_plain(md.PAIRED_LEGEND)}</p>',
    ]
    for (dataset, encoder), g in testbeds(lb):
        table = md.paired_table(g)
        if not table.empty:
            parts += [f"<h3>{html.escape(dataset)} / {html.escape(encoder)}</h3>", _table(table)]
    return parts


def index_html(
    results: pd.DataFrame,
    lb: pd.DataFrame,
    trends: pd.DataFrame,
    figures: dict[str, Path],
    out: Path,
    extra_tables: list[tuple[str, pd.DataFrame]],
    notes: list[str],
) -> str:
    suites = ", ".join(sorted(results["suite"].unique()))
    links = ", ".join(
        f'<a href="{name}">{name}</a>'
        for name in ("leaderboard.csv", "leaderboard.md", "trends.csv", "metrics.json")
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Contrastive benchmark report: {html.escape(suites)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Contrastive benchmark report: suite {html.escape(suites)}</h1>",
        f"<p>{len(results)} result rows, {int(results['diverged'].sum())} diverged; "
        f"{len(lb)} leaderboard rows. Files: {links}.</p>",
        *_testbed_sections(lb),
        "<h2>Published trends</h2>",
        f'<p class="legend">{_plain(md.TRENDS_LEGEND)}</p>',
        _table(md.trends_table(trends)),
        "<h2>Figures</h2>",
    ]
    for name, png in figures.items():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        svg = png.with_suffix(".svg").relative_to(out).as_posix()
        parts.append(
            f'<figure id="{name}"><img alt="{html.escape(FIGURES[name])}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(FIGURES[name])} "
            f'(<a href="{html.escape(svg)}">SVG</a>)</figcaption></figure>'
        )
    for heading, table in extra_tables:
        parts += [f"<h2>{html.escape(heading)}</h2>", _table(table)]
    if notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
