"""HTML pages for the Snakemake report, which shows images and HTML but only offers other files for
download: SUMMARY.md rendered, and every tidy table the figures are drawn from."""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd

STYLE = """<style>
body { font-family: sans-serif; font-size: 14px; max-width: 1400px; margin: 1em auto; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
</style>"""


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{STYLE}'
        f"</head><body>\n{body}\n</body></html>\n"
    )


def summary_page(markdown_text: str) -> str:
    """SUMMARY.md as an HTML page (its tables as HTML tables)."""
    import markdown

    return _page("SUMMARY", markdown.markdown(markdown_text, extensions=["tables"]))


def _cell(x) -> str:
    if isinstance(x, (float, np.floating)):
        return "-" if np.isnan(x) else f"{x:.4g}"
    return "-" if x is None or x is pd.NA else str(x)


def tables_page(tables: Mapping[str, pd.DataFrame | None], max_rows: int = 200) -> str:
    """Every table (at most ``max_rows`` rows each, the count said), numbers to 4 significant digits."""
    parts = [f"<h1>Tables ({len(tables)})</h1>"]
    for name, df in tables.items():
        if df is None:
            parts.append(f"<h2>{html.escape(name)}</h2><p>missing</p>")
            continue
        shown = df.head(max_rows)
        note = f" (first {max_rows} of {len(df)} rows)" if len(df) > max_rows else f" ({len(df)} rows)"
        body = shown.map(_cell).to_html(index=False, escape=True, border=0)
        parts.append(f"<h2>{html.escape(name)}{note}</h2>\n{body}")
    return _page("Tables", "\n".join(parts))
