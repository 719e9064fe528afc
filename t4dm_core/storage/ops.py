"""Operations carried by one WAL record, and their binary encoding.

Payload = ``u32 json_length | JSON | float32 vectors``. The JSON holds the batch's
transaction time and one object per operation; put operations refer to their vector by
position in the trailing float32 block. Nothing is pickled; decoding validates shapes and
raises ``ValueError`` on malformed input (the WAL checksum already guards against bit rot).
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


def encode_batch(recorded_at: float, ops: list[Op], dim: int) -> bytes:
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
    return struct.pack("<I", len(header)) + header + blob


def decode_batch(payload: bytes, dim: int) -> tuple[float, list[Op]]:
    if len(payload) < 4:
        raise ValueError("batch payload too short")
    (length,) = struct.unpack_from("<I", payload, 0)
    if 4 + length > len(payload):
        raise ValueError("batch header length exceeds payload")
    doc = json.loads(payload[4 : 4 + length])
    blob = payload[4 + length :]
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
