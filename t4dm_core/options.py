"""Every tunable of a store, with its default and what it means for crashes and speed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from t4dm_core.errors import InvalidInputError

if TYPE_CHECKING:
    from t4dm_core.consolidation.policy import SleepPolicy
    from t4dm_core.learning.gate import WriteGate
    from t4dm_core.storage.compaction import CompactionPolicy

__all__ = ["Options", "SyncMode"]

SyncMode = Literal["normal", "full"]


@dataclass(frozen=True)
class Options:
    """Store options. All have safe defaults; pass ``Options(...)`` to ``t4dm_core.open``.

    Attributes:
        sync: WAL durability of an acknowledged write.
            ``"normal"`` (default): every commit is written to the OS before the call
            returns, so it survives a crash or SIGKILL of the process; a power loss or
            kernel crash may lose a suffix of the most recent commits (never a hole).
            ``"full"``: every commit is also fsynced (group commit: concurrent writers
            share one fsync) before the call returns, so it survives power loss too.
        memtable_max_records: flush the memtable into a segment when it holds this many
            versions (the flush runs in the writing thread).
        hnsw_m: HNSW graph degree of segment indexes.
        hnsw_ef_construction: HNSW build-time beam width.
        hnsw_ef_search: default HNSW query beam width (raised automatically to at least k).
        exact_search_max_rows: a filtered or namespace-restricted search over a segment
            uses exact (brute-force) scoring when at most this many rows qualify, and HNSW
            search that filters during the graph walk (beam widened for rare rows)
            otherwise. Stated for 384-dimensional vectors: exact scoring costs rows × dim,
            so the limit scales by 384 / dim (e.g. 30,000 rows at 64 dimensions).
        exact_search_max_fraction: also use exact scoring when the qualifying fraction of a
            segment is below this.
        auto_compact: after a flush, run the compaction policy in a background thread
            (writes and searches continue; :meth:`Store.close` waits for it).
        compaction_policy: a custom :class:`~t4dm_core.storage.compaction.CompactionPolicy`
            (an object with ``pick(segments) -> segments``); default: size-tiered with the
            two settings below.
        compaction_min_merge: size-tiered compaction merges a tier once it holds this many
            segments.
        compaction_size_ratio: segments whose row counts lie within this factor share a tier.
        num_threads: threads hnswlib may use for index builds (-1 = all cores).
        retain_manifests: manifests kept on disk (with every file they reference), so a
            damaged newest manifest can fall back to the previous consistent state.
        learn_on_read: each search records learning writes for what it returned: +1
            ``access_count`` (and the access time) per hit, and Hebbian strengthening of
            ``co_retrieved`` edges between the top ``hebbian_top`` hits. They are buffered
            overlays applied only when the write lock is free at once (otherwise they wait
            for the next search, write, flush or close), so a search never waits on a
            writer; like ``bump``, they become durable with the next acknowledged write.
            Read-only stores record nothing.
        hebbian_rate: learning rate of co-retrieval edges: each co-retrieval moves the edge
            weight ``w`` by ``rate * (1 - w)``, so weights approach 1 and never exceed it.
        hebbian_top: how many of the best hits of a search strengthen their pairwise edges.
        lability_window: seconds a retrieved memory stays labile (reconsolidation): a
            ``put`` without an id, in the same namespace, whose vector has cosine ≥
            ``reconsolidation_similarity`` with a labile memory becomes a new version of
            that memory instead of a near-duplicate. 0 turns reconsolidation off.
        reconsolidation_similarity: the cosine threshold of reconsolidation.
        sleep_after_writes: run :meth:`Store.sleep` in the background once this many
            memory versions were written since the last sleep (0 = never).
        sleep_when_idle: run it once the store saw no write or search for this many
            seconds and something was written since the last sleep (0 = never).
        sleep_policy: the :class:`~t4dm_core.SleepPolicy` scheduled sleeps use (default policy).
        write_gate: the :class:`~t4dm_core.WriteGate` used by :meth:`Store.offer`.
        completion_patterns: at most this many memories per namespace (the most important,
            consolidated ones first) form the Hopfield pattern set of ``search(complete=True)``.
        completion_keyer: complete in the sparse DG-key space (pattern separation) rather
            than on the dense vectors. Off by default: on random partial cues the sparse keys
            lost information (tests/test_gate_and_completion.py measures both).
        completion_beta: inverse temperature of the Hopfield update (higher = snaps harder
            to the single nearest pattern).
        history_retention: seconds of transaction-time history that compactions keep (``None``,
            the default: all of it). With a value, each compaction (and so each sleep) also
            vacuums versions that no ``as_of`` at or after ``now - history_retention`` can
            return, reclaiming their disk; ``as_of`` before that horizon then raises
            :class:`HistoryUnavailableError`. See :meth:`Store.vacuum`.
    """

    sync: SyncMode = "normal"
    memtable_max_records: int = 50_000
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    exact_search_max_rows: int = 5_000
    exact_search_max_fraction: float = 0.05
    auto_compact: bool = True
    compaction_policy: CompactionPolicy | None = None
    compaction_min_merge: int = 4
    compaction_size_ratio: float = 4.0
    num_threads: int = -1
    retain_manifests: int = 2
    learn_on_read: bool = True
    hebbian_rate: float = 0.05
    hebbian_top: int = 3
    lability_window: float = 300.0
    reconsolidation_similarity: float = 0.9
    sleep_after_writes: int = 0
    sleep_when_idle: float = 0.0
    sleep_policy: SleepPolicy | None = None
    write_gate: WriteGate | None = None
    completion_patterns: int = 4096
    completion_keyer: bool = False
    completion_beta: float = 20.0
    history_retention: float | None = None

    def __post_init__(self) -> None:
        if self.history_retention is not None and not self.history_retention >= 0:
            raise InvalidInputError("Options.history_retention must be None or a number of seconds >= 0")
        if self.sync not in ("normal", "full"):
            raise InvalidInputError(f"Options.sync must be 'normal' or 'full', got {self.sync!r}")
        for name in ("memtable_max_records", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"Options.{name} must be >= 1")
        if self.retain_manifests < 2:
            raise InvalidInputError("Options.retain_manifests must be >= 2 (fallback needs one spare)")
        if not 0.0 <= self.hebbian_rate <= 1.0:
            raise InvalidInputError("Options.hebbian_rate must be in [0, 1]")
        if self.sleep_after_writes < 0 or self.sleep_when_idle < 0:
            raise InvalidInputError("Options.sleep_after_writes and Options.sleep_when_idle must be >= 0")
        if self.hebbian_top < 0 or self.lability_window < 0:
            raise InvalidInputError("Options.hebbian_top and Options.lability_window must be >= 0")
        if not -1.0 <= self.reconsolidation_similarity <= 1.0:
            raise InvalidInputError("Options.reconsolidation_similarity must be a cosine in [-1, 1]")
        if self.compaction_min_merge < 2:
            raise InvalidInputError("Options.compaction_min_merge must be >= 2")
