"""Progress reporting of an import: one bar per phase with counts and rates (tqdm), or nothing.

The importer calls ``start(phase, total, done)`` when a phase (re)starts — ``done`` is what an
earlier, interrupted run already committed — then ``advance(n)`` per committed batch and
``finish()``. Implementations need not be thread-safe (the importer is single-threaded).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

__all__ = ["NoProgress", "Progress", "TqdmProgress"]

_UNITS = {"nodes": "node", "points": "point", "relationships": "rel"}


class Progress(Protocol):
    def start(self, phase: str, total: int | None, done: int = 0) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    """Reports nothing."""

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        return None

    def advance(self, n: int) -> None:
        return None

    def finish(self) -> None:
        return None


class TqdmProgress:
    """A tqdm bar per phase on ``stream`` (stderr by default): ``nodes: 2500/5000 [00:01, 2100 node/s]``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = None

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        from tqdm import tqdm

        self.finish()
        self._bar = tqdm(total=total, initial=done, desc=phase, unit=_UNITS.get(phase.split(maxsplit=1)[0], "item"),
                         file=self._stream, dynamic_ncols=True, mininterval=0.5)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
