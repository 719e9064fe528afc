"""Reads of legacy Qdrant points with ``qdrant-client``: a server URL or a local-mode path, one code path.

Points are read with ``scroll`` (ordered by point id; the returned ``next_page_offset`` is
the resume cursor), vectors and payloads included. :meth:`QdrantReader.payload_values`
scrolls one payload key without vectors (the importer's join index), :meth:`QdrantReader.retrieve`
fetches points by id. Local mode allows one client per path (file lock): close any other
client first. Not thread-safe.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from integrations.errors import LegacyAuthError, LegacyConnectionError, MappingError, MigrationError

__all__ = ["LegacyPoint", "PointId", "PointPage", "QdrantReader"]

PointId = int | str


@dataclass(frozen=True)
class LegacyPoint:
    """A point as read: its collection, id, vector field (list or ``{name: list}``) and payload."""

    collection: str
    id: PointId
    vector: Any
    payload: dict[str, Any]


@dataclass(frozen=True)
class PointPage:
    points: list[LegacyPoint]
    next_offset: PointId | None  # None = the collection is exhausted


class QdrantReader:
    """Read-only access to a Qdrant server (``url``) or local directory (``path``); a context manager."""

    def __init__(self, *, url: str | None = None, path: str | None = None, api_key: str | None = None,
                 timeout: float = 10.0) -> None:
        if (url is None) == (path is None):
            raise MigrationError("give exactly one of a Qdrant url or a local Qdrant path")
        self.url = url
        self.path = path
        self.location = url if url is not None else f"path {path}"
        self._api_key = api_key
        self._timeout = timeout
        self._client: Any = None

    def __enter__(self) -> QdrantReader:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Open the client and list collections (preflight: reachability and credentials)."""
        from qdrant_client import QdrantClient

        if self.path is not None:
            if not os.path.isdir(self.path):
                raise LegacyConnectionError(f"no local Qdrant data at {self.path} (not a directory)")
            try:
                self._client = QdrantClient(path=self.path)
            except (RuntimeError, OSError, ValueError) as exc:  # e.g. another client holds the lock
                raise LegacyConnectionError(f"cannot open local Qdrant at {self.path}: {exc}") from exc
        else:
            self._client = QdrantClient(url=self.url, api_key=self._api_key, timeout=int(self._timeout))
        try:
            self.collections()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the client, turning transport and HTTP errors into the typed migration errors."""
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        if self._client is None:
            raise MigrationError("QdrantReader is not connected")
        try:
            return fn(*args, **kwargs)
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise LegacyAuthError(f"Qdrant {self.location} refused the API key ({exc.status_code})") from exc
            if exc.status_code == 404:
                raise MappingError(f"Qdrant {self.location}: {what} not found") from exc
            raise MigrationError(f"Qdrant {self.location}: {what} failed: {exc}") from exc
        except (ResponseHandlingException, ConnectionError, OSError, TimeoutError) as exc:
            raise LegacyConnectionError(f"Qdrant {self.location} is unreachable ({what}): {exc}") from exc

    # ------------------------------------------------------------------ schema and counts
    def collections(self) -> list[str]:
        response = self._call("listing collections", self._client.get_collections)
        return sorted(c.name for c in response.collections)

    def vector_sizes(self, collection: str) -> dict[str | None, int]:
        """Dense vector sizes of ``collection``: ``{None: size}`` for an unnamed vector, else ``{name: size}``."""
        info = self._call(f"collection {collection!r}", self._client.get_collection, collection)
        vectors = info.config.params.vectors
        if vectors is None:
            return {}
        if isinstance(vectors, dict):
            return {name: int(params.size) for name, params in vectors.items()}
        return {None: int(vectors.size)}

    def count(self, collection: str) -> int:
        return int(self._call(f"counting {collection!r}", self._client.count, collection, exact=True).count)

    # ------------------------------------------------------------------ points
    def pages(self, collection: str, offset: PointId | None, limit: int) -> Iterator[PointPage]:
        """Pages of points from ``offset`` (None = the start) to the end of the collection."""
        while True:
            records, next_offset = self._call(
                f"scrolling {collection!r}", self._client.scroll, collection, limit=limit, offset=offset,
                with_payload=True, with_vectors=True)
            page = PointPage([_point(collection, r) for r in records], next_offset)
            yield page
            if next_offset is None:
                return
            offset = next_offset

    def payload_values(self, collection: str, key: str, limit: int) -> Iterator[tuple[PointId, dict[str, Any]]]:
        """``(point id, {key: value})`` of every point that has payload ``key``, in id order; no vectors read.

        (A ``MatchAny`` filter per page of node keys was measured instead: local mode checks it
        point by point against every value, 20 s of a 24 s node phase at 5k points.)
        """
        offset: PointId | None = None
        while True:
            records, offset = self._call(f"reading {key!r} of {collection!r}", self._client.scroll, collection,
                                         limit=limit, offset=offset, with_payload=[key], with_vectors=False)
            for record in records:
                payload = dict(record.payload or {})
                if key in payload:
                    yield record.id, payload
            if offset is None:
                return

    def retrieve(self, collection: str, ids: Sequence[PointId]) -> list[LegacyPoint]:
        records = self._call(f"retrieving points of {collection!r}", self._client.retrieve, collection,
                             ids=list(ids), with_payload=True, with_vectors=True)
        return [_point(collection, r) for r in records]

    def sample(self, collection: str, limit: int) -> list[LegacyPoint]:
        """Up to ``limit`` points picked at random (Qdrant's random sample query)."""
        from qdrant_client import models

        response = self._call(f"sampling {collection!r}", self._client.query_points, collection,
                              query=models.SampleQuery(sample=models.Sample.RANDOM), limit=limit,
                              with_payload=True, with_vectors=True)
        return [_point(collection, r) for r in response.points]


def _point(collection: str, record: Any) -> LegacyPoint:
    return LegacyPoint(collection, record.id, record.vector, dict(record.payload or {}))
