"""Input checks shared by every write and read path. Pure functions; thread-safe."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import numpy as np

from t4dm_core.errors import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidNamespaceError,
    InvalidVectorError,
    MetadataError,
)

MAX_NAMESPACE_LEN = 128
MAX_ID_LEN = 512
MAX_TEXT_BYTES = 16 * 1024 * 1024
MAX_METADATA_DEPTH = 32
_KNOWN_GOOD_LIMIT = 10_000
_known_good_namespaces: set[str] = set()  # validated names (hot paths check the same few names)


def check_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is a valid tenant name, else raise InvalidNamespaceError."""
    if isinstance(namespace, str) and namespace in _known_good_namespaces:
        return namespace
    if not isinstance(namespace, str) or not namespace:
        raise InvalidNamespaceError(f"namespace must be a non-empty string, got {namespace!r}")
    if len(namespace) > MAX_NAMESPACE_LEN:
        raise InvalidNamespaceError(f"namespace longer than {MAX_NAMESPACE_LEN} characters")
    if any(ord(c) < 32 for c in namespace):
        raise InvalidNamespaceError(f"namespace {namespace!r} contains control characters")
    if len(_known_good_namespaces) < _KNOWN_GOOD_LIMIT:
        _known_good_namespaces.add(namespace)
    return namespace


def check_id(memory_id: object) -> str:
    """Return ``memory_id`` if it is a valid id (non-empty str, bounded length)."""
    if not isinstance(memory_id, str) or not memory_id:
        raise InvalidInputError(f"memory id must be a non-empty string, got {memory_id!r}")
    if len(memory_id) > MAX_ID_LEN:
        raise InvalidInputError(f"memory id longer than {MAX_ID_LEN} characters")
    return memory_id


def check_text(text: object) -> str | None:
    """Return ``text`` (str or None) if storable."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_BYTES:
        raise InvalidInputError(f"text longer than {MAX_TEXT_BYTES} characters")
    return text


def normalize_vector(vector: object, dim: int) -> np.ndarray:
    """Return ``vector`` as a unit-length float32 array of length ``dim``.

    Raises:
        DimensionMismatchError: wrong length.
        InvalidVectorError: not numeric, not 1-D, NaN/inf, or all zeros.
    """
    if isinstance(vector, np.ndarray) and vector.dtype == np.float32 and vector.shape == (dim,):
        norm32 = float(np.sqrt(np.dot(vector, vector)))
        if norm32 > 0.0 and np.isfinite(norm32):  # finite norm => every component is finite
            return vector / np.float32(norm32)
    try:
        arr = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorError(f"vector is not numeric: {exc}") from None
    if arr.ndim != 1:
        raise InvalidVectorError(f"vector must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != dim:
        raise DimensionMismatchError(f"vector has dimension {arr.shape[0]}, store expects {dim}")
    if not np.all(np.isfinite(arr)):
        raise InvalidVectorError("vector contains NaN or infinity")
    norm = float(np.linalg.norm(arr))
    if norm == 0.0 or not math.isfinite(norm):
        raise InvalidVectorError("vector has zero (or non-finite) length; cosine similarity is undefined")
    return (arr / norm).astype(np.float32)


def normalize_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Vectorised :func:`normalize_vector` for an (n, dim) array; same errors."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise InvalidVectorError(f"vectors must be a 2-D array, got shape {arr.shape}")
    if arr.shape[1] != dim:
        raise DimensionMismatchError(f"vectors have dimension {arr.shape[1]}, store expects {dim}")
    if not np.all(np.isfinite(arr)):
        raise InvalidVectorError("vector contains NaN or infinity")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidVectorError("vector has zero length; cosine similarity is undefined")
    return (arr / norms).astype(np.float32)


def check_metadata(metadata: object) -> dict[str, Any]:
    """Return ``metadata`` if it is a JSON object of JSON-native values, else MetadataError.

    Tuples, sets, bytes, datetimes, NaN and infinity are refused because they would not
    round-trip exactly.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise MetadataError(f"metadata must be a dict, got {type(metadata).__name__}")
    _check_json_value(metadata, "metadata", 0)
    return metadata


def _check_json_value(value: object, path: str, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise MetadataError(f"{path}: nested deeper than {MAX_METADATA_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MetadataError(f"{path}: NaN and infinity are not valid JSON")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_value(item, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MetadataError(f"{path}: key {key!r} is not a string")
            _check_json_value(item, f"{path}.{key}", depth + 1)
        return
    raise MetadataError(
        f"{path}: {type(value).__name__} is not a JSON value (use str, int, float, bool, None, list, dict)")


def to_timestamp(value: object, what: str) -> float | None:
    """Convert a datetime or number of POSIX seconds to float seconds (None passes through)."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{what} must be a datetime or POSIX seconds, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInputError(f"{what} must be finite")
    return float(value)
