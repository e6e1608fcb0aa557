"""``python -m bench report RESULTS.json… --out REPORT.html``: results as one self-contained page.

Every results JSON of the harness may carry two keys this renderer reads; everything else in
the file is ignored (apart from ``scenario``, ``at`` and ``params``, shown as the heading and
a folded table)::

    "summary": {"<headline figure>": <str | int | float | bool | null>, ...}
    "plots": [
        {
            "title": str,
            "x_label": str,
            "y_label": str,
            "series": {"<name>": [[x, y], ...], ...}
        },
        ...
    ]

``summary`` is a flat dict of headline figures, shown as a table in its own order (with
several files, side by side: one column per file). Each entry of ``plots`` becomes one
line chart, one line per series; a ``y`` of ``null`` leaves a gap; the y axis starts at 0,
or is logarithmic when the values span more than a factor of 100. Plots are PNGs embedded as
base64, so the page needs nothing else to open.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

Plot = dict[str, Any]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-top: 1px solid #ccc;
padding-top: 1em; } table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } img { max-width: 100%; }
summary { cursor: pointer; color: #555; }
"""


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f"<td{' class=n' if numeric else ''}>{html.escape(_format(value))}</td>"


def plot_png(plot: Plot) -> bytes:
    """One plot of the schema above as a PNG."""
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, points in plot["series"].items():
        xs = [float(x) for x, _ in points]
        ys = [math.nan if y is None else float(y) for _, y in points]
        # Markers keep a one-point series (a single run, a short ramp) visible.
        ax.plot(xs, ys, marker="o" if len(points) <= 30 else None, markersize=4, label=name)
    ax.set_title(plot["title"])
    ax.set_xlabel(plot["x_label"])
    ax.set_ylabel(plot["y_label"])
    ax.grid(alpha=0.3)
    ys = [y for points in plot["series"].values() for _, y in points if y is not None]
    # A latency that explodes past a limit would flatten everything below it to the axis.
    if ys and min(ys) > 0 and max(ys) / min(ys) > 100:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if plot["series"]:
        ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _table(rows: list[tuple[str, list[Any]]], columns: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>{''.join(_cell(v) for v in values)}</tr>"
        for name, values in rows
    )
    return f"<table>{f'<tr><th></th>{head}</tr>' if head else ''}{body}</table>"


def _section(name: str, result: dict[str, Any]) -> str:
    title = f"{result.get('scenario', 'results')} · {result.get('at', '')} · {name}"
    parts = [f"<h2>{html.escape(title)}</h2>"]
    summary = result.get("summary", {})
    if summary:
        parts.append(_table([(k, [v]) for k, v in summary.items()]))
    for plot in result.get("plots", []):
        png = base64.b64encode(plot_png(plot)).decode("ascii")
        alt = html.escape(plot["title"], quote=True)
        parts.append(f'<p><img alt="{alt}" src="data:image/png;base64,{png}"></p>')
    params = result.get("params")
    if isinstance(params, dict) and params:
        rows = [(k, [v]) for k, v in params.items()]
        parts.append(f"<details><summary>parameters</summary>{_table(rows)}</details>")
    return "\n".join(parts)


def render(results: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """The page for ``(name, results JSON)`` pairs."""
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>Parta bench report</title><style>{_STYLE}</style></head><body>",
        "<h1>Parta bench report</h1>",
    ]
    if len(results) > 1:
        keys = list(dict.fromkeys(k for _, r in results for k in r.get("summary", {})))
        rows = [(k, [r.get("summary", {}).get(k) for _, r in results]) for k in keys]
        parts.append(_table(rows, [name for name, _ in results]))
    parts += [_section(name, result) for name, result in results]
    parts.append("</body></html>")
    return "\n".join(parts)


def write(paths: Sequence[Path], out: Path) -> Path:
    results = [(p.name, json.loads(p.read_text())) for p in paths]
    out.write_text(render(results), encoding="utf-8")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, nargs="+", help="results JSON files")
    parser.add_argument("--out", type=Path, help="HTML file (default: the first JSON's, .html)")


def main(args: argparse.Namespace) -> None:
    out = write(args.results, args.out or args.results[0].with_suffix(".html"))
    print(f"report: {out}")
