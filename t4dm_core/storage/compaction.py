"""Compaction: which segments to merge (a pluggable policy) and how to merge them.

Planning is pure (:class:`SizeTieredPolicy.pick`); :func:`merge_segments` builds the merged
column data. Merging keeps every memory version except those the caller names as vacuumed
(history past the retention horizon, see ``Store.vacuum``), folds each edge's operations into
one, and folds learning deltas per (memory, field), dropping deltas made obsolete by a newer
version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa

from t4dm_core.graph.adjacency import fold_edge_ops
from t4dm_core.storage.ops import FieldDeltaOp
from t4dm_core.storage.segment import Segment, SegmentData

__all__ = ["CompactionPolicy", "SizeTieredPolicy", "merge_segments"]

_BASE_COLUMNS = ("namespace", "id", "lsn", "recorded_at", "deleted", "text", "metadata", "valid_from",
                 "valid_to", "kappa", "importance", "access_count", "pinned", "vector")


class CompactionPolicy(Protocol):
    def pick(self, segments: Sequence[Segment]) -> list[Segment]:
        """Segments to merge now (fewer than two = nothing to do)."""
        ...


class SizeTieredPolicy:
    """Merge a tier once it has ``min_merge`` segments whose sizes lie within ``size_ratio``."""

    def __init__(self, min_merge: int = 4, size_ratio: float = 4.0) -> None:
        self.min_merge = min_merge
        self.size_ratio = size_ratio

    def pick(self, segments: Sequence[Segment]) -> list[Segment]:
        ordered = sorted(segments, key=lambda s: s.n)
        best: list[Segment] = []
        for i, first in enumerate(ordered):
            tier = [s for s in ordered[i:] if s.n <= max(1, first.n) * self.size_ratio]
            if len(tier) >= self.min_merge and len(tier) > len(best):
                best = tier
        return best


def merge_segments(inputs: Sequence[Segment], latest_lsn: Callable[[str, str], int],
                   drop_lsns: frozenset[int] = frozenset()) -> SegmentData:
    """Merged data of ``inputs`` without the versions in ``drop_lsns``.

    ``latest_lsn(ns, id)`` gives the key's newest version LSN (-1 if none).
    """
    table = pa.concat_tables([s.table.select(list(_BASE_COLUMNS)) for s in inputs])
    lsns = table.column("lsn").to_numpy()
    order = np.argsort(lsns, kind="stable")
    if drop_lsns:
        order = order[~np.isin(lsns[order], np.fromiter(drop_lsns, dtype=lsns.dtype, count=len(drop_lsns)))]
    table = table.take(pa.array(order))
    dim = table.schema.field("vector").type.list_size
    vectors = table.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    col = table.column
    edge_ops = fold_edge_ops([op for s in inputs for op in s.edge_rows()])
    deltas: dict[tuple[str, str, str], tuple[int, float, float]] = {}
    for lsn, ts, op in (d for s in inputs for d in s.field_delta_rows()):
        if lsn <= latest_lsn(op.namespace, op.id):
            continue  # obsolete: a newer version inherited it
        key = (op.namespace, op.id, op.field)
        prev = deltas.get(key, (lsn, ts, 0.0))
        deltas[key] = (max(prev[0], lsn), max(prev[1], ts), prev[2] + op.delta)
    folded = sorted(((lsn, ts, FieldDeltaOp(ns, i, f, d)) for (ns, i, f), (lsn, ts, d) in deltas.items()),
                    key=lambda item: item[0])
    return SegmentData(
        namespace=col("namespace").to_pylist(), ids=col("id").to_pylist(), lsn=col("lsn").to_pylist(),
        recorded_at=col("recorded_at").to_pylist(), deleted=col("deleted").to_pylist(),
        text=col("text").to_pylist(), metadata=[json.loads(m) for m in col("metadata").to_pylist()],
        valid_from=col("valid_from").to_pylist(), valid_to=col("valid_to").to_pylist(),
        kappa=col("kappa").to_pylist(), importance=col("importance").to_pylist(),
        access_count=col("access_count").to_pylist(), pinned=col("pinned").to_pylist(),
        vectors=vectors, edge_ops=edge_ops, field_deltas=folded,
        superseded=np.fromiter((lsn < latest_lsn(ns, mid) for ns, mid, lsn in zip(
            col("namespace").to_pylist(), col("id").to_pylist(), col("lsn").to_pylist(), strict=True)),
            dtype=bool, count=table.num_rows),
    )
