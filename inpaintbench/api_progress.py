"""Progress bars for the Python API: rich on a terminal, one updating output cell in Jupyter.

rich's own live display in Jupyter needs ``ipywidgets`` (without it, rich warns on every refresh and
shows nothing), so in a notebook the same rich columns are rendered to HTML and pushed into one
``IPython.display`` handle, which every front end (Jupyter, VS Code, Colab, nbconvert) shows and
keeps in the saved notebook. Nothing else is printed: no banners.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (the same test rich uses)."""
    from rich.console import _is_jupyter

    return bool(_is_jupyter())


def _columns() -> list[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]


class NotebookProgress:
    """The ``add_task``/``advance`` subset of :class:`rich.progress.Progress` the runner uses, shown
    as one HTML output that is updated in place (at most every ``interval`` seconds, and at the end)."""

    def __init__(self, interval: float = 0.25):
        import io

        from rich.console import Console
        from rich.progress import Progress

        self._console = Console(file=io.StringIO(), record=True, width=100, force_jupyter=False,
                                force_terminal=True, color_system="truecolor")
        self._progress = Progress(*_columns(), console=self._console, auto_refresh=False)
        self._handle: Any = None
        self._interval = interval
        self._last = 0.0

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **kw: Any) -> Any:
        task = self._progress.add_task(description, total=total, completed=completed, **kw)
        self._show(force=True)
        return task

    def advance(self, task: Any, advance: float = 1) -> None:
        self._progress.advance(task, advance)
        self._show()

    def render(self) -> tuple[str, str]:
        """(plain text, HTML) of the current bars."""
        self._console.print(self._progress.get_renderable())
        text = self._console.export_text(clear=False)
        html = self._console.export_html(inline_styles=True, clear=True,
                                         code_format="<pre style=\"margin:0\">{code}</pre>")
        return text.rstrip(), html

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        from IPython.display import display

        text, html = self.render()
        bundle = {"text/plain": text, "text/html": html}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def close(self) -> None:
        for task in self._progress.tasks:
            if task.total is not None:
                self._progress.update(task.id, completed=task.completed)
        self._show(force=True)


@contextmanager
def api_progress(progress: bool | None) -> Iterator[Any]:
    """``None``: a bar in Jupyter or on a terminal's stderr, none otherwise (pipes, CI logs);
    ``True``: always (stderr outside Jupyter); ``False``: never."""
    if progress is False:
        yield None
        return
    if in_jupyter():
        bar = NotebookProgress()
        try:
            yield bar
        finally:
            bar.close()
        return
    if progress is None and not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*_columns(), console=Console(stderr=True), transient=False) as bar:
        yield bar
