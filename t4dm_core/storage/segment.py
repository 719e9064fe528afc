"""Immutable segments: write (flush/compaction output) and open (verified, memory-mapped).

A segment ``seg-NNNNNN`` is up to five files, each listed in the manifest with its size
and xxh3-128 hash:

* ``.records.arrow`` - Arrow IPC file, one row per memory version (tombstones included),
  sorted by LSN: namespace, id, lsn, recorded_at, deleted, text, metadata (JSON text),
  valid_from, valid_to, kappa, importance, access_count, pinned, vector
  (fixed_size_list<float32>), plus typed ``m:<key>`` columns for up to
  :data:`MAX_PROMOTED_KEYS` top-level metadata keys of a single JSON kind (vectorised
  filtering).
* ``.hnsw`` - hnswlib index (label = row number) over the rows current when the segment
  was written (tombstones and durably superseded versions are left out; ``as_of`` scores
  those exactly).
* ``.lexicon.arrow`` - BM25 postings of the rows' text (see :mod:`t4dm_core.index.lexical`);
  built from the text column on first use when absent (segments from before it existed).
* ``.edges.arrow`` - edge operations sorted by (namespace, src, lsn), i.e. CSR order; on
  open they are folded, with the memtable's, into the in-memory adjacency used for traversal.
* ``.overlays.arrow`` - field deltas (learning writes) not yet folded.

Opening verifies every file's size and hash before any byte reaches pyarrow or hnswlib,
and maps the records file read-only (zero-copy vectors). A segment is immutable, so it is
safe to read from many threads; only its in-memory liveness flags change (engine lock).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from t4dm_core.errors import CorruptionError
from t4dm_core.filters import Filter, PromotedColumns
from t4dm_core.index.hnsw import HnswIndex
from t4dm_core.index.lexical import SegmentLexicon
from t4dm_core.storage.fs import FileSystem
from t4dm_core.storage.ops import EdgeOp, FieldDeltaOp

__all__ = ["MAX_PROMOTED_KEYS", "Segment", "SegmentData", "file_hash", "write_segment"]

MAX_PROMOTED_KEYS = 64
_EXACT_FLOAT_INT = 2**53
_FILTER_CACHE = 32


def file_hash(data: bytes | memoryview | Any) -> str:
    return xxhash.xxh3_128_hexdigest(data)


@dataclass
class SegmentData:
    """Column data of a segment to be written (rows sorted by LSN)."""

    namespace: list[str]
    ids: list[str]
    lsn: list[int]
    recorded_at: list[float]
    deleted: list[bool]
    text: list[str | None]
    metadata: list[dict[str, Any]]
    valid_from: list[float]
    valid_to: list[float | None]
    kappa: list[float]
    importance: list[float]
    access_count: list[int]
    pinned: list[bool]
    vectors: np.ndarray
    edge_ops: list[tuple[int, EdgeOp]]
    field_deltas: list[tuple[int, float, FieldDeltaOp]]
    superseded: np.ndarray | None = None  # rows durably replaced by a newer version: left out of the HNSW index


def _scalar_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "num" if abs(value) <= _EXACT_FLOAT_INT else None
    if isinstance(value, float):
        return "num"
    if isinstance(value, str):
        return "str"
    return None


def _promote(metadata: Sequence[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    kinds: dict[str, str | None] = {}
    counts: Counter[str] = Counter()
    for meta in metadata:
        for key, value in meta.items():
            counts[key] += 1
            kind = _scalar_kind(value)
            previous = kinds.get(key, kind) if key in kinds else kind
            kinds[key] = kind if previous == kind else None
    eligible = [k for k, _ in counts.most_common() if kinds.get(k) is not None][:MAX_PROMOTED_KEYS]
    return {k: kinds[k] for k in eligible if kinds[k] is not None}, sorted(counts)  # type: ignore[misc]


_ARROW_KIND = {"num": pa.float64(), "str": pa.string(), "bool": pa.bool_()}


def _records_table(data: SegmentData, dim: int) -> pa.Table:
    promoted, all_keys = _promote(data.metadata)
    n = len(data.ids)
    columns: dict[str, pa.Array] = {
        "namespace": pa.array(data.namespace, pa.string()),
        "id": pa.array(data.ids, pa.string()),
        "lsn": pa.array(data.lsn, pa.int64()),
        "recorded_at": pa.array(data.recorded_at, pa.float64()),
        "deleted": pa.array(data.deleted, pa.bool_()),
        "text": pa.array(data.text, pa.large_string()),
        "metadata": pa.array([json.dumps(m, separators=(",", ":")) for m in data.metadata], pa.large_string()),
        "valid_from": pa.array(data.valid_from, pa.float64()),
        "valid_to": pa.array(data.valid_to, pa.float64()),
        "kappa": pa.array(data.kappa, pa.float32()),
        "importance": pa.array(data.importance, pa.float32()),
        "access_count": pa.array(data.access_count, pa.int64()),
        "pinned": pa.array(data.pinned, pa.bool_()),
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(data.vectors[:n], dtype=np.float32).reshape(-1), pa.float32()), dim),
    }
    for key, kind in promoted.items():
        values = [m.get(key) for m in data.metadata]
        if kind == "num":
            values = [None if v is None else float(v) for v in values]
        columns[f"m:{key}"] = pa.array(values, _ARROW_KIND[kind])
    schema_meta = {"t4dm.promoted": json.dumps(promoted), "t4dm.keys": json.dumps(all_keys)}
    table = pa.table(columns)
    return table.replace_schema_metadata(schema_meta)


def _edges_table(edge_ops: list[tuple[int, EdgeOp]]) -> pa.Table:
    ordered = sorted(edge_ops, key=lambda item: (item[1].namespace, item[1].src, item[0]))
    return pa.table({
        "lsn": pa.array([lsn for lsn, _ in ordered], pa.int64()),
        "kind": pa.array([op.kind for _, op in ordered], pa.string()),
        "namespace": pa.array([op.namespace for _, op in ordered], pa.string()),
        "src": pa.array([op.src for _, op in ordered], pa.string()),
        "dst": pa.array([op.dst for _, op in ordered], pa.string()),
        "type": pa.array([op.type for _, op in ordered], pa.string()),
        "weight": pa.array([op.weight for _, op in ordered], pa.float64()),
    })


def _overlays_table(deltas: list[tuple[int, float, FieldDeltaOp]]) -> pa.Table:
    return pa.table({
        "lsn": pa.array([lsn for lsn, _, _ in deltas], pa.int64()),
        "recorded_at": pa.array([ts for _, ts, _ in deltas], pa.float64()),
        "namespace": pa.array([op.namespace for _, _, op in deltas], pa.string()),
        "id": pa.array([op.id for _, _, op in deltas], pa.string()),
        "field": pa.array([op.field for _, _, op in deltas], pa.string()),
        "delta": pa.array([op.delta for _, _, op in deltas], pa.float64()),
    })


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))
    return sink.getvalue()


def _write_file(fs: FileSystem, path: str, data: bytes | pa.Buffer) -> dict[str, Any]:
    handle = fs.create(path)
    try:
        handle.write(memoryview(data))
        handle.sync()
    finally:
        handle.close()
    return {"name": os.path.basename(path), "size": len(memoryview(data)), "xxh3_128": file_hash(data)}


def write_segment(fs: FileSystem, directory: str, seg_id: int, data: SegmentData, dim: int, *,
                  hnsw_m: int, hnsw_ef_construction: int, num_threads: int) -> tuple[dict[str, Any], HnswIndex | None]:
    """Write a segment's files (each fsynced; the caller syncs the directory and commits the manifest).

    Returns the manifest entry and the freshly built HNSW index (to serve without reloading).
    """
    base = os.path.join(directory, f"seg-{seg_id:06d}")
    files: dict[str, Any] = {}
    files["records"] = _write_file(fs, base + ".records.arrow", _ipc_bytes(_records_table(data, dim)))
    searchable = ~np.asarray(data.deleted, dtype=bool)
    if data.superseded is not None:
        searchable &= ~data.superseded  # only `as_of` reaches them, and it scores exactly
    rows = np.flatnonzero(searchable)
    index = None
    if rows.size:
        index = HnswIndex.build(data.vectors[rows], rows, m=hnsw_m, ef_construction=hnsw_ef_construction,
                                num_threads=num_threads, seed=seg_id)
        scratch = base + ".hnsw.build"
        index.save(scratch)  # hnswlib writes only to a path; bytes then go through the file layer
        try:
            with open(scratch, "rb") as fh:
                files["hnsw"] = _write_file(fs, base + ".hnsw", fh.read())
        finally:
            os.remove(scratch)
    files["lexicon"] = _write_file(fs, base + ".lexicon.arrow",
                                   _ipc_bytes(SegmentLexicon.build(data.text).to_table()))
    if data.edge_ops:
        files["edges"] = _write_file(fs, base + ".edges.arrow", _ipc_bytes(_edges_table(data.edge_ops)))
    if data.field_deltas:
        files["overlays"] = _write_file(fs, base + ".overlays.arrow", _ipc_bytes(_overlays_table(data.field_deltas)))
    min_lsn, max_lsn = _lsn_range(data)
    entry = {"id": seg_id, "rows": len(data.ids), "vectors": int(rows.size),
             "min_lsn": min_lsn, "max_lsn": max_lsn, "files": files}
    return entry, index


def _lsn_range(data: SegmentData) -> tuple[int, int]:
    lsns = data.lsn + [lsn for lsn, _ in data.edge_ops] + [lsn for lsn, _, _ in data.field_deltas]
    return (min(lsns), max(lsns)) if lsns else (-1, -1)


class Segment:
    """An open, verified, immutable segment."""

    def __init__(self, entry: dict[str, Any], table: pa.Table, index: HnswIndex | None,
                 edges: pa.Table | None, overlays: pa.Table | None, ns_lookup: dict[str, int],
                 lexicon: SegmentLexicon | None = None) -> None:
        self.entry = entry
        self._lexicon = lexicon
        self.id: int = entry["id"]
        self.table = table
        self.index = index
        self.edges = edges
        self.overlays = overlays
        self.n = table.num_rows
        dim = table.schema.field("vector").type.list_size
        chunk = table.column("vector").combine_chunks()
        self.vectors: np.ndarray = chunk.values.to_numpy(zero_copy_only=True).reshape(-1, dim)
        self.namespace: list[str] = table.column("namespace").to_pylist()
        self.ids: list[str] = table.column("id").to_pylist()
        self.lsn: np.ndarray = table.column("lsn").to_numpy()
        self.recorded_at: np.ndarray = table.column("recorded_at").to_numpy()
        self.deleted: np.ndarray = table.column("deleted").to_numpy(zero_copy_only=False)
        self.ns_codes = np.fromiter((ns_lookup.setdefault(ns, len(ns_lookup)) for ns in self.namespace),
                                    dtype=np.int32, count=self.n)
        self.live = ~self.deleted.copy()
        self._numeric = {name: table.column(name).to_numpy()
                         for name in ("valid_from", "valid_to", "kappa", "importance", "access_count", "pinned")}
        self._text = table.column("text").combine_chunks()
        self._metadata_json = table.column("metadata").combine_chunks()
        same = self.n > 0 and bool(np.all(self.ns_codes == self.ns_codes[0]))
        self.single_namespace_code = int(self.ns_codes[0]) if same else -1
        meta = table.schema.metadata or {}
        self._promoted: dict[str, str] = json.loads(meta.get(b"t4dm.promoted", b"{}"))
        self._all_keys = frozenset(json.loads(meta.get(b"t4dm.keys", b"[]")))
        self._parsed_metadata: list[dict[str, Any]] | None = None
        self._filter_cache: dict[str, np.ndarray] = {}
        self.files = [f["name"] for f in entry["files"].values()]

    @classmethod
    def open(cls, fs: FileSystem, directory: str, entry: dict[str, Any], dim: int,
             ns_lookup: dict[str, int], index: HnswIndex | None = None) -> Segment:
        """Verify and open. Raises CorruptionError naming the first damaged file."""
        files = entry["files"]
        table = _read_verified_table(fs, directory, files["records"])
        if table.num_rows != entry["rows"] or table.schema.field("vector").type.list_size != dim:
            raise CorruptionError(os.path.join(directory, files["records"]["name"]),
                                  "row count or dimension differs from manifest")
        if index is None and "hnsw" in files:
            path = _verify(fs, directory, files["hnsw"])
            try:
                index = HnswIndex.load(path, dim, entry["vectors"])
            except (RuntimeError, ValueError) as exc:
                raise CorruptionError(path, f"hnswlib could not load the index: {exc}") from None
        edges = _read_verified_table(fs, directory, files["edges"]) if "edges" in files else None
        overlays = _read_verified_table(fs, directory, files["overlays"]) if "overlays" in files else None
        lexicon = None
        if "lexicon" in files:
            lexicon_table = _read_verified_table(fs, directory, files["lexicon"])
            try:
                lexicon = SegmentLexicon.from_table(lexicon_table, table.num_rows)
            except (ValueError, KeyError, pa.ArrowException) as exc:
                raise CorruptionError(os.path.join(directory, files["lexicon"]["name"]), str(exc)) from None
        return cls(entry, table, index, edges, overlays, ns_lookup, lexicon)

    @property
    def lexicon(self) -> SegmentLexicon:
        """BM25 postings of this segment's texts. Segments written before the lexicon file
        existed build it from their text column on first use (idempotent, so a race between
        two readers only wastes work)."""
        if self._lexicon is None:
            self._lexicon = SegmentLexicon.build(self._text.to_pylist())
        return self._lexicon

    # -- liveness ----------------------------------------------------------
    def set_live(self, row: int, value: bool) -> None:
        if self.live[row] and not value:
            self.live[row] = False
            if self.index is not None:
                self.index.hide(row)

    # -- row access ----------------------------------------------------------
    def row_text(self, row: int) -> str | None:
        return self._text[row].as_py()

    def row_metadata(self, row: int) -> dict[str, Any]:
        if self._parsed_metadata is not None:
            return json.loads(json.dumps(self._parsed_metadata[row]))  # callers get a private copy
        return json.loads(self._metadata_json[row].as_py())

    def row_fields(self, row: int) -> dict[str, Any]:
        num = self._numeric
        valid_to = float(num["valid_to"][row])
        return {
            "namespace": self.namespace[row], "id": self.ids[row], "lsn": int(self.lsn[row]),
            "recorded_at": float(self.recorded_at[row]), "deleted": bool(self.deleted[row]),
            "valid_from": float(num["valid_from"][row]), "valid_to": None if np.isnan(valid_to) else valid_to,
            "kappa": float(num["kappa"][row]), "importance": float(num["importance"][row]),
            "access_count": int(num["access_count"][row]), "pinned": bool(num["pinned"][row]),
        }

    def row_vector(self, row: int) -> np.ndarray:
        return np.array(self.vectors[row], dtype=np.float32)

    def all_metadata(self) -> list[dict[str, Any]]:
        if self._parsed_metadata is None:
            self._parsed_metadata = [json.loads(s) for s in self.table.column("metadata").to_pylist()]
        return self._parsed_metadata

    def filter_mask(self, flt: Filter) -> np.ndarray:
        """Rows whose metadata matches ``flt`` (cached per canonical filter; segment is immutable)."""
        cached = self._filter_cache.get(flt.canonical)
        if cached is not None:
            return cached
        columns = PromotedColumns(self.n, self._promoted, self._all_keys,
                                  lambda key: self.table.column(f"m:{key}").combine_chunks())
        mask = flt.mask(columns, self.all_metadata)
        if len(self._filter_cache) >= _FILTER_CACHE:
            self._filter_cache.pop(next(iter(self._filter_cache)))
        self._filter_cache[flt.canonical] = mask
        return mask

    def edge_rows(self) -> list[tuple[int, EdgeOp]]:
        if self.edges is None:
            return []
        cols = [self.edges.column(c).to_pylist() for c in ("lsn", "kind", "namespace", "src", "dst", "type", "weight")]
        return [(lsn, EdgeOp(kind, ns, src, dst, ty, w)) for lsn, kind, ns, src, dst, ty, w in zip(*cols, strict=True)]

    def field_delta_rows(self) -> list[tuple[int, float, FieldDeltaOp]]:
        if self.overlays is None:
            return []
        names = ("lsn", "recorded_at", "namespace", "id", "field", "delta")
        cols = [self.overlays.column(c).to_pylist() for c in names]
        return [(lsn, ts, FieldDeltaOp(ns, i, f, d)) for lsn, ts, ns, i, f, d in zip(*cols, strict=True)]


def _verify(fs: FileSystem, directory: str, info: dict[str, Any]) -> str:
    path = os.path.join(directory, info["name"])
    try:
        mapped = fs.map_readonly(path)
    except FileNotFoundError:
        raise CorruptionError(path, "file listed in the manifest is missing") from None
    except OSError as exc:
        raise CorruptionError(path, f"cannot read: {exc}") from None
    if len(mapped) != info["size"]:
        raise CorruptionError(path, f"size {len(mapped)} differs from manifest ({info['size']}): truncated or extended")
    if file_hash(mapped) != info["xxh3_128"]:
        raise CorruptionError(path, "checksum mismatch")
    return path


def _read_verified_table(fs: FileSystem, directory: str, info: dict[str, Any]) -> pa.Table:
    path = os.path.join(directory, info["name"])
    try:
        mapped = fs.map_readonly(path)
    except FileNotFoundError:
        raise CorruptionError(path, "file listed in the manifest is missing") from None
    if len(mapped) != info["size"] or file_hash(mapped) != info["xxh3_128"]:
        raise CorruptionError(path, "size or checksum differs from the manifest")
    try:
        return pa.ipc.open_file(pa.py_buffer(mapped)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException, ValueError) as exc:
        raise CorruptionError(path, f"Arrow could not decode the file: {exc}") from None
