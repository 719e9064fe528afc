"""Drop-in wrapper for the app's ``QdrantClient``: mirrored point writes, reads from the primary.

``QdrantShim(writer)`` stands in for the client the :class:`DualWriter`'s Qdrant side holds.

Mirrored writes (validated before anything is journaled or sent; always ``wait=True``):

* ``upsert(collection, points)`` — a list of ``PointStruct`` or a ``Batch``; dense vectors,
  unnamed or named. Each vector's dimension is checked against the collection's config
  (read once per collection and cached) and the mapped vector against the store's
  dimension: a mismatch raises :class:`VectorShapeError` naming collection, point and
  vector, and nothing is applied anywhere.
* ``delete(collection, selector)`` — ids, ``PointIdsList``, ``FilterSelector`` or ``Filter``.
  A filter is resolved to ids on Qdrant first (refused with :class:`DualWriteError` while
  the Qdrant side owes journal entries, since it would see stale data;
  :class:`LegacyConnectionError` if Qdrant is down); points written after the resolution
  are not deleted.
* ``set_payload`` / ``overwrite_payload`` (same selectors; the nested ``key`` form is refused).

Options the shim cannot mirror (``ordering``, ``shard_key_selector``, ``update_filter``,
``update_mode``, sparse / multi vectors, inference objects) raise :class:`InvalidWriteError`.
The return value is an ``UpdateResult`` whose ``operation_id`` is the journal seq and whose
status is ``COMPLETED`` when every side applied it, ``ACKNOWLEDGED`` when a side is pending.

Reads: while the legacy side is primary, ``query_points`` and ``retrieve`` go to Qdrant
unchanged. After cut-over they are served from T4DM: nearest points by cosine similarity
(the same score as a Cosine collection; other distances are refused), ids and payloads as
Qdrant stored them; ``search_params.hnsw_ef`` becomes T4DM's ``ef``; ``query_filter``,
``prefetch`` and other options that T4DM cannot translate raise :class:`UnsupportedQueryError`.
These reads do not record learning (``learn=False``), so T4DM keeps mirroring the legacy
data exactly.

Every other attribute is the real client's. Thread-safety: as the client's.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import models
from qdrant_client.http.models import QueryResponse

from integrations.dualwrite.errors import DualWriteError, InvalidWriteError, UnsupportedQueryError
from integrations.dualwrite.ops import (
    Op,
    PayloadSet,
    PointDelete,
    PointId,
    PointUpsert,
    canonical_point_id,
    plain_properties,
)
from integrations.dualwrite.qdrant_side import QdrantSide
from integrations.dualwrite.sides import QDRANT, SideRejectedError, SideUnavailableError
from integrations.dualwrite.t4dm_side import point_filter
from integrations.dualwrite.writer import DualWriter, WriteResult
from integrations.errors import LegacyConnectionError, VectorShapeError
from integrations.mapping import LEGACY_KEY

__all__ = ["CollectionShape", "QdrantShim"]

_UNMIRRORABLE = ("ordering", "shard_key_selector", "update_filter", "update_mode")
_SCROLL_PAGE = 1000


class CollectionShape:
    """Vector names, sizes and distances of one collection (``None`` = the unnamed vector)."""

    def __init__(self, name: str, params: Any) -> None:
        self.name = name
        items = params.items() if isinstance(params, Mapping) else [(None, params)]
        self.sizes: dict[str | None, int] = {k: int(v.size) for k, v in items}
        self.distances: dict[str | None, str] = {k: str(getattr(v.distance, "value", v.distance)) for k, v in items}

    def check(self, point_id: PointId, vector: Any) -> list[float] | dict[str, list[float]]:
        """The vector in journal form, checked against the collection's sizes."""
        if isinstance(vector, Mapping):
            if None in self.sizes:
                raise VectorShapeError(f"collection {self.name!r} has one unnamed vector, point {point_id!r} "
                                       f"gives named vectors {sorted(vector)}")
            out = {}
            for name, values in vector.items():
                if name not in self.sizes:
                    raise VectorShapeError(f"collection {self.name!r} has no vector {name!r} (point {point_id!r}); "
                                           f"it has {sorted(str(k) for k in self.sizes)}")
                out[str(name)] = self._dense(point_id, name, values)
            return out
        if None not in self.sizes:
            raise VectorShapeError(f"collection {self.name!r} has named vectors {sorted(str(k) for k in self.sizes)}; "
                                   f"point {point_id!r} gives an unnamed one")
        return self._dense(point_id, None, vector)

    def _dense(self, point_id: PointId, name: str | None, values: Any) -> list[float]:
        where = f"collection {self.name!r} point {point_id!r}" + (f" vector {name!r}" if name else "")
        if isinstance(values, models.SparseVector | models.Document | models.Image | models.InferenceObject):
            raise InvalidWriteError(f"{where}: {type(values).__name__} vectors are not mirrored (dense only)")
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise VectorShapeError(f"{where}: not a numeric vector ({exc})") from exc
        if array.ndim != 1:
            raise InvalidWriteError(f"{where}: multi-vectors are not mirrored (dense 1-D vectors only)")
        if array.shape[0] != self.sizes[name]:
            raise VectorShapeError(f"{where} has {array.shape[0]} dimensions; the collection expects "
                                   f"{self.sizes[name]}")
        if not np.all(np.isfinite(array)):
            raise VectorShapeError(f"{where}: vector holds NaN or infinity")
        return [float(x) for x in array]


class QdrantShim:
    """Stands in for the writer's ``QdrantClient``; see the module doc."""

    def __init__(self, writer: DualWriter) -> None:
        side = writer.sides.get(QDRANT)
        if not isinstance(side, QdrantSide):
            raise DualWriteError("the DualWriter has no Qdrant side (pass qdrant=QdrantSide(client))")
        self._writer = writer
        self._side = side
        self._shapes: dict[str, CollectionShape] = {}

    @property
    def client(self) -> Any:
        """The real client (a fresh one after a reconnect)."""
        return self._side.client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._side.client, name)

    # ---- validation ---------------------------------------------------------------------------
    def shape(self, collection: str) -> CollectionShape:
        """The collection's vector shape, read from Qdrant once and cached."""
        shape = self._shapes.get(collection)
        if shape is None:
            try:
                info = self._side.call(f"reading collection {collection!r}",
                                       lambda c: c.get_collection(collection_name=collection))
            except SideUnavailableError as exc:
                raise LegacyConnectionError(f"cannot read collection {collection!r} from Qdrant to validate the "
                                            f"write: {exc}") from exc
            except SideRejectedError as exc:
                raise InvalidWriteError(f"collection {collection!r} cannot be written: {exc}") from exc
            shape = self._shapes[collection] = CollectionShape(collection, info.config.params.vectors)
        return shape

    def _submit(self, ops: list[Op], kwargs: Mapping[str, Any]) -> models.UpdateResult:
        for name in _UNMIRRORABLE:
            if kwargs.get(name) is not None:
                raise InvalidWriteError(f"option {name!r} cannot be mirrored by the dual-write shim")
        result: WriteResult = self._writer.submit(QDRANT, ops)
        status = models.UpdateStatus.COMPLETED if result.complete else models.UpdateStatus.ACKNOWLEDGED
        return models.UpdateResult(operation_id=result.seq, status=status)

    def upsert_ops(self, collection_name: str, points: Any) -> list[PointUpsert]:
        """Validated ops for an ``upsert`` call (nothing is sent)."""
        shape = self.shape(collection_name)
        ops = []
        for raw_id, vector, payload in _points(points):
            point_id = canonical_point_id(raw_id)
            op = PointUpsert(collection_name, point_id, shape.check(point_id, vector),
                             plain_properties(payload or {}, f"payload of point {point_id!r}", nested=True))
            self._writer.mapping.point_to_memory(collection_name, point_id, op.vector, op.payload,
                                                 int(self._writer.store.dim))
            ops.append(op)
        return ops

    # ---- mirrored writes ----------------------------------------------------------------------
    def upsert(self, collection_name: str, points: Any, wait: bool = True, **kwargs: Any) -> models.UpdateResult:
        return self._submit(list(self.upsert_ops(collection_name, points)), kwargs)

    def delete(self, collection_name: str, points_selector: Any, wait: bool = True,
               **kwargs: Any) -> models.UpdateResult:
        ids = self.resolve_ids(collection_name, points_selector)
        return self._submit([PointDelete(collection_name, pid) for pid in ids], kwargs)

    def set_payload(self, collection_name: str, payload: Mapping[str, Any], points: Any, key: str | None = None,
                    wait: bool = True, **kwargs: Any) -> models.UpdateResult:
        return self._payload(collection_name, payload, points, key, replace=False, kwargs=kwargs)

    def overwrite_payload(self, collection_name: str, payload: Mapping[str, Any], points: Any, wait: bool = True,
                          **kwargs: Any) -> models.UpdateResult:
        return self._payload(collection_name, payload, points, None, replace=True, kwargs=kwargs)

    def _payload(self, collection: str, payload: Mapping[str, Any], points: Any, key: str | None, *, replace: bool,
                 kwargs: Mapping[str, Any]) -> models.UpdateResult:
        if key is not None:
            raise InvalidWriteError("set_payload(key=...) (nested payload paths) cannot be mirrored")
        clean = plain_properties(payload, "payload", nested=True)
        ids = self.resolve_ids(collection, points)
        return self._submit([PayloadSet(collection, pid, clean, replace) for pid in ids], kwargs)

    def resolve_ids(self, collection: str, selector: Any) -> list[PointId]:
        """Point ids named by a selector; filters are resolved on Qdrant (see the module doc)."""
        if isinstance(selector, models.PointIdsList):
            return [canonical_point_id(p) for p in selector.points]
        flt = selector.filter if isinstance(selector, models.FilterSelector) else selector
        if not isinstance(flt, models.Filter):
            if isinstance(selector, Sequence) and not isinstance(selector, str | bytes):
                return [canonical_point_id(p) for p in selector]
            raise InvalidWriteError(f"unsupported point selector {type(selector).__name__}")
        if self._writer.pending_counts().get(QDRANT):
            raise DualWriteError("cannot resolve a filter selector while the Qdrant side owes journal entries "
                                 "(it would see stale data); reconcile() first or pass ids")
        ids: list[PointId] = []
        offset: Any = None
        while True:
            try:
                records, offset = self._side.call(f"resolving a filter in {collection!r}", functools.partial(
                    _scroll_ids, collection=collection, flt=flt, offset=offset))
            except SideUnavailableError as exc:
                raise LegacyConnectionError(f"cannot resolve the filter on Qdrant: {exc}") from exc
            except SideRejectedError as exc:
                raise InvalidWriteError(f"Qdrant refused the filter: {exc}") from exc
            ids.extend(canonical_point_id(r.id) for r in records)
            if offset is None:
                return ids

    # ---- reads --------------------------------------------------------------------------------
    def query_points(self, collection_name: str, query: Any = None, *, using: str | None = None, limit: int = 10,
                     with_payload: Any = True, with_vectors: Any = False, offset: int | None = None,
                     score_threshold: float | None = None, **kwargs: Any) -> QueryResponse:
        """Nearest points: from Qdrant while it is primary, from T4DM after cut-over (module doc)."""
        if self._writer.primary == "legacy":
            return self._side.client.query_points(
                collection_name, query=query, using=using, limit=limit, with_payload=with_payload,
                with_vectors=with_vectors, offset=offset, score_threshold=score_threshold, **kwargs)
        for name, value in kwargs.items():
            if value is not None and name not in ("timeout", "consistency", "search_params"):
                raise UnsupportedQueryError(f"query_points({name}=...) cannot be served from T4DM")
        params = kwargs.get("search_params")
        ef = getattr(params, "hnsw_ef", None)
        vector = self._query_vector(collection_name, query, using)
        skip = offset or 0
        hits = self._writer.store.search(vector, k=limit + skip, mode="vector", learn=False, ef=ef,
                                         namespace=self._writer.mapping.namespace,
                                         filter=point_filter(collection_name))
        points = []
        for hit in hits[skip:]:
            if score_threshold is not None and hit.score < score_threshold:
                continue
            memory = hit.memory
            point = memory.metadata[LEGACY_KEY]["point"]
            points.append(models.ScoredPoint(
                id=point["id"], version=0, score=hit.score, payload=_select_payload(point["payload"], with_payload),
                vector=_vector_out(memory.vector, using, with_vectors)))
        return QueryResponse(points=points)

    def retrieve(self, collection_name: str, ids: Sequence[Any], with_payload: Any = True, with_vectors: Any = False,
                 **kwargs: Any) -> list[models.Record]:
        """Points by id: from Qdrant while it is primary, from T4DM after cut-over (in ``ids`` order)."""
        if self._writer.primary == "legacy":
            return list(self._side.client.retrieve(collection_name, ids, with_payload=with_payload,
                                                   with_vectors=with_vectors, **kwargs))
        wanted = [canonical_point_id(i) for i in ids]
        name = self.held_vector(collection_name)
        found = {}
        for memory in self._writer.store.find(point_filter(collection_name, wanted),
                                              namespace=self._writer.mapping.namespace):
            point = memory.metadata[LEGACY_KEY]["point"]
            found[point["id"]] = models.Record(id=point["id"], payload=_select_payload(point["payload"], with_payload),
                                               vector=_vector_out(memory.vector, name, with_vectors))
        return [found[i] for i in wanted if i in found]

    def held_vector(self, collection: str) -> str | None:
        """Name of the collection's vector that T4DM holds (None = the unnamed vector)."""
        shape = self.shape(collection)
        if None in shape.sizes:
            return None
        rule_vector = self._writer.mapping.point_rule(collection).vector
        if rule_vector is not None:
            return rule_vector
        if len(shape.sizes) == 1:
            return next(iter(shape.sizes))
        raise UnsupportedQueryError(f"collection {collection!r} has several named vectors and the mapping names "
                                    "none, so T4DM holds none of them")

    def _query_vector(self, collection: str, query: Any, using: str | None) -> np.ndarray:
        shape = self.shape(collection)
        name = self.held_vector(collection)
        if using != name:
            raise UnsupportedQueryError(f"T4DM holds vector {name!r} of collection {collection!r}; "
                                        f"query_points(using={using!r}) cannot be served from it")
        if shape.distances[name].lower() != "cosine":
            raise UnsupportedQueryError(f"collection {collection!r} uses {shape.distances[name]} distance; T4DM "
                                        "serves cosine similarity only")
        if isinstance(query, models.NearestQuery):
            query = query.nearest
        try:
            array = np.asarray(query, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise UnsupportedQueryError(f"query {type(query).__name__} is not a dense vector") from exc
        if array.ndim != 1 or array.shape[0] != shape.sizes[name]:
            raise UnsupportedQueryError(f"T4DM serves dense {shape.sizes[name]}-d vector queries; got shape "
                                        f"{array.shape}")
        return array


def _scroll_ids(client: Any, *, collection: str, flt: models.Filter, offset: Any) -> tuple[list[Any], Any]:
    records, next_offset = client.scroll(collection_name=collection, scroll_filter=flt, limit=_SCROLL_PAGE,
                                         offset=offset, with_payload=False, with_vectors=False)
    return list(records), next_offset


def _points(points: Any) -> list[tuple[Any, Any, Any]]:
    """(id, vector, payload) of each point of a ``Batch`` or a list of ``PointStruct``."""
    if isinstance(points, models.Batch):
        ids = list(points.ids)
        vectors: Any = points.vectors
        columns = {name: list(v) for name, v in vectors.items()} if isinstance(vectors, Mapping) else None
        per_point: list[Any] = list(vectors) if columns is None else \
            [{name: column[i] for name, column in columns.items()} for i in range(len(ids))]
        payloads = list(points.payloads) if points.payloads is not None else [None] * len(ids)
        if not len(per_point) == len(payloads) == len(ids):
            raise InvalidWriteError(f"Batch has {len(ids)} ids, {len(per_point)} vectors, {len(payloads)} payloads")
        return list(zip(ids, per_point, payloads, strict=True))
    out = []
    for item in points:
        point = models.PointStruct(**item) if isinstance(item, Mapping) else item
        if not isinstance(point, models.PointStruct):
            raise InvalidWriteError(f"upsert takes PointStruct objects or a Batch, got {type(point).__name__}")
        out.append((point.id, point.vector, point.payload))
    return out


def _select_payload(payload: dict[str, Any], with_payload: Any) -> dict[str, Any] | None:
    if with_payload is True:
        return dict(payload)
    if not with_payload:
        return None
    if isinstance(with_payload, Sequence):
        return {k: v for k, v in payload.items() if k in with_payload}
    raise UnsupportedQueryError(f"with_payload={with_payload!r} cannot be served from T4DM (use True, False or keys)")


def _vector_out(vector: np.ndarray | None, name: str | None, with_vectors: Any) -> Any:
    if not with_vectors or vector is None:
        return None
    values = [float(x) for x in vector]
    return {name: values} if name else values
