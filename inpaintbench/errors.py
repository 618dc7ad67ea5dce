"""User-facing errors.

Every error a user can cause (bad file, wrong mask polarity, missing weights...) is raised as an
:class:`InpaintBenchError` carrying a one-line message and a concrete fix. The CLI prints these
without a traceback and exits with status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class InpaintBenchError(Exception):
    """An error caused by the user's input or environment, with the fix spelled out."""

    def __init__(self, message: str, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(f"{message} (fix: {fix})" if fix else message)


class InputError(InpaintBenchError):
    """A file or argument that cannot be used as given (corrupt image, wrong size, bad mask...)."""


class WeightsError(InpaintBenchError):
    """A weight file that is missing, unverified or unreadable."""


class UnknownNameError(InpaintBenchError):
    """An unknown model, mask-set, metric or dataset name; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        super().__init__(
            f"unknown {kind} {name!r}",
            f"use one of: {', '.join(sorted(known)) or '(none registered)'}",
        )
        self.kind = kind
        self.name = name
        self.known = sorted(known)
