"""Where every version of every memory lives, and the learning deltas of current versions.

``versions[namespace][id]`` is the LSN-ordered list of :class:`VersionRef` (memtable or
segment row). The last entry is the current version unless it is a tombstone. Superseding a
version clears the old row's live flag (which also hides it from that segment's HNSW).
Mutated only under the engine's exclusive lock.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from t4dm_core.filters import Filter

__all__ = ["LAST_ACCESS", "Catalog", "RowSource", "VersionRef", "believed_at", "unreachable_after", "version_at"]

LAST_ACCESS = "last_access"


class RowSource(Protocol):
    """What the memtable and segments have in common."""

    n: int
    ids: list[str]
    namespace: list[str]

    @property
    def live(self) -> np.ndarray: ...
    @property
    def vectors(self) -> np.ndarray: ...
    @property
    def ns_codes(self) -> np.ndarray: ...
    def set_live(self, row: int, value: bool) -> None: ...
    def row_text(self, row: int) -> str | None: ...
    def row_metadata(self, row: int) -> dict[str, Any]:
        """The row's metadata as a private copy the caller may mutate."""
        ...
    def row_fields(self, row: int) -> dict[str, Any]: ...
    def row_vector(self, row: int) -> np.ndarray: ...
    def filter_mask(self, flt: Filter) -> np.ndarray: ...


class VersionRef:
    __slots__ = ("deleted", "lsn", "recorded_at", "row", "source")

    def __init__(self, lsn: int, recorded_at: float, deleted: bool, source: RowSource, row: int) -> None:
        self.lsn = lsn
        self.recorded_at = recorded_at
        self.deleted = deleted
        self.source = source
        self.row = row


class Catalog:
    def __init__(self) -> None:
        self.versions: dict[str, dict[str, list[VersionRef]]] = {}
        self.deltas: dict[tuple[str, str], dict[str, float]] = {}
        self.live_count = 0

    def add_version(self, namespace: str, memory_id: str, ref: VersionRef) -> None:
        """Append a newer version (LSN order), superseding the current one."""
        chain = self.versions.setdefault(namespace, {}).setdefault(memory_id, [])
        if chain:
            prev = chain[-1]
            if not prev.deleted:
                prev.source.set_live(prev.row, False)
                self.live_count -= 1
        chain.append(ref)
        if not ref.deleted:
            self.live_count += 1
        self.deltas.pop((namespace, memory_id), None)

    def load_chain(self, namespace: str, memory_id: str, refs: list[VersionRef]) -> None:
        """Install a key's full history at open (refs in any order); fixes liveness."""
        refs.sort(key=lambda r: r.lsn)
        for ref in refs[:-1]:
            if not ref.deleted:
                ref.source.set_live(ref.row, False)
        self.versions.setdefault(namespace, {})[memory_id] = refs
        if not refs[-1].deleted:
            self.live_count += 1

    def current(self, namespace: str, memory_id: str) -> VersionRef | None:
        chain = self.versions.get(namespace, {}).get(memory_id)
        if not chain or chain[-1].deleted:
            return None
        return chain[-1]

    def chain(self, namespace: str, memory_id: str) -> list[VersionRef]:
        return self.versions.get(namespace, {}).get(memory_id, [])

    def version_count(self) -> int:
        """Versions of every key in every namespace, tombstones included."""
        return sum(len(chain) for chains in self.versions.values() for chain in chains.values())

    def drop_versions(self, namespace: str, memory_id: str, lsns: set[int]) -> None:
        """Forget vacuumed versions of a key (never its current one); an emptied chain disappears."""
        chain = self.versions.get(namespace, {}).get(memory_id)
        if not chain:
            return
        kept = [ref for ref in chain if ref.lsn not in lsns]
        assert not kept or kept[-1] is chain[-1], "vacuum must never drop a current version"
        if kept:
            self.versions[namespace][memory_id] = kept
        else:
            del self.versions[namespace][memory_id]
            if not self.versions[namespace]:
                del self.versions[namespace]

    def apply_delta(self, namespace: str, memory_id: str, field: str, delta: float, lsn: int,
                    recorded_at: float) -> None:
        """Add a learning delta to the current version (older deltas are obsolete: skipped).

        A positive ``access_count`` delta also records ``recorded_at`` as the version's last
        access time (key ``LAST_ACCESS`` of the delta table: the latest, not a sum).
        """
        ref = self.current(namespace, memory_id)
        if ref is None or lsn <= ref.lsn:
            return
        fields = self.deltas.setdefault((namespace, memory_id), {})
        fields[field] = fields.get(field, 0.0) + delta
        if field == "access_count" and delta > 0:
            fields[LAST_ACCESS] = max(fields.get(LAST_ACCESS, 0.0), recorded_at)

    def relocate(self, old: RowSource, new: RowSource, row_of_lsn: dict[int, int]) -> None:
        """Point refs of versions that moved from ``old`` to rows of ``new`` (flush/compaction)."""
        for namespace, memory_id in {(ns, i) for ns, i in zip(new.namespace, new.ids, strict=True)}:
            for ref in self.versions[namespace][memory_id]:
                if ref.source is old and ref.lsn in row_of_lsn:
                    ref.source = new
                    ref.row = row_of_lsn[ref.lsn]

    def visible_at(self, namespace: str, tx_time: float | None, valid_time: float | None,
                   valid_range: Any) -> list[VersionRef]:
        """Versions that were current at transaction time ``tx_time`` and valid at ``valid_time``.

        ``valid_range(ref)`` returns (valid_from, valid_to) of a version.
        """
        out = []
        for chain in self.versions.get(namespace, {}).values():
            ref = believed_at(chain, tx_time, valid_time, valid_range)
            if ref is not None:
                out.append(ref)
        return out


def believed_at(chain: list[VersionRef], tx_time: float | None, valid_time: float | None,
                valid_range: Any) -> VersionRef | None:
    """The version describing valid time ``valid_time`` as the store believed at ``tx_time``.

    Versions recorded after ``tx_time`` do not count, and a tombstone retracts every version
    before it. Among the rest, the newest version whose valid range contains ``valid_time``
    wins: a later version overrides an earlier one only over its own valid range, so after
    an update that starts at V2, asking about a time before V2 still finds the old value.
    ``valid_time=None`` means the newest version. ``valid_range(ref)`` gives (from, to).
    """
    latest = version_at(chain, tx_time)
    if latest is None or latest.deleted:
        return None
    if valid_time is None:
        return latest
    for ref in reversed(chain[: chain.index(latest) + 1]):
        if ref.deleted:
            return None
        start, end = valid_range(ref)
        if start <= valid_time and (end is None or valid_time < end):
            return ref
    return None


def unreachable_after(chain: list[VersionRef], horizon: float, valid_range: Any) -> list[VersionRef]:
    """Versions no query with transaction time >= ``horizon`` can return (safe to vacuum).

    A query at transaction time ``tx >= horizon`` starts from the version current at ``tx``
    (never older than the one current at ``horizon``, the anchor) and walks back until a
    tombstone (see :func:`believed_at`). So a version older than the anchor is unreachable
    when a tombstone follows it up to the anchor, or when one later version up to the anchor
    covers its whole valid range; a tombstone is unreachable when everything before it is
    (it retracts nothing then), and so is an anchor that is a tombstone. The anchor's live
    successors and the current version are always kept.
    """
    anchor = version_at(chain, horizon)
    if anchor is None:
        return []
    window = chain[: chain.index(anchor) + 1]
    last_tombstone = max((i for i, ref in enumerate(window) if ref.deleted), default=-1)
    out = window[: last_tombstone + 1]  # retracted by it, and the tombstone then retracts nothing
    for i in range(last_tombstone + 1, len(window) - 1):  # the anchor itself stays
        if any(_covers(valid_range(r), valid_range(window[i])) for r in window[i + 1:]):
            out.append(window[i])
    return out


def _covers(outer: tuple[float, float | None], inner: tuple[float, float | None]) -> bool:
    (o_start, o_end), (i_start, i_end) = outer, inner
    return o_start <= i_start and (o_end is None or (i_end is not None and i_end <= o_end))


def version_at(chain: list[VersionRef], tx_time: float | None) -> VersionRef | None:
    """The version of a chain the store believed current at ``tx_time`` (None = now)."""
    if tx_time is None:
        return chain[-1]
    for ref in reversed(chain):
        if ref.recorded_at <= tx_time:
            return ref
    return None

