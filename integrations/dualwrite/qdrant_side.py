"""The Qdrant side of the dual writer: applies journaled point ops through a ``QdrantClient``.

Consecutive upserts (deletes) of one collection go out as one ``upsert`` (``delete``) call of
at most ``batch_size`` points, with ``wait=True``; payload changes go point by point
(``set_payload`` / ``overwrite_payload``). All of them are idempotent, so a replay converges.

Errors: an unreachable server (connection refused, timeout, 5xx, gRPC UNAVAILABLE) or a
closed local client raise :class:`SideUnavailableError`; a refusal (4xx, a local-mode
``ValueError`` such as a wrong vector dimension or a missing collection, ``KeyError`` for a
missing point) raises :class:`SideRejectedError`.

``reconnect``: a function returning a fresh client. After the side was found unavailable,
the next :meth:`QdrantSide.apply` first calls it (a local-mode client, once closed, never
recovers; a server client does, so production code can leave it unset). A failing
``reconnect`` counts as unavailable. Not thread-safe by itself: the writer calls it under
its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from integrations.dualwrite.ops import Op, PayloadSet, PointDelete, PointUpsert
from integrations.dualwrite.sides import QDRANT, SideRejectedError, SideUnavailableError
from integrations.errors import LegacyAuthError, LegacyConnectionError

__all__ = ["QdrantSide", "classify_qdrant_error"]


def classify_qdrant_error(exc: BaseException, what: str) -> SideUnavailableError | SideRejectedError:
    """The :class:`SideUnavailableError` or :class:`SideRejectedError` for a client exception.

    Anything not recognised as a refusal counts as unavailable, so an unexpected failure
    leaves the entry pending (retried later) rather than dropping it.
    """
    message = f"Qdrant {what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, UnexpectedResponse):
        status = exc.status_code or 0
        if status >= 500 or status in (408, 429):
            return SideUnavailableError(message)
        return SideRejectedError(message)
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        name = getattr(code(), "name", "")
        return SideUnavailableError(message) if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "") else \
            SideRejectedError(message)
    if isinstance(exc, ValueError | KeyError | TypeError):  # local mode refusals, pydantic validation
        return SideRejectedError(message)
    return SideUnavailableError(message)  # connection errors, timeouts, a closed local client


class QdrantSide:
    """Writes point ops through ``client``; see the module doc for ``reconnect``."""

    name = QDRANT

    def __init__(self, client: QdrantClient, *, reconnect: Callable[[], QdrantClient] | None = None,
                 batch_size: int = 256) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.client = client
        self.reconnect = reconnect
        self.batch_size = batch_size
        self._stale = False

    def check(self) -> None:
        """List the collections once.

        Raises:
            LegacyAuthError: the server answered 401 / 403.
            LegacyConnectionError: the server (or local path) cannot be used; the message says why.
        """
        try:
            self.client.get_collections()
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise LegacyAuthError(f"Qdrant refused the credentials: {exc}") from exc
            raise LegacyConnectionError(f"Qdrant answered {exc.status_code}: {exc}") from exc
        except Exception as exc:
            raise LegacyConnectionError(f"cannot reach Qdrant: {type(exc).__name__}: {exc}") from exc

    def call(self, what: str, fn: Callable[[QdrantClient], Any]) -> Any:
        """Run ``fn(client)``, reconnecting first if needed; errors classified as in the module doc."""
        try:
            if self._stale and self.reconnect is not None:
                self.client = self.reconnect()
                self._stale = False
            return fn(self.client)
        except Exception as exc:
            classified = classify_qdrant_error(exc, what)
            if isinstance(classified, SideUnavailableError):
                self._stale = True
            raise classified from exc

    def apply(self, ops: Sequence[Op], *, first: bool) -> None:
        for (_, collection), group in groupby(ops, key=lambda op: (type(op).__name__, getattr(op, "collection", ""))):
            items = list(group)
            for start in range(0, len(items), self.batch_size):
                self._apply_group(collection, items[start:start + self.batch_size])

    def _apply_group(self, collection: str, ops: list[Op]) -> None:
        """Apply ops of one kind and one collection."""
        points = [models.PointStruct(id=op.id, vector=_vector(op.vector), payload=op.payload)
                  for op in ops if isinstance(op, PointUpsert)]
        if points:
            self.call(f"upserting points of {collection!r}",
                      lambda c: c.upsert(collection_name=collection, points=points, wait=True))
        ids: list[models.ExtendedPointId] = [op.id for op in ops if isinstance(op, PointDelete)]
        if ids:
            self.call(f"deleting points of {collection!r}", lambda c: c.delete(
                collection_name=collection, points_selector=models.PointIdsList(points=ids), wait=True))
        for op in ops:
            if isinstance(op, PayloadSet):
                self._payload(op)

    def _payload(self, op: PayloadSet) -> None:
        ids: list[models.ExtendedPointId] = [op.id]
        selector = models.PointIdsList(points=ids)
        if op.replace:
            self.call(f"overwrite_payload in {op.collection!r}", lambda c: c.overwrite_payload(
                collection_name=op.collection, payload=op.payload, points=selector, wait=True))
        else:
            self.call(f"set_payload in {op.collection!r}", lambda c: c.set_payload(
                collection_name=op.collection, payload=op.payload, points=selector, wait=True))


def _vector(vector: list[float] | dict[str, list[float]]) -> models.VectorStruct:
    if isinstance(vector, dict):
        return dict(vector.items())
    return vector
