"""What the dual writer needs from each side (Neo4j, Qdrant, T4DM): apply ops, and say how it failed.

A side's :meth:`Side.apply` performs a journal entry's ops idempotently and raises one of
two exceptions, so the writer can tell a transient outage from a bad write:

* :class:`SideUnavailableError` — the side could not be reached (server down, timeout, closed
  client): retry later, the entry stays pending.
* :class:`SideRejectedError` — the side understood the request and refused it (bad
  statement, constraint, wrong vector dimension): retrying cannot help.

Side names are fixed: ``"neo4j"``, ``"qdrant"`` (the legacy sides, also the journal
``source`` of a write) and ``"t4dm"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from integrations.dualwrite.ops import Op

__all__ = ["LEGACY_SIDES", "NEO4J", "QDRANT", "T4DM", "Side", "SideRejectedError", "SideUnavailableError"]

NEO4J, QDRANT, T4DM = "neo4j", "qdrant", "t4dm"
LEGACY_SIDES = (NEO4J, QDRANT)


class SideUnavailableError(Exception):
    """The side could not be reached; the write may be retried later unchanged."""


class SideRejectedError(Exception):
    """The side refused the write as invalid; retrying it cannot succeed."""


class Side(Protocol):
    """One store the dual writer keeps in step."""

    name: str

    def check(self) -> None:
        """Verify the side answers; raise LegacyConnectionError / LegacyAuthError naming it if not."""
        ...

    def apply(self, ops: Sequence[Op], *, first: bool) -> None:
        """Apply ``ops`` in order, idempotently.

        ``first`` is True when no other side has applied this journal entry yet: the side is
        then the judge of the write and applies its own validity rules strictly; otherwise
        another side already accepted it and this side follows (see T4DM's plain DELETE).
        """
        ...
