"""Number formatting shared by every table and figure, so one metric always shows the same digits."""

from __future__ import annotations

import html
import math

from inpaintbench.metrics.info import METRICS, arrow

#: Marker of a value not distinguishable from the best of its column (see analysis.leaderboard).
TIED = "≈"

#: Decimals per metric: PSNR and FID in the papers' two decimals, the [0, 1] metrics in four.
DECIMALS: dict[str, int] = {
    "psnr": 2,
    "psnr_hole": 2,
    "ssim": 4,
    "l1": 4,
    "l1_hole": 4,
    "lpips": 4,
    "lpips_vgg": 4,
    "fid": 2,
    "fid_inf": 2,
    "kid": 5,
    "p_ids": 4,
    "u_ids": 4,
    "hole_ratio": 3,
}


def decimals(metric: str) -> int:
    return DECIMALS.get(metric, 4)


def num(value: float | None, metric: str = "", digits: int | None = None) -> str:
    """A number with the metric's decimals; NaN/None as an em dash, infinities spelled out."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.{decimals(metric) if digits is None else digits}f}"


def signed(value: float | None, metric: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return num(value, metric)
    return f"{value:+.{decimals(metric)}f}"


def ci(low: float | None, high: float | None, metric: str = "", sign: bool = False) -> str:
    f = signed if sign else num
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"[{f(low, metric)}, {f(high, metric)}]"


def pval(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    if p < 1e-4:
        return "<0.0001"
    return f"{p:.4f}"


def label(metric: str) -> str:
    """Display name of a metric or variable."""
    if metric == "hole_ratio":
        return "hole ratio"
    info = METRICS.get(metric)
    return info.label if info else metric


def header(metric: str) -> str:
    """Display name with the direction arrow (``PSNR ↑``)."""
    if metric not in METRICS:
        return label(metric)
    return f"{label(metric)} {arrow(metric)}"


def latex_escape(text: str) -> str:
    out = []
    for ch in str(text):
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        elif ch in "<>":
            out.append(f"${ch}$")
        elif ch == "↑":
            out.append(r"$\uparrow$")
        elif ch == "↓":
            out.append(r"$\downarrow$")
        elif ch == "∞":
            out.append(r"$\infty$")
        elif ch == "≈":
            out.append(r"$\approx$")
        elif ch == "α":
            out.append(r"$\alpha$")
        elif ch == "—":
            out.append("---")
        elif ch == "·":
            out.append(r"$\cdot$")
        elif ch == "†":
            out.append(r"\textdagger{}")
        elif ch == "‡":
            out.append(r"\textdaggerdbl{}")
        else:
            out.append(ch)
    return "".join(out)


def md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def html_escape(text: str) -> str:
    return html.escape(str(text), quote=True)
