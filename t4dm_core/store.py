"""The T4DX store: one directory, one writer process, any number of readers.

Write path: validate → embed (outside any lock) → WAL record (one per batch: atomic) →
memtable (+ catalog of versions, edge graph, learning deltas). Reads pin nothing on disk:
segments are immutable and memory-mapped, and a superseded file is unlinked only after a
newer manifest no longer retains it (POSIX keeps unlinked mapped files readable).

Thread-safety: every public method may be called from many threads. Writers are serialised
by one mutex; readers share a readers-writer lock that writers take exclusively only for the
microseconds it takes to apply a batch, so searches run while writes continue. A handle
must not be used after ``fork()`` (it raises StoreClosedError in the child).

Crash semantics: see :class:`~t4dm_core.options.Options` ``sync``. Learning writes
(:meth:`Store.bump`, :meth:`Store.strengthen`) are buffered: they become durable with the
next acknowledged write, :meth:`Store.flush` or :meth:`Store.close`.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future
from functools import partial
from typing import Any

import numpy as np

from t4dm_core._catalog import LAST_ACCESS, Catalog, RowSource, VersionRef, believed_at, unreachable_after
from t4dm_core._rwlock import RWLock
from t4dm_core._validation import (
    check_id,
    check_metadata,
    check_namespace,
    check_text,
    normalize_matrix,
    normalize_vector,
    to_timestamp,
)
from t4dm_core.consolidation.apply import SLEEP_LOG_NAMESPACE, StoreView, log_key, plan_ops
from t4dm_core.consolidation.plan import plan_namespace
from t4dm_core.consolidation.policy import SleepPolicy
from t4dm_core.consolidation.report import SleepReport
from t4dm_core.embedding import Embedder, resolve_embedder
from t4dm_core.errors import (
    CorruptionError,
    DuplicateIdError,
    EmbedderMismatchError,
    HistoryUnavailableError,
    InvalidInputError,
    MemoryNotFoundError,
    ReadOnlyError,
    StorageError,
    StoreClosedError,
    StoreFailedError,
    T4DMError,
)
from t4dm_core.filters import Filter, compile_filter
from t4dm_core.graph.adjacency import EdgeGraph
from t4dm_core.index.exact import top_k_exact
from t4dm_core.index.lexical import tokenize
from t4dm_core.learning.access import AccessLog, co_retrieval_pairs
from t4dm_core.learning.completion import DGKeyer, HopfieldCompleter
from t4dm_core.learning.gate import GateDecision, GateStats, WriteGate
from t4dm_core.options import Options
from t4dm_core.ranking import (
    LEXICAL_ONLY,
    PRIORS,
    RRF_K,
    VECTOR_ONLY,
    LexicalMatches,
    Ranking,
    lexical_matches,
    reciprocal_rank_fusion,
)
from t4dm_core.storage.compaction import CompactionPolicy, SizeTieredPolicy, merge_segments
from t4dm_core.storage.fs import FileSystem, LocalFS
from t4dm_core.storage.lock import PIN_ALL, ReaderPin, WriterLock, pinned_versions
from t4dm_core.storage.manifest import (
    list_manifests,
    load_newest_manifest,
    manifest_name,
    read_manifest,
    write_manifest,
)
from t4dm_core.storage.memtable import Memtable
from t4dm_core.storage.ops import COUNTER_FIELDS, DeleteOp, EdgeOp, FieldDeltaOp, Op, PutOp, decode_batch, encode_batch
from t4dm_core.storage.segment import Segment, SegmentData, write_segment
from t4dm_core.storage.wal import WalWriter, list_wal_numbers, read_wal, wal_path
from t4dm_core.types import DEFAULT_EDGE_TYPE, DEFAULT_NAMESPACE, Edge, Hit, Memory, Neighbor

__all__ = ["AsOf", "Store", "open_store"]

log = logging.getLogger("t4dm")
AsOf = float | Any | tuple[Any, Any] | None
Prepared = tuple[str, str, dict[str, Any], float | None, float | None]  # namespace, id, metadata, valid range
MAX_K = 10_000
SEARCH_MODES = {"vector": VECTOR_ONLY, "lexical": LEXICAL_ONLY, "hybrid": Ranking()}
CO_RETRIEVED = "co_retrieved"  # edge type of Hebbian co-retrieval links
EXACT_SEARCH_REFERENCE_DIM = 384  # Options.exact_search_max_rows is stated for this dimension
HYBRID_MIN_DEPTH = 50  # candidates each ranking contributes to fusion (at least 3·k)
MAX_HOPS = 16
READER_OPEN_ATTEMPTS = 5
_TMP_SUFFIXES = (".tmp", ".build")


def open_store(path: str | os.PathLike[str] | None = None, *, dim: int | None = None, embedder: Any = None,
               options: Options | None = None, read_only: bool = False, fs: FileSystem | None = None) -> Store:
    """Open (or create) a store. See :func:`t4dm_core.open`."""
    temporary = path is None or str(path) == ":memory:"
    if read_only and temporary:
        raise InvalidInputError("a temporary store cannot be opened read-only")
    directory = tempfile.mkdtemp(prefix="t4dm-") if temporary else os.path.abspath(os.fspath(path))  # type: ignore[arg-type]
    file_layer = fs or LocalFS()
    for attempt in range(READER_OPEN_ATTEMPTS):
        before = list_manifests(file_layer, directory) if read_only and os.path.isdir(directory) else []
        try:
            return Store(directory, dim=dim, embedder=embedder, options=options or Options(), read_only=read_only,
                         fs=file_layer, temporary=temporary)
        except StorageError:
            # A reader races the writer's GC: the manifest it read was superseded and a file it
            # names was removed. Retry when the manifests changed meanwhile; real damage fails
            # every time and is re-raised.
            changed = read_only and list_manifests(file_layer, directory) != before
            if not changed or attempt == READER_OPEN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class Store:
    """An open T4DM store. Use as a context manager or call :meth:`close`."""

    def __init__(self, directory: str, *, dim: int | None, embedder: Any, options: Options, read_only: bool,
                 fs: FileSystem, temporary: bool) -> None:
        self.path = directory
        self.options = options
        self.read_only = read_only
        self._fs = fs
        self._temporary = temporary
        self._pid = os.getpid()
        self._closed = False
        self._failed: BaseException | None = None
        self._rw = RWLock()
        self._write_mutex = threading.RLock()
        self._compaction_lock = threading.Lock()
        self._policy: CompactionPolicy = options.compaction_policy or SizeTieredPolicy(options.compaction_min_merge,
                                                                     options.compaction_size_ratio)
        self._compactor: threading.Thread | None = None
        self._access = AccessLog(options.lability_window)
        self._writes_since_sleep = 0
        self._gate_stats = GateStats()
        self._completers: dict[str, HopfieldCompleter] = {}
        self._last_activity = time.monotonic()
        self._sleep_lock = threading.Lock()
        self._stop_scheduler = threading.Event()
        self._sleepers: list[threading.Thread] = []  # background sleeps; close() waits for them
        self._scheduler: threading.Thread | None = None
        self._inflight_segments: set[str] = set()  # outputs being built; GC must not touch them
        self.background_error: BaseException | None = None
        self._lock: WriterLock | None = None
        self._wal: WalWriter | None = None
        self._ns_lookup: dict[str, int] = {}
        self._segments: list[Segment] = []
        self._catalog = Catalog()
        self._graph = EdgeGraph()
        self._retained: list[dict[str, Any]] = []
        try:
            self._open(dim, embedder)
        except OSError as exc:
            self._release_files()
            raise StorageError(f"cannot open store {directory}: {exc}") from exc
        except BaseException:
            self._release_files()
            raise
        if not read_only and (options.sleep_after_writes > 0 or options.sleep_when_idle > 0):
            self._scheduler = threading.Thread(target=self._run_sleep_scheduler, name="t4dm-sleep-scheduler",
                                               daemon=True)
            self._scheduler.start()

    # ------------------------------------------------------------------ open
    def _open(self, dim: int | None, embedder: Any) -> None:
        fs = self._fs
        pin: ReaderPin | None = None
        if self.read_only:
            if not fs.exists(self.path):
                raise InvalidInputError(f"no store at {self.path}")
            try:
                pin = ReaderPin(self.path)
            except PermissionError:
                pin = None  # read-only media or permissions: no writer can be collecting files here
            except OSError as exc:
                if exc.errno != errno.EROFS:
                    raise
        else:
            fs.makedirs(self.path)
            self._lock = WriterLock(self.path)
        try:
            choice = load_newest_manifest(fs, self.path, self.options.retain_manifests)
            if pin is not None and choice.current is not None:
                pin.set_version(choice.current["version"])
            self._load(choice.bodies, dim, embedder)
        finally:
            if pin is not None:
                pin.release()

    def _load(self, bodies: list[dict[str, Any]], dim: int | None, embedder: Any) -> None:
        fs = self._fs
        body = bodies[0] if bodies else None
        self._embedder, self.dim = resolve_embedder(
            embedder, dim, body.get("embedder") if body else None, body.get("dim") if body else None)
        if body is None:
            if self.read_only:
                raise InvalidInputError(f"no store at {self.path} (no manifest)")
            body = self._create_new()
        self._retained = bodies or [body]
        self._manifest = body
        self._next_file = max(body["next_file_number"], self._max_file_number() + 1)
        self._mem = Memtable(self.dim)
        for entry in body["segments"]:
            self._segments.append(Segment.open(fs, self.path, entry, self.dim, self._ns_lookup))
        self._load_catalog()
        self._next_lsn = body["flushed_lsn"] + 1
        self._last_ts = body["last_ts"]
        self._replay_wal(body)
        if (self._embedder is not None and body.get("embedder") is None and not self.read_only):
            self._manifest = {**self._manifest, "embedder": self._embedder.name}
            self._commit_manifest(self._manifest)
        if not self.read_only:
            number = self._alloc_file_number()
            self._wal = WalWriter(fs, wal_path(self.path, number), number, create=True)
            fs.sync_dir(self.path)
            self._gc()

    def _create_new(self) -> dict[str, Any]:
        number = 1
        wal = WalWriter(self._fs, wal_path(self.path, number), number, create=True)
        wal.sync_to(wal.size)
        wal.close()
        self._fs.sync_dir(self.path)
        body = {"dim": self.dim, "embedder": self._embedder.name if self._embedder else None, "metric": "cosine",
                "next_file_number": 2, "flushed_lsn": -1, "last_ts": 0.0, "wal_numbers": [number],
                "segments": [], "created_at": time.time()}
        write_manifest(self._fs, self.path, 1, body)
        return {**body, "format": 1, "version": 1}

    def _max_file_number(self) -> int:
        best = 0
        for name in self._fs.listdir(self.path):
            stem = name.split(".")[0]
            for prefix in ("wal-", "seg-"):
                if stem.startswith(prefix) and stem[len(prefix):].isdigit():
                    best = max(best, int(stem[len(prefix):]))
        return best

    def _alloc_file_number(self) -> int:
        number = self._next_file
        self._next_file += 1
        return number

    def _load_catalog(self) -> None:
        chains: dict[tuple[str, str], list[VersionRef]] = {}
        edge_ops: list[tuple[int, EdgeOp]] = []
        delta_ops: list[tuple[int, float, FieldDeltaOp]] = []
        for seg in self._segments:
            for row, (ns, mid) in enumerate(zip(seg.namespace, seg.ids, strict=True)):
                ref = VersionRef(int(seg.lsn[row]), float(seg.recorded_at[row]), bool(seg.deleted[row]), seg, row)
                chains.setdefault((ns, mid), []).append(ref)
            edge_ops.extend(seg.edge_rows())
            delta_ops.extend(seg.field_delta_rows())
        for (ns, mid), refs in chains.items():
            self._catalog.load_chain(ns, mid, refs)
        for _, eop in sorted(edge_ops, key=lambda item: item[0]):
            self._graph.apply(eop)
        for lsn, ts, dop in sorted(delta_ops, key=lambda item: item[0]):
            self._catalog.apply_delta(dop.namespace, dop.id, dop.field, dop.delta, lsn, ts)

    def _replay_wal(self, body: dict[str, Any]) -> None:
        first_needed = min(body["wal_numbers"])
        numbers = [n for n in list_wal_numbers(self._fs, self.path) if n >= first_needed]
        missing = [n for n in body["wal_numbers"] if n not in numbers]
        if missing:
            raise CorruptionError(wal_path(self.path, missing[0]), "WAL file listed in the manifest is missing")
        flushed = body["flushed_lsn"]
        for position, number in enumerate(numbers):
            path = wal_path(self.path, number)
            contents = read_wal(self._fs, path, number)
            if contents is None:
                continue
            if contents.torn:
                if position != len(numbers) - 1 and any(
                        (c := read_wal(self._fs, wal_path(self.path, n), n)) is not None and c.records
                        for n in numbers[position + 1:]):
                    raise CorruptionError(path, "WAL file ends in a damaged record but later WAL files hold records",
                                          contents.valid_end)
                if not self.read_only:
                    log.warning("t4dm: truncating torn WAL tail of %s at byte %d", path, contents.valid_end)
                    self._fs.truncate(path, contents.valid_end)
            for first_lsn, n_ops, payload in contents.records:
                if first_lsn + n_ops - 1 <= flushed:
                    continue
                if first_lsn != self._next_lsn:
                    raise CorruptionError(path, f"WAL records jump from LSN {self._next_lsn - 1} to {first_lsn} "
                                                "(records are missing)")
                try:
                    ts, ops = decode_batch(payload, self.dim)
                except (ValueError, KeyError, TypeError) as exc:
                    raise CorruptionError(path, f"undecodable WAL batch at LSN {first_lsn}: {exc}") from None
                self._apply(first_lsn, ts, ops)
                self._next_lsn = first_lsn + n_ops
                self._last_ts = max(self._last_ts, ts)

    # ----------------------------------------------------------- lifecycle
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder | None:
        """The embedder that turns text into vectors, or ``None`` for a vectors-only store."""
        return self._embedder

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def close(self) -> None:
        """Make buffered learning writes durable, release the writer lock. Idempotent."""
        if self._closed:
            return
        self._stop_scheduler.set()
        for worker in [self._scheduler, *self._sleepers]:
            if worker is not None and worker is not threading.current_thread():
                worker.join()
        compactor = self._compactor
        if compactor is not None and compactor is not threading.current_thread():
            compactor.join()
        with self._write_mutex:
            try:
                if self._wal is not None and self._failed is None and os.getpid() == self._pid:
                    if not self.read_only:
                        self._apply_read_learning()
                    end = self._wal.flush_buffer()
                    self._wal.sync_to(end)
            except OSError as exc:
                self._failed = exc
                raise StoreFailedError(f"closing {self.path}: {exc}") from exc
            finally:
                self._closed = True
                self._release_files()

    def _release_files(self) -> None:
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        if self._lock is not None and os.getpid() == self._pid:
            self._lock.release()
            self._lock = None
        if self._temporary:
            shutil.rmtree(self.path, ignore_errors=True)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store {self.path} is closed")
        if os.getpid() != self._pid:
            raise StoreClosedError("a store handle cannot be used in a forked child process; open the store again")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise ReadOnlyError(f"store {self.path} was opened read-only")
        if self._failed is not None:
            raise StoreFailedError(f"an earlier write failed ({self._failed}); reopen the store to recover")

    # ----------------------------------------------------------- write path
    def _commit(self, build: Callable[[float], list[Op]], *, buffered: bool = False) -> int:
        """Log and apply one atomic batch built by ``build(transaction_time)``. Returns its first LSN."""
        sync_end: int | None = None
        with self._write_mutex:
            self._check_writable()
            if not buffered and self._access.pending:
                self._apply_read_learning()
            assert self._wal is not None
            ts = max(time.time(), self._last_ts + 1e-6)
            ops = build(ts)
            if not ops:
                return self._next_lsn
            first = self._next_lsn
            payload = encode_batch(ts, ops, self.dim)
            try:
                if buffered:
                    self._wal.buffer(first, len(ops), payload)
                else:
                    sync_end = self._wal.append(first, len(ops), payload)
            except OSError as exc:
                self._failed = exc
                raise StoreFailedError(f"WAL write failed: {exc}") from exc
            self._next_lsn = first + len(ops)
            self._last_ts = ts
            self._last_activity = time.monotonic()
            self._writes_since_sleep += sum(isinstance(op, PutOp | DeleteOp) for op in ops)
            if buffered:  # overlay ops only: dict updates, each atomic under the GIL, so readers never wait
                self._apply(first, ts, ops)
            else:
                with self._rw.write():
                    self._apply(first, ts, ops)
            wal = self._wal
            if self._mem.n >= self.options.memtable_max_records:
                self._sync(wal, sync_end)
                sync_end = None
                self._flush_locked()
        self._sync(wal, sync_end)
        return first

    def _sync(self, wal: WalWriter, end: int | None) -> None:
        if end is None or self.options.sync != "full":
            return
        try:
            wal.sync_to(end)
        except OSError as exc:
            self._failed = exc
            raise StoreFailedError(f"WAL fsync failed: {exc}; the write may not be durable") from exc

    def _apply(self, first_lsn: int, ts: float, ops: Sequence[Op]) -> None:
        mem = self._mem
        for i, op in enumerate(ops):
            lsn = first_lsn + i
            if isinstance(op, PutOp | DeleteOp):
                code = self._ns_lookup.setdefault(op.namespace, len(self._ns_lookup))
                row = mem.add_version(lsn, ts, code, op if isinstance(op, PutOp) else None, op.namespace, op.id)
                self._catalog.add_version(op.namespace, op.id, VersionRef(lsn, ts, isinstance(op, DeleteOp), mem, row))
            elif isinstance(op, EdgeOp):
                mem.add_edge_op(lsn, op)
                self._graph.apply(op)
            else:
                mem.add_field_delta(lsn, ts, op)
                self._catalog.apply_delta(op.namespace, op.id, op.field, op.delta, lsn, ts)

    def put(self, memory: Memory | str, **fields: Any) -> str:
        """Store one memory (a :class:`Memory`, or text plus Memory fields as keywords). Returns its id."""
        if isinstance(memory, str):
            memory = Memory(text=memory, **fields)
        elif fields:
            raise InvalidInputError("pass either a Memory or text with keyword fields, not both")
        return self.put_many([memory])[0]

    def put_many(self, memories: Iterable[Memory]) -> list[str]:
        """Store memories as one atomic batch; returns their ids in order.

        A memory whose id is current in its namespace gets a new version (the old one stays
        in history). Either every memory is stored or, on any error, none is.
        """
        return self.write(put=memories)

    def write(self, *, put: Iterable[Memory] = (), delete: Iterable[str] = (), link: Iterable[Edge] = (),
              unlink: Iterable[Edge] = (), namespace: str = DEFAULT_NAMESPACE) -> list[str]:
        """One atomic batch of puts, edge changes and deletes; returns the ids of ``put`` in order.

        Applied in this order: ``put`` (memories, in their own namespaces), ``unlink`` and
        ``link`` (:class:`Edge` objects; a link's endpoints must be current or put in this
        batch), then ``delete`` (ids in ``namespace``; unknown ids are skipped; a deleted
        memory loses its edges, as in :meth:`delete`). Everything is validated before anything
        is logged: on any error nothing is written. Crash semantics are those of one
        acknowledged write (see :class:`Options` ``sync``): after a crash the whole batch or
        none of it is visible.
        """
        self._check_writable()
        check_namespace(namespace)
        items = list(put)
        prepared = [self._prepare(m) for m in items]
        seen: set[tuple[str, str]] = set()
        for ns, mid, *_ in prepared:
            if (ns, mid) in seen:
                raise DuplicateIdError(f"id {mid!r} appears twice in one batch (namespace {ns!r})")
            seen.add((ns, mid))
        delete_ids = _unique_ids(delete)
        links, unlinks = self._edges_arg(link, "link"), self._edges_arg(unlink, "unlink")
        vectors = self._vectors_for(items)
        prepared = self._reconsolidate(items, prepared, vectors, seen)
        put_keys = {(ns, mid) for ns, mid, *_ in prepared}
        for mid in delete_ids:
            if (namespace, mid) in put_keys:
                raise InvalidInputError(f"id {mid!r} is both put and deleted in one batch")
        deleted = {(namespace, mid) for mid in delete_ids}
        for edge in links:
            self._check_edge(edge.src, edge.dst, edge.type, edge.weight, edge.namespace, also=put_keys - deleted)
            if (edge.namespace, edge.src) in deleted or (edge.namespace, edge.dst) in deleted:
                raise InvalidInputError(f"edge {edge.src!r} -> {edge.dst!r} links a memory deleted in this batch")

        def build(ts: float) -> list[Op]:
            ops: list[Op] = []
            for (ns, mid, meta, vfrom, vto), mem, vec in zip(prepared, items, vectors, strict=True):
                base = self._effective_counters(ns, mid)
                ops.append(PutOp(ns, mid, mem.text, meta, ts if vfrom is None else vfrom, vto,
                                 min(1.0, max(0.0, float(base["kappa"] if mem.kappa is None else mem.kappa))),
                                 float(base["importance"] if mem.importance is None else mem.importance),
                                 int(base["access_count"] if mem.access_count is None else mem.access_count),
                                 bool(mem.pinned), vec))
            ops.extend(EdgeOp("del", e.namespace, e.src, e.dst, e.type, 0.0) for e in unlinks
                       if (e.namespace, e.src, e.dst, e.type) in self._graph.weights)
            for e in links:  # endpoints again under the write lock: a concurrent delete may have won
                self._require_current(e.namespace, (e.src, e.dst), also=put_keys)
            ops.extend(EdgeOp("set", e.namespace, e.src, e.dst, e.type, float(e.weight)) for e in links)
            ops.extend(self._delete_ops(namespace, delete_ids))
            return ops

        self._commit(build)
        return [p[1] for p in prepared]

    def add_conversation(self, session_id: str, turns: Iterable[tuple[str, str] | Mapping[str, Any]], *,
                         namespace: str = DEFAULT_NAMESPACE, vectors: Sequence[Any] | None = None,
                         metadata: Mapping[str, Any] | None = None) -> list[str]:
        """Append conversation turns to a session as linked memories (one atomic batch).

        ``turns`` are ``(role, text)`` pairs or ``{"role": ..., "content": ...}`` dicts. Turn
        ``n`` of a session gets id ``f"{session_id}/{n:06d}"`` and metadata ``{"session",
        "turn", "role"}`` (plus ``metadata``); consecutive turns — including the session's
        previous last turn — are linked by ``next`` and ``prev`` edges, so context around a
        retrieved turn is one ``neighbors`` call away. ``vectors`` (one per turn) skip the
        embedder. Returns the new ids in order.
        """
        check_id(session_id)
        check_namespace(namespace)
        parsed: list[tuple[str, str]] = []
        for turn in turns:
            role, text = (turn.get("role"), turn.get("content")) if isinstance(turn, Mapping) else turn
            if not isinstance(role, str) or not isinstance(text, str):
                raise InvalidInputError(f"a turn needs a string role and text, got {turn!r}")
            parsed.append((role, text))
        if vectors is not None and len(vectors) != len(parsed):
            raise InvalidInputError(f"{len(vectors)} vectors for {len(parsed)} turns")
        if vectors is None:  # embed before taking the write lock (writers must not wait for the model)
            vectors = list(self._vectors_for([Memory(text=text, namespace=namespace) for _, text in parsed]))
        prefix = f"{session_id}/"
        with self._write_mutex:  # turn numbers must not race another append to the same session
            with self._rw.read():  # every turn ever written, deleted ones too: ids are never reused
                used = [mid for mid in self._catalog.versions.get(namespace, {}) if mid.startswith(prefix)]
            start = 1 + max((int(mid[len(prefix):]) for mid in used if mid[len(prefix):].isdigit()), default=-1)
            ids = [f"{prefix}{start + i:06d}" for i in range(len(parsed))]
            memories = [Memory(text=text, id=mid, namespace=namespace, vector=vectors[i],
                               metadata={**(metadata or {}), "session": session_id, "turn": start + i, "role": role})
                        for i, ((role, text), mid) in enumerate(zip(parsed, ids, strict=True))]
            last = f"{prefix}{start - 1:06d}"
            chain = ([last] if start > 0 and self._catalog.current(namespace, last) is not None else []) + ids
            links = [edge for a, b in itertools.pairwise(chain)
                     for edge in (Edge(a, b, "next", 1.0, namespace), Edge(b, a, "prev", 1.0, namespace))]
            return self.write(put=memories, link=links, namespace=namespace)

    def _edges_arg(self, edges: Iterable[Edge], what: str) -> list[Edge]:
        out = list(edges)
        for edge in out:
            if not isinstance(edge, Edge):
                raise InvalidInputError(f"{what} takes t4dm_core.Edge objects, got {type(edge).__name__}")
            check_namespace(edge.namespace)
        return out

    def _delete_ops(self, namespace: str, ids: list[str]) -> list[Op]:
        """Tombstones for the current ones of ``ids`` plus removal of every edge touching them."""
        ops: list[Op] = []
        removed: set[tuple[str, str, str]] = set()
        for mid in ids:
            if self._catalog.current(namespace, mid) is None:
                continue
            ops.append(DeleteOp(namespace, mid))
            for src, dst, etype, _ in self._graph.edges_of(namespace, mid, "both"):
                if (src, dst, etype) not in removed:
                    removed.add((src, dst, etype))
                    ops.append(EdgeOp("del", namespace, src, dst, etype, 0.0))
        return ops

    def _reconsolidate(self, items: list[Memory], prepared: list[Prepared], vectors: list[np.ndarray],
                       taken: set[tuple[str, str]]) -> list[Prepared]:
        """Give an id-less memory the id of a labile memory it nearly repeats (see ``Options.lability_window``)."""
        if self.options.lability_window <= 0 or all(m.id is not None for m in items):
            return prepared
        now = time.time()
        out = list(prepared)
        with self._rw.read():
            for i, (mem, vec) in enumerate(zip(items, vectors, strict=True)):
                ns = out[i][0]
                if mem.id is not None:
                    continue
                best, best_score = None, self.options.reconsolidation_similarity
                for mid in self._access.labile(ns, now):
                    ref = self._catalog.current(ns, mid)
                    if ref is None or (ns, mid) in taken:
                        continue
                    score = float(ref.source.vectors[ref.row] @ vec)
                    if score >= best_score:
                        best, best_score = mid, score
                if best is not None:
                    taken.add((ns, best))
                    out[i] = (ns, best, *out[i][2:])
        return out

    def _prepare(self, memory: Memory) -> Prepared:
        if not isinstance(memory, Memory):
            raise InvalidInputError(f"expected a Memory, got {type(memory).__name__}")
        ns = check_namespace(memory.namespace)
        mid = check_id(memory.id) if memory.id is not None else uuid.uuid4().hex
        check_text(memory.text)
        meta = json.loads(json.dumps(check_metadata(memory.metadata)))  # private deep copy
        vfrom = to_timestamp(memory.valid_from, "valid_from")
        vto = to_timestamp(memory.valid_to, "valid_to")
        if vfrom is not None and vto is not None and vto <= vfrom:
            raise InvalidInputError(f"valid_to ({vto}) must be after valid_from ({vfrom})")
        for name in ("kappa", "importance"):
            value = getattr(memory, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise InvalidInputError(f"{name} must be a finite number")
        if memory.access_count is not None and (not isinstance(memory.access_count, int) or memory.access_count < 0):
            raise InvalidInputError("access_count must be a non-negative integer")
        if memory.text is None and memory.vector is None:
            raise InvalidInputError("a memory needs text, a vector, or both")
        return ns, mid, meta, vfrom, vto

    def _vectors_for(self, items: list[Memory]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [
            normalize_vector(m.vector, self.dim) if m.vector is not None else None for m in items]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            embedded = normalize_matrix(self._require_embedder().embed_documents(
                [items[i].text for i in missing]), self.dim)  # type: ignore[misc]
            for i, vec in zip(missing, embedded, strict=True):
                out[i] = vec
        return out  # type: ignore[return-value]

    def _require_embedder(self) -> Embedder:
        if self._embedder is None:
            recorded = self._manifest.get("embedder")
            hint = f"it was built with embedder {recorded!r}; pass that embedder" if recorded else \
                "pass vectors, or open the store with an embedder"
            raise EmbedderMismatchError(f"store {self.path} has no embedder for text: {hint}")
        return self._embedder

    def _effective_counters(self, ns: str, mid: str) -> dict[str, float]:
        ref = self._catalog.current(ns, mid)
        if ref is None:
            return {"kappa": 0.0, "importance": 0.5, "access_count": 0}
        return self._current_counters(ns, mid, ref.source.row_fields(ref.row))

    def _current_counters(self, ns: str, mid: str, fields: dict[str, Any]) -> dict[str, float]:
        """A current version's counters: its stored values plus pending learning deltas."""
        delta = self._catalog.deltas.get((ns, mid))
        if not delta:
            return {k: fields[k] for k in COUNTER_FIELDS}
        return {"kappa": min(1.0, max(0.0, fields["kappa"] + delta.get("kappa", 0.0))),
                "importance": fields["importance"] + delta.get("importance", 0.0),
                "access_count": int(fields["access_count"] + delta.get("access_count", 0.0))}

    def delete(self, ids: str | Iterable[str], *, namespace: str = DEFAULT_NAMESPACE) -> int:
        """Tombstone memories and remove their edges (one atomic batch). Unknown or deleted ids are skipped.

        Deleted memories vanish from get/search/neighbors/edges but stay in ``history`` and
        ``as_of`` (edges are not bitemporal: a re-created id starts without edges).
        Returns how many were deleted.
        """
        check_namespace(namespace)
        id_list = _unique_ids(ids)
        result = {"n": 0}

        def build(ts: float) -> list[Op]:
            ops = self._delete_ops(namespace, id_list)
            result["n"] = sum(isinstance(op, DeleteOp) for op in ops)
            return ops

        self._commit(build)
        return result["n"]

    def link(self, src: str, dst: str, *, type: str = DEFAULT_EDGE_TYPE, weight: float = 1.0,
             namespace: str = DEFAULT_NAMESPACE) -> Edge:
        """Create or overwrite the directed edge src → dst of ``type``. Both memories must be current."""
        self._check_edge(src, dst, type, weight, namespace)

        def build(ts: float) -> list[Op]:
            self._require_current(namespace, (src, dst))  # again under the write lock: a delete may have won
            return [EdgeOp("set", namespace, src, dst, type, float(weight))]

        self._commit(build)
        return Edge(src, dst, type, float(weight), namespace)

    def _require_current(self, namespace: str, ids: Iterable[str], also: AbstractSet[tuple[str, str]] = frozenset()
                         ) -> None:
        for mid in ids:
            if self._catalog.current(namespace, mid) is None and (namespace, mid) not in also:
                raise MemoryNotFoundError(f"no memory {mid!r} in namespace {namespace!r}")

    def unlink(self, src: str, dst: str, *, type: str = DEFAULT_EDGE_TYPE, namespace: str = DEFAULT_NAMESPACE) -> bool:
        """Remove an edge. Returns whether it existed."""
        check_namespace(namespace)
        existed = (namespace, src, dst, type) in self._graph.weights
        if existed:
            self._commit(lambda ts: [EdgeOp("del", namespace, src, dst, type, 0.0)])
        return existed

    def _check_edge(self, src: str, dst: str, etype: str, weight: float, namespace: str,
                    also: AbstractSet[tuple[str, str]] = frozenset()) -> None:
        check_namespace(namespace)
        check_id(src)
        check_id(dst)
        if not isinstance(etype, str) or not etype:
            raise InvalidInputError("edge type must be a non-empty string")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise InvalidInputError("edge weight must be a finite number")
        self._require_current(namespace, (src, dst), also)

    def bump(self, memory_id: str, field: str, delta: float, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Learning write: add ``delta`` to kappa, importance or access_count (O(1) overlay, buffered)."""
        self._check_writable()
        if field not in COUNTER_FIELDS:
            raise InvalidInputError(f"field must be one of {COUNTER_FIELDS}, got {field!r}")
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta):
            raise InvalidInputError("delta must be a finite number")
        if self._catalog.current(namespace, memory_id) is None:
            raise MemoryNotFoundError(f"no memory {memory_id!r} in namespace {namespace!r}")
        self._commit(lambda ts: [FieldDeltaOp(namespace, memory_id, field, float(delta))], buffered=True)

    def strengthen(self, src: str, dst: str, delta: float, *, type: str = DEFAULT_EDGE_TYPE,
                   namespace: str = DEFAULT_NAMESPACE) -> None:
        """Learning write: add ``delta`` to an edge's weight (creating it); O(1) overlay, buffered."""
        self._check_edge(src, dst, type, delta, namespace)

        def build(ts: float) -> list[Op]:
            self._require_current(namespace, (src, dst))  # again under the write lock
            return [EdgeOp("add", namespace, src, dst, type, float(delta))]

        self._commit(build, buffered=True)

    # ------------------------------------------------------------ flush
    def flush(self) -> None:
        """Write the memtable into an immutable segment and commit a new manifest."""
        with self._write_mutex:
            self._check_writable()
            self._apply_read_learning()
            self._flush_locked()

    def _flush_locked(self) -> None:
        assert self._wal is not None
        mem = self._mem
        new_wal: WalWriter | None = None
        try:
            self._wal.flush_buffer()
            if mem.is_empty:
                self._wal.sync_to(self._wal.size)
                return
            number = self._alloc_file_number()
            new_wal = WalWriter(self._fs, wal_path(self.path, number), number, create=True)
            seg_id = self._alloc_file_number()
            data = SegmentData(mem.namespace, mem.ids, mem.lsn, mem.recorded_at, mem.deleted, mem.text, mem.metadata,
                               mem.valid_from, mem.valid_to, mem.kappa, mem.importance, mem.access_count, mem.pinned,
                               mem.vectors, mem.edge_ops, mem.field_deltas,
                               superseded=~mem.live & ~np.asarray(mem.deleted, dtype=bool))  # replaced in this flush
            entry, index = self._write_segment(seg_id, data)
            new_wal.sync_to(new_wal.size)
            self._fs.sync_dir(self.path)
            segment = Segment.open(self._fs, self.path, entry, self.dim, self._ns_lookup, index=index)
            self._commit_manifest({**self._manifest, "segments": [*self._manifest["segments"], entry],
                                   "flushed_lsn": self._next_lsn - 1, "wal_numbers": [number]})
        except OSError as exc:
            self._failed = exc
            if new_wal is not None:
                new_wal.close()
            raise StoreFailedError(f"flush failed: {exc}") from exc
        old_wal, self._wal = self._wal, new_wal
        old_wal.close()
        with self._rw.write():
            self._catalog.relocate(mem, segment, {lsn: row for row, lsn in enumerate(mem.lsn)})
            for row in np.flatnonzero(~mem.live & ~np.asarray(mem.deleted, dtype=bool)):
                segment.set_live(int(row), False)
            self._segments.append(segment)
            self._mem = Memtable(self.dim)
        self._gc()
        self._schedule_compaction()

    def _schedule_compaction(self) -> None:
        """Start a background compaction if the policy has work and none is running."""
        if not self.options.auto_compact or (self._compactor is not None and self._compactor.is_alive()):
            return
        if len(self._policy.pick(self._segments)) < 2:
            return
        self._compactor = threading.Thread(target=self._background_compact, name="t4dm-compaction", daemon=True)
        self._compactor.start()

    def _background_compact(self) -> None:
        try:
            while not self._closed and self.compact():
                pass
        except BaseException as exc:  # reported through background_error and the log, never lost silently
            self.background_error = exc
            log.error("t4dm: background compaction failed: %s", str(exc))

    def _write_segment(self, seg_id: int, data: SegmentData) -> tuple[dict[str, Any], Any]:
        o = self.options
        return write_segment(self._fs, self.path, seg_id, data, self.dim, hnsw_m=o.hnsw_m,
                             hnsw_ef_construction=o.hnsw_ef_construction, num_threads=o.num_threads)

    def _commit_manifest(self, body: dict[str, Any]) -> None:
        version = self._manifest["version"] + 1
        clean = {k: v for k, v in body.items() if k not in ("format", "version")}
        clean["next_file_number"] = self._next_file
        clean["last_ts"] = self._last_ts
        write_manifest(self._fs, self.path, version, clean)
        self._manifest = {**clean, "format": 1, "version": version}
        self._retained = [self._manifest, *self._retained][: self.options.retain_manifests]

    def _gc(self) -> None:
        """Delete files no retained or reader-pinned manifest references (never the active WAL)."""
        pins = pinned_versions(self.path)
        if PIN_ALL in pins:
            return  # a reader is choosing its manifest; collect at the next commit
        bodies = list(self._retained)
        for version in set(pins) - {b["version"] for b in bodies}:
            try:
                bodies.append(read_manifest(self._fs, self.path, version))
            except (OSError, StorageError):
                return  # cannot tell what the reader needs: keep everything this round
        keep = {manifest_name(b["version"]) for b in bodies}
        for body in bodies:
            for entry in body["segments"]:
                keep.update(f["name"] for f in entry["files"].values())
        oldest_wal = min(min(b["wal_numbers"]) for b in bodies)
        for name in self._fs.listdir(self.path):
            stem = name.split(".")[0]
            if name.startswith(tuple(self._inflight_segments)):
                continue
            obsolete = (
                (name.startswith("seg-") and name not in keep)
                or (name.startswith("MANIFEST-") and name not in keep)
                or (stem.startswith("wal-") and stem[4:].isdigit() and int(stem[4:]) < oldest_wal)
                or name.endswith(_TMP_SUFFIXES)
            )
            if obsolete:
                try:
                    self._fs.remove(os.path.join(self.path, name))
                except FileNotFoundError:
                    pass
                except OSError as exc:  # leftover files are harmless; retry at the next GC
                    log.warning("t4dm: could not remove obsolete file %s: %s", name, str(exc))

    # -------------------------------------------------------- compaction
    def compact(self, *, full: bool = False, policy: CompactionPolicy | None = None) -> bool:
        """Merge segments: ``policy.pick`` (default: the store's size-tiered policy) or, with
        ``full=True``, all segments into one.

        Writes and searches continue while the merge runs; it commits by one manifest
        switch. Every memory version is kept, unless ``Options.history_retention`` is set
        (then history older than that horizon is vacuumed as in :meth:`vacuum`). Returns
        whether anything was merged.
        """
        retention = self.options.history_retention
        return self._compact(full=full, policy=policy,
                             horizon=None if retention is None else time.time() - retention, rewrite_single=False)

    def vacuum(self, *, before: Any = None) -> int:
        """Reclaim the disk of history older than ``before`` (default: now); returns versions dropped.

        ``before`` is a time (epoch seconds or a datetime), the history horizon. Flushes, then
        rewrites every segment into one without the versions that no query with a
        transaction time at or after the horizon can return: versions superseded before it
        whose valid range a later version covers, everything before a tombstone, and the
        tombstones of memories deleted before it. Answers for ``as_of`` at or after the
        horizon (and for plain queries) are unchanged; ``as_of`` before it raises
        :class:`HistoryUnavailableError` from now on (the horizon is kept in the manifest).
        Current versions, edges and learning counters are never dropped. Readers are not
        blocked; it commits by one manifest switch like :meth:`compact`.
        """
        now = time.time()
        stamp = to_timestamp(before, "vacuum(before=...)")
        horizon = now if stamp is None else stamp
        if horizon > now:
            raise InvalidInputError(f"vacuum(before=...) is in the future ({horizon} > now {now})")
        self.flush()
        count = self._catalog.version_count()
        if not self._compact(full=True, policy=None, horizon=horizon, rewrite_single=True):
            with self._write_mutex:  # nothing on disk to rewrite: still record the horizon
                self._check_writable()
                self._commit_manifest(self._with_horizon(self._manifest, horizon))
        return count - self._catalog.version_count()

    def _with_horizon(self, body: dict[str, Any], horizon: float) -> dict[str, Any]:
        """``body`` with the history horizon advanced to ``horizon`` (it never moves back)."""
        return {**body, "history_horizon": max(horizon, self._manifest.get("history_horizon") or horizon)}

    def _compact(self, *, full: bool, policy: CompactionPolicy | None, horizon: float | None,
                 rewrite_single: bool) -> bool:
        self._check_writable()
        chooser = policy or self._policy
        with self._compaction_lock:
            with self._write_mutex:
                inputs = list(self._segments) if full else _contiguous(self._segments, chooser.pick(self._segments))
                if len(inputs) < (1 if rewrite_single else 2):
                    return False
                seg_id = self._alloc_file_number()
                output_prefix = f"seg-{seg_id:06d}."
                self._inflight_segments.add(output_prefix)
            try:
                return self._merge_and_commit(inputs, seg_id, horizon)
            finally:
                with self._write_mutex:
                    self._inflight_segments.discard(output_prefix)

    def _merge_and_commit(self, inputs: list[Segment], seg_id: int, horizon: float | None) -> bool:
        """Build the merged segment (no lock held), then commit it with one manifest switch."""
        durable_lsn = self._manifest["flushed_lsn"]  # every version at or below it is in a segment
        vacuumed = {} if horizon is None else self._vacuumable(inputs, horizon, durable_lsn)
        drop_lsns = frozenset(lsn for lsns in vacuumed.values() for lsn in lsns)

        def latest_lsn(ns: str, mid: str) -> int:
            # Only a version that is already in a segment may make a delta obsolete: a newer
            # version still in the memtable/WAL could be lost by a power cut (sync="normal").
            return max((r.lsn for r in self._catalog.chain(ns, mid) if r.lsn <= durable_lsn), default=-1)

        try:
            data = merge_segments(inputs, latest_lsn, drop_lsns)
            entry, index = self._write_segment(seg_id, data)
            self._fs.sync_dir(self.path)
            merged = Segment.open(self._fs, self.path, entry, self.dim, self._ns_lookup, index=index)
        except OSError as exc:
            raise StorageError(f"compaction failed (store unchanged): {exc}") from exc
        with self._write_mutex:
            self._check_writable()
            input_ids = {s.id for s in inputs}
            entries = [e for e in self._manifest["segments"] if e["id"] not in input_ids] + [entry]
            body = {**self._manifest, "segments": entries}
            try:
                self._commit_manifest(body if horizon is None else self._with_horizon(body, horizon))
            except OSError as exc:
                self._failed = exc
                raise StoreFailedError(f"compaction commit failed: {exc}") from exc
            with self._rw.write():
                for (ns, mid), lsns in vacuumed.items():
                    self._catalog.drop_versions(ns, mid, lsns)
                for seg in inputs:
                    self._catalog.relocate(seg, merged, {int(lsn): row for row, lsn in enumerate(merged.lsn)})
                for row in range(merged.n):
                    current = self._catalog.current(merged.namespace[row], merged.ids[row])
                    if current is None or current.source is not merged or current.row != row:
                        merged.set_live(row, False)
                self._segments = [s for s in self._segments if s.id not in input_ids] + [merged]
            self._gc()
        return True

    def _vacuumable(self, inputs: list[Segment], horizon: float,
                    durable_lsn: int) -> dict[tuple[str, str], set[int]]:
        """Versions stored in ``inputs`` that no query at or after ``horizon`` can return.

        Decided on each key's durable versions only, so a newer version that a power cut
        could still lose never justifies dropping an older one.
        """
        sources = {id(seg) for seg in inputs}
        out: dict[tuple[str, str], set[int]] = {}
        with self._rw.read():
            keys = {(ns, mid) for seg in inputs for ns, mid in zip(seg.namespace, seg.ids, strict=True)}
            for ns, mid in keys:
                durable = [r for r in self._catalog.chain(ns, mid) if r.lsn <= durable_lsn]
                lsns = {r.lsn for r in unreachable_after(durable, horizon, self._valid_range)
                        if id(r.source) in sources}
                if lsns:
                    out[ns, mid] = lsns
        return out

    def _check_history(self, tx_time: float | None) -> None:
        horizon = self._manifest.get("history_horizon")
        if tx_time is not None and horizon is not None and tx_time < horizon:
            raise HistoryUnavailableError(
                f"as_of transaction time {tx_time} is before the history horizon {horizon}: that history "
                "was vacuumed (Store.vacuum / Options.history_retention)")

    # ------------------------------------------------------------ reads
    def get(self, memory_id: str, *, namespace: str = DEFAULT_NAMESPACE, as_of: AsOf = None) -> Memory | None:
        """The current version (or the one believed at ``as_of``), or None."""
        self._check_open()
        check_namespace(namespace)
        check_id(memory_id)
        valid_t, tx_t = _parse_as_of(as_of)
        self._check_history(tx_t)
        with self._rw.read():
            chain = self._catalog.chain(namespace, memory_id)
            if not chain:
                return None
            ref = believed_at(chain, tx_t, valid_t, self._valid_range)
            return None if ref is None else self._materialize(ref, chain)

    def get_many(self, ids: Iterable[str], *, namespace: str = DEFAULT_NAMESPACE) -> list[Memory | None]:
        """Current versions of ``ids`` in order (None where missing)."""
        return [self.get(i, namespace=namespace) for i in ids]

    def history(self, memory_id: str, *, namespace: str = DEFAULT_NAMESPACE) -> list[Memory]:
        """Every version, oldest first, tombstones included (``deleted=True``)."""
        self._check_open()
        check_namespace(namespace)
        with self._rw.read():
            chain = self._catalog.chain(namespace, memory_id)
            return [self._materialize(ref, chain) for ref in chain]

    def ids(self, *, namespace: str = DEFAULT_NAMESPACE) -> list[str]:
        """Ids of the current memories of a namespace."""
        self._check_open()
        with self._rw.read():
            return [mid for mid, chain in self._catalog.versions.get(namespace, {}).items() if not chain[-1].deleted]

    def find(self, filter: dict[str, Any] | None = None, *, namespace: str = DEFAULT_NAMESPACE,
             limit: int | None = None, as_of: AsOf = None) -> list[Memory]:
        """Memories of ``namespace`` whose metadata match ``filter`` (all of them if ``None``).

        An exact metadata scan, no vectors involved: the listing primitive for callers that
        need "every record where ...". Results are current versions (or those believed at
        ``as_of``), in the order those versions were written (log order); ``limit`` keeps
        the first ``limit``. Cost grows with the size of the namespace (filters are evaluated
        column-wise where the segment layout allows). Thread-safe; runs under the read lock.
        """
        self._check_open()
        check_namespace(namespace)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative integer or None, got {limit!r}")
        flt = compile_filter(filter)
        valid_t, tx_t = _parse_as_of(as_of)
        self._check_history(tx_t)
        with self._rw.read():
            if as_of is None and flt is not None:
                refs = self._current_matching(namespace, flt)
            else:
                refs = self._catalog.visible_at(namespace, tx_t, valid_t, self._valid_range)
                if flt is not None:  # filter masks are cached per source
                    refs = [ref for ref in refs if ref.source.filter_mask(flt)[ref.row]]
            refs.sort(key=lambda r: r.lsn)
            if limit is not None:
                refs = refs[:limit]
            return [self._materialize(ref) for ref in refs]

    def _current_matching(self, namespace: str, flt: Filter) -> list[VersionRef]:
        """Current versions matching ``flt``, found from the sources' live and filter masks, so the
        cost beyond the (cached, column-wise where possible) masks grows with the matches only."""
        code = self._ns_lookup.get(namespace)
        if code is None:
            return []
        refs = []
        for src, _, allowed in self._candidate_masks(code, flt, namespace, None, None, None):
            for row in np.flatnonzero(allowed):  # live rows are exactly the current versions
                ref = self._catalog.current(namespace, src.ids[row])
                if ref is not None:
                    refs.append(ref)
        return refs

    def namespaces(self) -> list[str]:
        """Namespaces that hold at least one current memory."""
        self._check_open()
        with self._rw.read():
            return sorted(ns for ns, chains in self._catalog.versions.items()
                          if any(not c[-1].deleted for c in chains.values()))

    @staticmethod
    def _valid_range(ref: VersionRef) -> tuple[float, float | None]:
        f = ref.source.row_fields(ref.row)
        return f["valid_from"], f["valid_to"]

    def _materialize(self, ref: VersionRef, chain: list[VersionRef] | None = None) -> Memory:
        """Build the public Memory for a version (a private copy; learning deltas applied if current)."""
        src, row = ref.source, ref.row
        f = src.row_fields(row)
        ns, mid = f["namespace"], f["id"]
        if chain is None:
            chain = self._catalog.chain(ns, mid)
        superseded_at = None
        last_accessed = None
        if chain[-1] is ref:
            counters = self._current_counters(ns, mid, f)
            last_accessed = self._catalog.deltas.get((ns, mid), {}).get(LAST_ACCESS)
        else:
            counters = {k: f[k] for k in COUNTER_FIELDS}
            superseded_at = chain[chain.index(ref) + 1].recorded_at
        deleted = f["deleted"]
        return Memory(
            text=src.row_text(row), id=mid, namespace=ns, vector=None if deleted else src.row_vector(row),
            metadata=src.row_metadata(row), valid_from=f["valid_from"], valid_to=f["valid_to"],
            recorded_at=f["recorded_at"], superseded_at=superseded_at, kappa=counters["kappa"],
            importance=counters["importance"], access_count=int(counters["access_count"]), pinned=f["pinned"],
            deleted=deleted, last_accessed=last_accessed)

    def search(self, query: str | Sequence[float] | np.ndarray, k: int = 10, *,
               namespace: str = DEFAULT_NAMESPACE, filter: dict[str, Any] | None = None,
               as_of: AsOf = None, ef: int | None = None, mode: str | None = None,
               ranking: Ranking | None = None, learn: bool | None = None, complete: bool = False,
               query_vector: Sequence[float] | np.ndarray | None = None) -> list[Hit]:
        """Top-``k`` current memories of ``namespace`` for ``query`` (higher score = better).

        ``query`` is text or a vector. ``mode`` picks the ranking:

        * ``"vector"`` (the default for a vector query): cosine similarity, ``score`` in [-1, 1].
        * ``"lexical"``: BM25 over the memories' text (text query only; needs no embedder).
        * ``"hybrid"`` (the default for a text query): :class:`Ranking` defaults — vector and
          lexical candidates, each scored by both signals (``score`` = cosine + 0.4 · BM25
          normalised by the query's reference score), graph expansion and recency/importance/κ
          priors; ``Ranking(fusion="rrf")`` fuses by reciprocal rank instead.

        Or pass ``ranking=Ranking(...)`` to weigh or switch off each signal yourself. Every hit
        carries ``explain``: ``vector`` (cosine), ``lexical`` (BM25, 0 if no query term
        matched) and ``graph`` scores where those signals ran, and the 1-based rank each
        signal gave it (``vector_rank``, ``lexical_rank``, ``graph_rank``, ``recency_rank``…).
        ``filter`` is a metadata filter (see :mod:`t4dm_core.filters`); ``as_of`` searches
        what the store believed at a past time (exact scoring; no graph expansion); ``ef``
        overrides the HNSW beam width. ``learn`` overrides ``Options.learn_on_read`` for this
        call (``as_of`` searches never learn). ``complete=True`` first completes the query
        vector against the namespace's stored patterns (DG keyer + modern Hopfield, see
        :mod:`t4dm_core.learning.completion`), which helps partial or noisy cues; the pattern
        set is a snapshot taken at first use after opening and after each sleep.
        ``query_vector`` is the embedding of a text ``query`` computed by the caller (for
        stores fed with vectors from an outside embedder); the store's embedder is then not used.
        """
        self._check_open()
        check_namespace(namespace)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInputError(f"k must be an integer in 1..{MAX_K}, got {k!r}")
        plan = _resolve_ranking(mode, ranking, query)
        flt = compile_filter(filter)
        if query_vector is not None and not isinstance(query, str):
            raise InvalidInputError("query_vector goes with a text query; pass a vector query directly instead")
        qvec = None
        if plan.vector > 0:
            qvec = self._query_vector(query if query_vector is None else query_vector)
        if complete:
            if qvec is None:
                raise InvalidInputError("complete=True completes the query vector; it needs vector ranking")
            qvec = self._completer(namespace).complete(qvec)
        valid_t, tx_t = _parse_as_of(as_of)
        self._check_history(tx_t)
        single = plan.single_signal
        depth = k if single is not None else min(MAX_K, max(3 * k, HYBRID_MIN_DEPTH))
        ef = max(self.options.hnsw_ef_search if ef is None else int(ef), depth)
        with self._rw.read():
            code = self._ns_lookup.get(namespace)
            if code is None:
                return []
            scores: dict[str, dict[tuple[RowSource, int], float]] = {}
            matches = None
            if qvec is not None:
                found = self._vector_candidates(qvec, depth, code, flt, ef, namespace, as_of, valid_t, tx_t)
                scores["vector"] = {(src, row): score for score, src, row in found}
            if plan.lexical > 0:
                masks = self._candidate_masks(code, flt, namespace, as_of, valid_t, tx_t)
                matches = lexical_matches(masks, tokenize(query))  # type: ignore[arg-type]
                scores["lexical"] = {(src, row): score for score, src, row in matches.top_k(depth)}
            priors: dict[tuple[RowSource, int], dict[str, float]] = {}
            if single is not None:
                ranked = [(key, score, {single: rank})
                          for rank, (key, score) in enumerate(list(scores[single].items())[:k], start=1)]
            else:
                ranked = self._fuse(scores, plan, namespace, flt, priors, qvec, matches, expand=as_of is None)[:k]
            hits = [self._hit(key, score, ranks, scores, priors.get(key, {}), qvec, as_of)
                    for key, score, ranks in ranked]
        self._last_activity = time.monotonic()
        if as_of is None and (self.options.learn_on_read if learn is None else learn):
            self._learn_from_read(namespace, hits)
        return hits

    # ------------------------------------------------------------ sleep
    def sleep(self, *, namespaces: Iterable[str] | None = None, policy: SleepPolicy | None = None,
              background: bool = False,
              progress: Callable[[str, int, int], None] | bool = False) -> SleepReport | Future[SleepReport]:
        """Consolidate: NREM (replay, κ, STDP, near-duplicate merge), REM (prototypes), PRUNE, then compact.

        Plans each namespace from a snapshot (readers and writers keep going), then applies
        every change as ONE atomic batch — memories changed since the snapshot are left alone
        (listed in ``report.skipped``) — and finally merges segments with one manifest switch.
        Nothing is lost in time: merged and forgotten memories are tombstones, so ``as_of``
        before the sleep answers as before; ``why_forgotten`` explains PRUNE's decisions.
        ``progress(phase, done, total)`` is called as namespaces are planned
        (``progress=True`` shows a progress bar on stderr instead). With
        ``background=True`` the sleep runs in a thread and a ``Future`` is returned.
        """
        self._check_writable()
        chosen = policy or SleepPolicy()
        report_to: Callable[[str, int, int], None] | None
        if isinstance(progress, bool):
            report_to = _progress_bar("sleep: planning namespaces") if progress else None
        else:
            report_to = progress
        if background:
            future: Future[SleepReport] = Future()

            def run() -> None:
                try:
                    future.set_result(self._sleep(namespaces, chosen, report_to))
                except BaseException as exc:  # delivered to the caller through the future
                    future.set_exception(exc)

            worker = threading.Thread(target=run, name="t4dm-sleep", daemon=True)
            self._sleepers.append(worker)
            worker.start()
            return future
        return self._sleep(namespaces, chosen, report_to)

    def _sleep(self, namespaces: Iterable[str] | None, policy: SleepPolicy,
               progress: Callable[[str, int, int], None] | None) -> SleepReport:
        with self._sleep_lock:  # one sleep at a time
            self._writes_since_sleep = 0
            report = self._sleep_locked(namespaces, policy, progress)
            self._writes_since_sleep = max(0, self._writes_since_sleep - report.versions_written)
            return report

    def _run_sleep_scheduler(self) -> None:
        """Background trigger of :meth:`sleep` (see ``Options.sleep_after_writes`` / ``sleep_when_idle``)."""
        o = self.options
        tick = min(1.0, o.sleep_when_idle / 4) if o.sleep_when_idle > 0 else 1.0
        while not self._stop_scheduler.wait(tick):
            pending = self._writes_since_sleep
            idle = time.monotonic() - self._last_activity
            due = (o.sleep_after_writes > 0 and pending >= o.sleep_after_writes) or \
                (o.sleep_when_idle > 0 and pending > 0 and idle >= o.sleep_when_idle)
            if not due:
                continue
            try:
                self._sleep(None, o.sleep_policy or SleepPolicy(), None)
            except BaseException as exc:  # reported through background_error and the log
                self.background_error = exc
                log.error("t4dm: scheduled sleep failed: %s", str(exc))
                return

    def _sleep_locked(self, namespaces: Iterable[str] | None, policy: SleepPolicy,
                      progress: Callable[[str, int, int], None] | None) -> SleepReport:
        report = SleepReport()
        started = time.perf_counter()
        targets = [check_namespace(ns) for ns in (self.namespaces() if namespaces is None else namespaces)
                   if ns != SLEEP_LOG_NAMESPACE]
        now = time.time()
        plans = []
        for done, ns in enumerate(targets):
            if progress is not None:
                progress("plan", done, len(targets))
            memories = self.find(namespace=ns)
            with self._rw.read():
                edges = {(src, dst, etype): w for m in memories
                         for src, dst, etype, w in self._graph.edges_of(ns, m.id, "out")  # type: ignore[arg-type]
                         if self._catalog.current(ns, dst) is not None}

            def near(m: Memory, ns: str = ns) -> list[tuple[str, float]]:
                assert m.vector is not None  # find() returns current versions with their vectors
                return [(h.id, h.score) for h in self.search(m.vector, k=4, namespace=ns, mode="vector", learn=False)]

            plans.append(plan_namespace(ns, memories, edges, near, policy, now))
        if progress is not None:
            progress("plan", len(targets), len(targets))
        report.seconds["plan"] = time.perf_counter() - started

        def current_recorded_at(ns: str, mid: str) -> float | None:
            ref = self._catalog.current(ns, mid)
            return None if ref is None else ref.recorded_at

        view = StoreView(current_recorded_at, lambda ns, mid: list(self._graph.edges_of(ns, mid, "both")),
                         lambda ns, src, dst, etype: self._graph.weights.get((ns, src, dst, etype)),
                         self._delete_ops, self.dim)
        started = time.perf_counter()
        def build(ts: float) -> list[Op]:
            ops = plan_ops(plans, view, ts, report)
            report.versions_written = sum(isinstance(op, PutOp | DeleteOp) for op in ops)
            return ops

        self._commit(build)
        self._completers.clear()  # completion patterns are refreshed by sleep
        report.seconds["apply"] = time.perf_counter() - started
        if policy.compact:
            started = time.perf_counter()
            self.flush()
            report.compacted = self.compact(full=True)
            report.seconds["compact"] = time.perf_counter() - started
        return report

    def why_forgotten(self, memory_id: str, *, namespace: str = DEFAULT_NAMESPACE) -> str | None:
        """Why a sleep forgot (or merged away) this memory, or ``None`` if no sleep did."""
        key = log_key(check_namespace(namespace), check_id(memory_id))
        for entry in reversed(self.find({"$or": [{"forgotten": {"$contains": key}}, {"absorbed": {"$contains": key}}]},
                                        namespace=SLEEP_LOG_NAMESPACE)):
            reasons = entry.metadata.get("reasons", {})
            if key in reasons:
                return f"forgotten by {entry.id}: {reasons[key]}"
            survivor = next((s for s, vs in entry.metadata.get("merged", {}).items() if key in vs), None)
            if survivor is not None:
                return f"merged by {entry.id} into {survivor.split(chr(31), 1)[1]!r} as a near-duplicate"
        return None

    # ------------------------------------------------------------ write gate and completion
    def offer(self, memory: Memory, *, surprise: float = 0.0, reward: float = 0.0, label: bool | None = None,
              gate: WriteGate | None = None) -> GateDecision:
        """Write ``memory`` only if the write gate admits it (see :mod:`t4dm_core.learning.gate`).

        ``surprise`` and ``reward`` are caller signals in [0, 1]; novelty is measured against
        the memory's namespace; a pinned memory is always written. ``label`` (whether the
        memory *should* be kept) feeds the precision/recall telemetry of :meth:`gate_stats`.
        """
        for name, value in (("surprise", surprise), ("reward", reward)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}")
        if not isinstance(memory, Memory):
            raise InvalidInputError(f"expected a Memory, got {type(memory).__name__}")
        vector = self._vectors_for([memory])[0]
        best = self.search(vector, k=1, namespace=check_namespace(memory.namespace), mode="vector", learn=False)
        novelty = 1.0 if not best else min(1.0, max(0.0, 1.0 - best[0].score))
        chosen = gate or self.options.write_gate or WriteGate()
        score = chosen.score(surprise=surprise, novelty=novelty, reward=reward, pinned=memory.pinned)
        written_id = None
        if memory.pinned or score >= chosen.tau:
            written_id = self.put(dataclasses.replace(memory, vector=vector))
        decision = GateDecision(written_id is not None, score, novelty, float(surprise), float(reward),
                                memory.pinned, written_id)
        self._gate_stats.record(decision, len((memory.text or "").split()), label)
        return decision

    def gate_stats(self) -> dict[str, float | int | None]:
        """Write-gate telemetry since open: offers, writes, writes per 1k tokens, precision, recall."""
        return self._gate_stats.snapshot()

    def _completer(self, namespace: str) -> HopfieldCompleter:
        completer = self._completers.get(namespace)
        if completer is None:
            o = self.options
            memories = sorted(self.find(namespace=namespace),
                              key=lambda m: (-(m.kappa or 0.0), -(m.importance or 0.0)))[: o.completion_patterns]
            vectors = [m.vector for m in memories if m.vector is not None]
            patterns = np.stack(vectors) if vectors else np.zeros((0, self.dim), np.float32)
            keyer = DGKeyer(self.dim) if o.completion_keyer else None
            completer = HopfieldCompleter(patterns, beta=o.completion_beta, keyer=keyer)
            self._completers[namespace] = completer
        return completer

    # ------------------------------------------------------------ learning on read
    def _learn_from_read(self, namespace: str, hits: list[Hit]) -> None:
        """Queue a search's learning writes; apply the queue if the write lock is free right now."""
        if self.read_only or not hits or self._failed is not None:
            return
        self._access.record(namespace, [h.id for h in hits], time.time())
        if self._write_mutex.acquire(blocking=False):
            try:
                self._apply_read_learning()
            finally:
                self._write_mutex.release()

    def _apply_read_learning(self) -> None:
        """Turn queued retrievals into one buffered overlay batch (caller holds the write mutex).

        Best effort: a closed or failed store drops the queue; an I/O error here makes the
        store fail exactly as any write would, but never fails the search that triggered it.
        """
        batches = self._access.drain()
        if not batches or self._closed or self._failed is not None:
            return
        ops: list[Op] = []
        weights: dict[tuple[str, str, str], float] = {}
        for ns, ids in batches:
            ops.extend(FieldDeltaOp(ns, mid, "access_count", 1.0) for mid in ids
                       if self._catalog.current(ns, mid) is not None)
            for a, b in co_retrieval_pairs(ids, self.options.hebbian_top):
                if self._catalog.current(ns, a) is None or self._catalog.current(ns, b) is None:
                    continue  # deleted since the search: no edge onto a tombstone
                w = weights.get((ns, a, b), self._graph.weights.get((ns, a, b, CO_RETRIEVED), 0.0))
                delta = self.options.hebbian_rate * (1.0 - w)
                if delta > 0:
                    weights[(ns, a, b)] = w + delta
                    ops.append(EdgeOp("add", ns, a, b, CO_RETRIEVED, delta))
        try:
            self._commit(lambda ts: ops, buffered=True)
        except T4DMError:
            log.warning("learning writes of a search were dropped: the store cannot write", exc_info=True)

    def _fuse(self, scores: dict[str, dict[tuple[RowSource, int], float]], plan: Ranking, namespace: str,
              flt: Filter | None, priors: dict[tuple[RowSource, int], dict[str, float]],
              qvec: np.ndarray | None, matches: LexicalMatches | None, *,
              expand: bool) -> list[tuple[tuple[RowSource, int], float, dict[str, int]]]:
        """Fusion of retrieval signals (``plan.fusion``), graph expansion and prior boosts
        (read lock held); fills ``priors`` with each candidate's prior values."""
        weights = plan.weights
        if plan.fusion == "rrf":
            rankings = {name: list(found) for name, found in scores.items()}
            fused = reciprocal_rank_fusion(rankings, weights)
            prior_scale = 1.0 / (RRF_K + 1)  # a prior value of 1 = a rank-1 contribution
        else:
            fused = _score_fusion(scores, weights, qvec, matches)
            prior_scale = 1.0  # a prior value of 1 = a perfect normalised score
        if plan.graph > 0 and expand:
            found = {key for key, _, _ in fused}
            seeds = [(key, score) for key, score, _ in fused[: plan.graph_seeds]]
            graph = {key: plan.graph * value for key, value in self._graph_expansion(seeds, namespace, flt).items()
                     if key not in found}  # expansion adds context; it never re-ranks what the query found
            if graph:
                scores["graph"] = graph
                ordered = sorted(graph, key=lambda key: -graph[key])
                fused.extend((key, graph[key], {"graph": rank}) for rank, key in enumerate(ordered, start=1))
                fused.sort(key=lambda item: -item[1])  # stable
        if not any(weights[name] > 0 for name in PRIORS):
            return fused
        values = self._prior_values([key for key, _, _ in fused], plan)
        boosted = []
        for (key, score, ranks), prior in zip(fused, values, strict=True):
            priors[key] = prior
            boosted.append((key, score + prior_scale * sum(weights[n] * v for n, v in prior.items()), ranks))
        boosted.sort(key=lambda item: -item[1])  # stable: fused order breaks ties
        return boosted

    def _prior_values(self, keys: list[tuple[RowSource, int]], plan: Ranking) -> list[dict[str, float]]:
        """Prior values in [0, 1] of each candidate (see :class:`~t4dm_core.ranking.Ranking`)."""
        now = time.time()
        out = []
        for src, row in keys:
            f = src.row_fields(row)
            counters = self._current_counters(f["namespace"], f["id"], f)
            age_days = max(0.0, now - f["recorded_at"]) / 86_400.0
            importance = max(0.0, counters["importance"])
            out.append({"recency": 2.0 ** (-age_days / plan.recency_half_life_days),
                        "importance": importance / (1.0 + importance),
                        "kappa": min(1.0, max(0.0, counters["kappa"]))})
        return out

    def _graph_expansion(self, seeds: list[tuple[tuple[RowSource, int], float]], namespace: str,
                         flt: Filter | None) -> dict[tuple[RowSource, int], float]:
        """Neighbours (both directions) of seed hits: max over seeds of seed score × edge weight
        (positive weights only; weights above 1 count as 1, so a neighbour never outscores its seed
        when ``Ranking.graph`` ≤ 1)."""
        out: dict[tuple[RowSource, int], float] = {}
        for (src, row), seed_score in seeds:
            for a, b, _etype, weight in self._graph.edges_of(namespace, src.ids[row], "both"):
                other = b if a == src.ids[row] else a
                ref = self._catalog.current(namespace, other)
                if ref is None or weight <= 0:
                    continue
                if flt is not None and not ref.source.filter_mask(flt)[ref.row]:
                    continue
                key = (ref.source, ref.row)
                out[key] = max(out.get(key, 0.0), seed_score * min(weight, 1.0))
        return out

    def _hit(self, key: tuple[RowSource, int], score: float, ranks: dict[str, int],
             scores: dict[str, dict[tuple[RowSource, int], float]], prior_values: dict[str, float],
             qvec: np.ndarray | None, as_of: AsOf) -> Hit:
        src, row = key
        explain: dict[str, float] = {}
        if qvec is not None:
            cosine = scores["vector"].get(key)
            explain["vector"] = float(src.vectors[row] @ qvec) if cosine is None else cosine
        if "lexical" in scores:
            explain["lexical"] = scores["lexical"].get(key, 0.0)
        if "graph" in scores:
            explain["graph"] = scores["graph"].get(key, 0.0)
        explain.update({f"{name}_rank": float(rank) for name, rank in ranks.items()})
        explain.update(prior_values)
        ns, mid = src.namespace[row], src.ids[row]
        chain = self._catalog.chain(ns, mid)
        ref = chain[-1] if as_of is None else next(r for r in reversed(chain) if r.source is src and r.row == row)
        return Hit(score=score, id=mid, namespace=ns, load=partial(self._load_hit, ref, chain), explain=explain)

    def _vector_candidates(self, qvec: np.ndarray, k: int, code: int, flt: Filter | None, ef: int, namespace: str,
                           as_of: AsOf, valid_t: float | None,
                           tx_t: float | None) -> list[tuple[float, RowSource, int]]:
        if as_of is None:
            sources: list[RowSource] = [self._mem, *self._segments]
            found = [self._search_source(src, qvec, k, code, flt, max(ef, k)) for src in sources]
        else:
            found = [(src, *top_k_exact(src.vectors, qvec, np.flatnonzero(allowed), k))
                     for src, _, allowed in self._candidate_masks(code, flt, namespace, as_of, valid_t, tx_t)]
        candidates = [(float(score), src, int(row)) for src, rows, scores in found
                      for row, score in zip(rows, scores, strict=True)]
        candidates.sort(key=lambda c: -c[0])
        return candidates[:k]

    def _candidate_masks(self, code: int, flt: Filter | None, namespace: str, as_of: AsOf, valid_t: float | None,
                         tx_t: float | None) -> list[tuple[Any, np.ndarray, np.ndarray]]:
        """Per source: (source, rows a query searches, rows it may return) — see :mod:`t4dm_core.ranking`."""
        out = []
        if as_of is None:
            sources: list[Memtable | Segment] = [self._mem, *self._segments]
            for src in sources:
                if src.n == 0:
                    continue
                searchable = src.live & (src.ns_codes == code)
                out.append((src, searchable, searchable & src.filter_mask(flt) if flt is not None else searchable))
            return out
        by_source: dict[int, tuple[Any, list[int]]] = {}
        for ref in self._catalog.visible_at(namespace, tx_t, valid_t, self._valid_range):
            by_source.setdefault(id(ref.source), (ref.source, []))[1].append(ref.row)
        for src, rows in by_source.values():
            searchable = np.zeros(src.n, dtype=bool)
            searchable[rows] = True
            out.append((src, searchable, searchable & src.filter_mask(flt) if flt is not None else searchable))
        return out

    def _load_hit(self, ref: VersionRef, chain: list[VersionRef]) -> Memory:
        """Materialise a hit's memory (refs are relocated in place by flush/compaction).

        Works after :meth:`close` too: the rows live in memory or in mapped segment files."""
        with self._rw.read():
            return self._materialize(ref, chain)

    def _query_vector(self, query: Any) -> np.ndarray:
        if isinstance(query, str):
            return normalize_vector(self._require_embedder().embed_query(query), self.dim)
        return normalize_vector(query, self.dim)

    def _search_source(self, src: RowSource, q: np.ndarray, k: int, code: int, flt: Filter | None,
                       ef: int) -> tuple[RowSource, np.ndarray, np.ndarray]:
        if src.n == 0:
            return src, np.empty(0, np.int64), np.empty(0, np.float32)
        if isinstance(src, Memtable):
            mask = src.live & (src.ns_codes == code)
            if flt is not None:
                mask &= src.filter_mask(flt)
            return (src, *top_k_exact(src.vectors, q, np.flatnonzero(mask), k))
        assert isinstance(src, Segment)
        index = src.index
        if index is None or index.visible == 0:
            return src, np.empty(0, np.int64), np.empty(0, np.float32)
        single_ns = src.single_namespace_code == code
        if flt is None and single_ns:
            return (src, *index.query(q, k, ef))
        mask = src.live & (src.ns_codes == code) if not single_ns else src.live.copy()
        if flt is not None:
            mask &= src.filter_mask(flt)
        rows = np.flatnonzero(mask)
        exact_rows = self.options.exact_search_max_rows * EXACT_SEARCH_REFERENCE_DIM / self.dim
        if rows.size <= exact_rows or rows.size <= self.options.exact_search_max_fraction * index.visible:
            return (src, *top_k_exact(src.vectors, q, rows, k))
        # The search filters while it walks the graph; a wider beam for rarer rows keeps recall.
        beam = min(index.visible, max(ef, int(2 * k * index.visible / rows.size) + k))
        labels, scores = index.query(q, k, beam, allowed=mask)
        if labels.size < min(k, rows.size):
            return (src, *top_k_exact(src.vectors, q, rows, k))
        return src, labels, scores

    def neighbors(self, memory_id: str, *, hops: int = 1, type: str | None = None,
                  namespace: str = DEFAULT_NAMESPACE, direction: str = "out") -> list[Neighbor]:
        """Memories reachable from ``memory_id`` within ``hops`` edges (breadth-first, nearest first).

        ``direction`` is "out" (follow src → dst), "in" or "both"; ``type`` restricts edge types.
        Deleted memories are skipped; traversal never leaves the namespace.
        """
        self._check_open()
        check_namespace(namespace)
        if isinstance(hops, bool) or not isinstance(hops, int) or not 1 <= hops <= MAX_HOPS:
            raise InvalidInputError(f"hops must be an integer in 1..{MAX_HOPS}")
        if direction not in ("out", "in", "both"):
            raise InvalidInputError("direction must be 'out', 'in' or 'both'")
        with self._rw.read():
            if self._catalog.current(namespace, memory_id) is None:
                raise MemoryNotFoundError(f"no memory {memory_id!r} in namespace {namespace!r}")
            reached = self._graph.traverse(namespace, memory_id, hops, type, direction,
                                           lambda mid: self._catalog.current(namespace, mid) is not None)
            out = []
            for mid, depth, (src, dst, etype, weight) in reached:
                ref = self._catalog.current(namespace, mid)
                assert ref is not None
                out.append(Neighbor(self._materialize(ref), depth, Edge(src, dst, etype, weight, namespace)))
            return out

    def edges(self, memory_id: str, *, namespace: str = DEFAULT_NAMESPACE, direction: str = "out") -> list[Edge]:
        """Current edges touching ``memory_id``."""
        self._check_open()
        with self._rw.read():
            return [Edge(s, d, t, w, namespace) for s, d, t, w in self._graph.edges_of(namespace, memory_id, direction)]

    def stats(self) -> dict[str, Any]:
        """Counts and sizes (a snapshot; cheap)."""
        self._check_open()
        with self._rw.read():
            disk = 0
            for name in self._fs.listdir(self.path):
                try:
                    disk += self._fs.size(os.path.join(self.path, name))
                except OSError:
                    continue
            return {
                "path": self.path, "dim": self.dim, "embedder": self._manifest.get("embedder"),
                "memories": self._catalog.live_count,
                "versions": self._catalog.version_count(),
                "namespaces": len(self._catalog.versions), "edges": len(self._graph),
                "memtable_rows": self._mem.n, "segments": len(self._segments),
                "segment_rows": sum(s.n for s in self._segments), "manifest_version": self._manifest["version"],
                "next_lsn": self._next_lsn, "disk_bytes": disk, "sync": self.options.sync,
                "read_only": self.read_only,
            }


def _unique_ids(ids: str | Iterable[str]) -> list[str]:
    """One id or many, validated, duplicates dropped, order kept."""
    return list(dict.fromkeys(check_id(m) for m in ([ids] if isinstance(ids, str) else ids)))


def _contiguous(segments: list[Segment], picked: list[Segment]) -> list[Segment]:
    """``picked`` widened to a contiguous run in log order.

    Merging folds edge operations (a later "add" onto an earlier "set"); folding across a
    segment left out of the merge would jump over its operations (for example a delete)
    and corrupt edge weights, so the merge always covers every segment in between.
    """
    if len(picked) < 2:
        return picked
    ordered = sorted(segments, key=lambda seg: seg.entry["min_lsn"])
    chosen = {id(seg) for seg in picked}
    positions = [i for i, seg in enumerate(ordered) if id(seg) in chosen]
    return ordered[positions[0]: positions[-1] + 1]


def _progress_bar(description: str) -> Callable[[str, int, int], None]:
    """A ``progress(phase, done, total)`` callback drawing a tqdm bar (closed when done == total)."""
    from tqdm import tqdm

    bar: list[Any] = []

    def update(phase: str, done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=description, unit="ns"))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return update


def _resolve_ranking(mode: str | None, ranking: Ranking | None, query: object) -> Ranking:
    is_text = isinstance(query, str)
    if ranking is not None:
        if mode is not None:
            raise InvalidInputError("pass mode= or ranking=, not both")
        if not isinstance(ranking, Ranking):
            raise InvalidInputError(f"ranking must be a t4dm_core.Ranking, got {type(ranking).__name__}")
        plan = ranking
    else:
        if mode is None:
            mode = "hybrid" if is_text else "vector"
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
        plan = SEARCH_MODES[mode]
    if plan.lexical > 0 and not is_text:
        raise InvalidInputError("lexical ranking needs a text query, not a vector (use mode='vector')")
    return plan


def _score_fusion(scores: dict[str, dict[tuple[RowSource, int], float]], weights: Mapping[str, float],
                  qvec: np.ndarray | None,
                  matches: LexicalMatches | None) -> list[tuple[tuple[RowSource, int], float, dict[str, int]]]:
    """``vector · cosine + lexical · BM25 / reference`` for every candidate either signal found.

    Each candidate gets both scores exactly — the cosine from its stored vector, the BM25
    from the query's matches — so a memory one signal ranked just below its cut-off is not
    scored 0 by it (the failure of rank fusion on paraphrased questions, which BM25 cannot
    match at all). Fills the missing entries of ``scores`` (they show in ``Hit.explain``).
    Returns [(key, fused score, {signal: rank})], best first, ties in first-seen order.
    """
    ranks: dict[tuple[RowSource, int], dict[str, int]] = {}
    for name, found in scores.items():
        for rank, key in enumerate(found, start=1):
            ranks.setdefault(key, {})[name] = rank
    fused: dict[tuple[RowSource, int], float] = {}
    for key in ranks:
        src, row = key
        total = 0.0
        if qvec is not None and "vector" in scores:
            cosine = scores["vector"].get(key)
            if cosine is None:
                cosine = scores["vector"][key] = float(src.vectors[row] @ qvec)
            total += weights["vector"] * cosine
        if matches is not None and "lexical" in scores and matches.reference > 0:
            bm25 = scores["lexical"].get(key)
            if bm25 is None:
                bm25 = scores["lexical"][key] = matches.score_of(src, row)
            total += weights["lexical"] * bm25 / matches.reference
        fused[key] = total
    order = sorted(fused, key=lambda key: -fused[key])
    return [(key, fused[key], ranks[key]) for key in order]


def _parse_as_of(as_of: AsOf) -> tuple[float | None, float | None]:
    """``None`` → now; a time T → (valid T, transaction T); ``(valid, tx)`` with either None."""
    if as_of is None:
        return None, None
    if isinstance(as_of, tuple):
        if len(as_of) != 2:
            raise InvalidInputError("as_of must be a time or a (valid_time, transaction_time) pair")
        return to_timestamp(as_of[0], "as_of valid time"), to_timestamp(as_of[1], "as_of transaction time")
    t = to_timestamp(as_of, "as_of")
    return t, t
