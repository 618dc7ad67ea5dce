"""The standalone HTML page every HTML output shares: a jinja2 template and the inline CSS.

A leaf of :mod:`inpaintbench.analysis`: it imports nothing from the analysis modules, so any of
them (leaderboard, compare, correlate, report, humans) can wrap its fragment in a page without an
import cycle. The page is self-contained (inline CSS, no scripts, no external resources) so a report
opens offline. The template and stylesheet live in ``inpaintbench/analysis/templates/`` (package data).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from inpaintbench.analysis import fmt

TEMPLATES = Path(__file__).resolve().parent / "templates"

# The inline stylesheet (``templates/report.css``); the leading newline keeps pages byte-identical
# to the ones written before the CSS moved out of Python.
CSS = "\n" + (TEMPLATES / "report.css").read_text(encoding="utf-8")

# The id a browser-side error hook gives the element it adds on a JavaScript error. Pages never ship
# the hook; the browser test (tests/test_analysis_report.py) injects it and looks for this id.
ERROR_MARKER = "inpaintbench-js-error"


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2  # lazily: only HTML outputs need it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,  # a line holding only a {% tag %} leaves no blank line behind
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render_template(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` (autoescaped; pass pre-rendered HTML wrapped in ``markupsafe.Markup``)."""
    return _environment().get_template(name).render(**context)


def html_page(title: str, body: str) -> str:
    """A complete standalone HTML document around the HTML fragment ``body``, with the inline CSS."""
    from markupsafe import Markup

    # The title is escaped by fmt.html_escape (as every other text in our pages), not by jinja2,
    # so that apostrophes come out the same everywhere.
    return render_template("page.html.j2", title=Markup(fmt.html_escape(title)), css=Markup(CSS), body=Markup(body))
