"""The importer's durable checkpoint: which phase it is in, where, and what it has written so far.

One JSON file, replaced atomically after every committed batch: written to a sibling
``.partial`` file, fsynced, renamed over the old one, and the directory fsynced. A crash at
any moment leaves either the previous or the new checkpoint, never a torn one. The store
batch is committed (and fsynced: the importer opens the store with ``sync="full"``) *before*
the checkpoint that covers it, so a checkpoint never claims more than the store holds; at
worst a resumed import repeats the last batch, which writes nothing (unchanged memories are
skipped). Not thread-safe: one importer per checkpoint file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from integrations.errors import MigrationError

__all__ = ["PHASES", "Checkpoint"]

FORMAT = 1
PHASES = ("nodes", "points", "relationships", "done")


@dataclass
class Checkpoint:
    """Progress of one import pass.

    ``source`` identifies the migration (legacy servers, collections, mapping, namespace): a
    checkpoint is resumed only by the same migration. ``cursor`` is the phase's resume point
    (last committed node id; ``{"collection", "offset"}`` for points; last committed source
    node id for relationships). ``counts`` are cumulative for the pass. ``status`` is
    ``running``, ``failed`` (``error`` says why) or ``complete``.
    """

    source: dict[str, Any]
    phase: str = "nodes"
    cursor: Any = None
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    format: int = FORMAT

    def add(self, **counts: int) -> None:
        """Add to the pass counters."""
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def summary(self) -> str:
        """Where the pass stands and what it has committed, in a few lines for people."""
        state = f"status {self.status}, phase {self.phase}, cursor {json.dumps(self.cursor)}"
        if self.error:
            state += f"\nerror: {self.error}"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if ":" not in k) or "nothing yet"
        return f"{state}\ncommitted: {counts}"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Atomically replace the checkpoint file at ``path`` with this state (durable on return)."""
        self.updated_at = time.time()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        data = json.dumps(asdict(self), indent=1, sort_keys=True).encode("utf-8")
        with open(partial, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint | None:
        """The checkpoint at ``path``, or None if there is none; MigrationError if it is unreadable."""
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MigrationError(f"cannot read checkpoint {path}: {exc}") from exc
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT or data.get("phase") not in PHASES:
                raise ValueError(f"unknown format {data.get('format')!r} or phase {data.get('phase')!r}")
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise MigrationError(f"checkpoint {path} is damaged ({exc}); remove it or pass --restart") from exc
