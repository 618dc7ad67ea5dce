"""The look and the output of every figure: one style, colours, markers, and atomic saving.

Okabe-Ito colours with distinct markers, so lines stay apart for colour-blind readers and in
greyscale print (Okabe & Ito 2008, "Color Universal Design"). Figures are built on
``matplotlib.figure.Figure`` directly (Agg canvas), never through pyplot, so nothing here touches
global backend state.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

from inpaintbench.errors import InputError
from inpaintbench.results import atomic_write_bytes

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
FIGURE_FORMATS = ("png", "svg", "pdf")

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.prop_cycle": mpl.cycler(color=list(OKABE_ITO)),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    with mpl.rc_context(STYLE):
        yield


def color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def new_figure(width: float, height: float) -> Figure:
    with style():
        return Figure(figsize=(width, height), layout="constrained")


def figure_bytes(fig: Figure, fmt_name: str = "png") -> bytes:
    with style():
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt_name)
    return buf.getvalue()


def figure_html(fig: Figure, alt: str, caption: str = "") -> str:
    """``fig`` as an inline ``<figure>`` HTML fragment (base64 PNG data URI, so the page stays offline)."""
    data = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
    cap = f"<figcaption>{html.escape(caption, quote=True)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">{cap}</figure>'


def save_figure(fig: Figure, path: str | os.PathLike[str], also: Sequence[str] = ()) -> list[Path]:
    """Write ``fig`` to ``path`` (format from its suffix) and to the same stem in each of ``also``.

    Writes are atomic. Returns the paths written.
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in FIGURE_FORMATS:
        raise InputError(
            f"cannot write a figure as {path.name!r}",
            f"use a file name ending in one of: {', '.join('.' + f for f in FIGURE_FORMATS)}",
        )
    written = []
    for f in [ext] + [a for a in also if a != ext]:
        if f not in FIGURE_FORMATS:
            raise InputError(f"unknown figure format {f!r}", f"use one of: {', '.join(FIGURE_FORMATS)}")
        p = path.with_suffix("." + f)
        atomic_write_bytes(p, figure_bytes(fig, f))
        written.append(p)
    return written


def grid_shape(k: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(k, max_cols)
    return math.ceil(k / cols), cols


def legend(fig: Figure, handles: list[Any], labels: list[str], markerscale: float = 1.0) -> None:
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=min(len(labels), 4),
            frameon=False,
            markerscale=markerscale,
        )
