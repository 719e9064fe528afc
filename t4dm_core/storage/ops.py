"""Operations carried by one WAL record, and their binary encoding.

A payload starts with one kind byte:

* ``J``: ``u32 json_length | JSON | float32 vectors`` - a general batch. The JSON holds the
  batch's transaction time and one object per operation; put operations refer to their
  vector by position in the trailing float32 block.
* ``F``: one field delta (learning write), ``f64 ts | f64 delta | str ns | str id | str field``.
* ``E``: one edge op, ``f64 ts | f64 weight | u8 kind | str ns | str src | str dst | str type``.

Strings are ``u16 length | UTF-8``. The compact forms keep learning writes cheap. Nothing
is pickled; decoding raises ``ValueError`` on malformed input (the WAL checksum already
guards against bit rot).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DeleteOp", "EdgeOp", "FieldDeltaOp", "Op", "PutOp", "decode_batch", "encode_batch"]

COUNTER_FIELDS = ("kappa", "importance", "access_count")


@dataclass(frozen=True)
class PutOp:
    """Write a new version of a memory (values fully resolved by the engine)."""

    namespace: str
    id: str
    text: str | None
    metadata: dict[str, Any]
    valid_from: float
    valid_to: float | None
    kappa: float
    importance: float
    access_count: int
    pinned: bool
    vector: np.ndarray


@dataclass(frozen=True)
class DeleteOp:
    """Write a tombstone version: the memory stops being current."""

    namespace: str
    id: str


@dataclass(frozen=True)
class EdgeOp:
    """Edge change. kind: "set" (link with weight), "add" (strengthen by weight), "del" (unlink)."""

    kind: str
    namespace: str
    src: str
    dst: str
    type: str
    weight: float


@dataclass(frozen=True)
class FieldDeltaOp:
    """Add ``delta`` to a counter field (kappa, importance, access_count) of the current version."""

    namespace: str
    id: str
    field: str
    delta: float


Op = PutOp | DeleteOp | EdgeOp | FieldDeltaOp


_EDGE_KINDS = ("set", "add", "del")
_TS_VALUE = struct.Struct("<dd")


def _pack_str(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("string too long for a compact op")
    return struct.pack("<H", len(raw)) + raw


def _unpack_strs(payload: bytes, offset: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", payload, offset)
        offset += 2
        if offset + length > len(payload):
            raise ValueError("string runs past the payload")
        out.append(payload[offset : offset + length].decode())
        offset += length
    if offset != len(payload):
        raise ValueError("trailing bytes after compact op")
    return out


def encode_batch(recorded_at: float, ops: list[Op], dim: int) -> bytes:
    if len(ops) == 1 and isinstance(ops[0], FieldDeltaOp):
        d = ops[0]
        return b"F" + _TS_VALUE.pack(recorded_at, d.delta) + _pack_str(d.namespace) + _pack_str(d.id) + \
            _pack_str(d.field)
    if len(ops) == 1 and isinstance(ops[0], EdgeOp):
        e = ops[0]
        return b"E" + _TS_VALUE.pack(recorded_at, e.weight) + bytes([_EDGE_KINDS.index(e.kind)]) + \
            _pack_str(e.namespace) + _pack_str(e.src) + _pack_str(e.dst) + _pack_str(e.type)
    items: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    for op in ops:
        if isinstance(op, PutOp):
            items.append({"o": "p", "n": op.namespace, "i": op.id, "t": op.text, "m": op.metadata,
                          "vf": op.valid_from, "vt": op.valid_to, "k": op.kappa, "im": op.importance,
                          "ac": op.access_count, "pn": op.pinned, "v": len(vectors)})
            vectors.append(op.vector)
        elif isinstance(op, DeleteOp):
            items.append({"o": "d", "n": op.namespace, "i": op.id})
        elif isinstance(op, EdgeOp):
            items.append({"o": "e", "k": op.kind, "n": op.namespace, "s": op.src, "d": op.dst,
                          "ty": op.type, "w": op.weight})
        else:
            items.append({"o": "f", "n": op.namespace, "i": op.id, "f": op.field, "x": op.delta})
    header = json.dumps({"ts": recorded_at, "ops": items}, separators=(",", ":"), allow_nan=False).encode()
    blob = np.ascontiguousarray(np.stack(vectors), dtype="<f4").tobytes() if vectors else b""
    if vectors and len(blob) != len(vectors) * dim * 4:
        raise ValueError("vector dimension mismatch while encoding batch")
    return b"J" + struct.pack("<I", len(header)) + header + blob


def decode_batch(payload: bytes, dim: int) -> tuple[float, list[Op]]:
    kind = payload[:1]
    if kind == b"F":
        ts, delta = _TS_VALUE.unpack_from(payload, 1)
        ns, mid, field = _unpack_strs(payload, 1 + _TS_VALUE.size, 3)
        return ts, [FieldDeltaOp(ns, mid, field, delta)]
    if kind == b"E":
        ts, weight = _TS_VALUE.unpack_from(payload, 1)
        edge_kind = _EDGE_KINDS[payload[1 + _TS_VALUE.size]]
        ns, src, dst, etype = _unpack_strs(payload, 2 + _TS_VALUE.size, 4)
        return ts, [EdgeOp(edge_kind, ns, src, dst, etype, weight)]
    if kind != b"J" or len(payload) < 5:
        raise ValueError("unknown or truncated batch payload")
    (length,) = struct.unpack_from("<I", payload, 1)
    if 5 + length > len(payload):
        raise ValueError("batch header length exceeds payload")
    doc = json.loads(payload[5 : 5 + length])
    blob = payload[5 + length :]
    if len(blob) % (4 * dim):
        raise ValueError("vector block is not a whole number of vectors")
    matrix = np.frombuffer(blob, dtype="<f4").reshape(-1, dim)
    ops: list[Op] = []
    for item in doc["ops"]:
        kind = item["o"]
        if kind == "p":
            ops.append(PutOp(item["n"], item["i"], item["t"], item["m"], float(item["vf"]),
                             None if item["vt"] is None else float(item["vt"]), float(item["k"]),
                             float(item["im"]), int(item["ac"]), bool(item["pn"]),
                             matrix[int(item["v"])].astype(np.float32)))
        elif kind == "d":
            ops.append(DeleteOp(item["n"], item["i"]))
        elif kind == "e":
            ops.append(EdgeOp(item["k"], item["n"], item["s"], item["d"], item["ty"], float(item["w"])))
        elif kind == "f":
            ops.append(FieldDeltaOp(item["n"], item["i"], item["f"], float(item["x"])))
        else:
            raise ValueError(f"unknown operation kind {kind!r}")
    return float(doc["ts"]), ops
