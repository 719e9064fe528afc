"""Manifests: the atomic commit point of every structural change (flush, compaction).

``MANIFEST-NNNNNN.json`` = ``{"body": {...}, "xxh3_128": hash of the canonical body}``.
Commit protocol: write ``.tmp`` → fsync → rename → fsync directory. The newest manifest that
verifies wins; a damaged newer one is skipped with a warning (the previous one, whose files
are retained, is a consistent state). The body records the format version; a newer format
than this release understands raises FormatVersionError rather than guessing.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import xxhash

from t4dm_core.errors import CorruptionError, FormatVersionError
from t4dm_core.storage.fs import FileSystem

__all__ = [
    "FORMAT_VERSION", "ManifestChoice", "list_manifests", "load_newest_manifest", "manifest_name", "write_manifest",
]

FORMAT_VERSION = 1
log = logging.getLogger("t4dm")


def manifest_name(version: int) -> str:
    return f"MANIFEST-{version:06d}.json"


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def write_manifest(fs: FileSystem, directory: str, version: int, body: dict[str, Any]) -> str:
    """Durably and atomically write manifest ``version``. Returns its path."""
    body = {**body, "format": FORMAT_VERSION, "version": version}
    canonical = _canonical(body)
    doc = b'{"body":' + canonical + b',"xxh3_128":"' + xxhash.xxh3_128_hexdigest(canonical).encode() + b'"}'
    path = os.path.join(directory, manifest_name(version))
    tmp = path + ".tmp"
    handle = fs.create(tmp)
    try:
        handle.write(doc)
        handle.sync()
    finally:
        handle.close()
    fs.rename(tmp, path)
    fs.sync_dir(directory)
    return path


def list_manifests(fs: FileSystem, directory: str) -> list[int]:
    """Manifest versions present, newest first."""
    versions = []
    for name in fs.listdir(directory):
        if name.startswith("MANIFEST-") and name.endswith(".json") and name[9:-5].isdigit():
            versions.append(int(name[9:-5]))
    return sorted(versions, reverse=True)


def read_manifest(fs: FileSystem, directory: str, version: int) -> dict[str, Any]:
    """Read and verify one manifest; CorruptionError if it does not verify."""
    path = os.path.join(directory, manifest_name(version))
    raw = fs.read_bytes(path)
    try:
        doc = json.loads(raw)
        body = doc["body"]
        expected = doc["xxh3_128"]
    except (ValueError, KeyError, TypeError):
        raise CorruptionError(path, "manifest is not valid JSON (truncated or damaged)") from None
    if not isinstance(body, dict) or xxhash.xxh3_128_hexdigest(_canonical(body)) != expected:
        raise CorruptionError(path, "manifest checksum mismatch")
    if body.get("format", 0) > FORMAT_VERSION:
        raise FormatVersionError(
            f"{path}: store format {body.get('format')} is newer than this release supports "
            f"({FORMAT_VERSION}); upgrade t4dm")
    if body.get("version") != version:
        raise CorruptionError(path, "manifest version does not match its file name")
    return body


class ManifestChoice:
    """The manifest chosen at open, plus the retained older ones (newest first)."""

    def __init__(self, bodies: list[dict[str, Any]], skipped: list[str]) -> None:
        self.bodies = bodies
        self.skipped = skipped

    @property
    def current(self) -> dict[str, Any] | None:
        return self.bodies[0] if self.bodies else None


def load_newest_manifest(fs: FileSystem, directory: str, retain: int) -> ManifestChoice:
    """Pick the newest verifying manifest; fall back past damaged ones (logged)."""
    versions = list_manifests(fs, directory)
    bodies: list[dict[str, Any]] = []
    skipped: list[str] = []
    first_error: CorruptionError | None = None
    for version in versions:
        try:
            body = read_manifest(fs, directory, version)
        except FileNotFoundError:
            continue  # removed by the writer's GC after we listed it: a newer one exists
        except CorruptionError as exc:
            if bodies:
                continue  # an older damaged manifest is simply not retained
            first_error = first_error or exc
            skipped.append(exc.path)
            log.warning("t4dm: skipping damaged manifest %s; falling back to an older one", exc.path)
            continue
        bodies.append(body)
        if len(bodies) >= retain:
            break
    if not bodies and first_error is not None:
        raise first_error
    return ManifestChoice(bodies, skipped)
