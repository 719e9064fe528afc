"""The outcome of one sleep: :class:`SleepReport`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SleepReport"]


@dataclass
class SleepReport:
    """What a sleep did (all ids are ``(namespace, id)`` pairs).

    Attributes:
        replayed: memories replayed by NREM (κ raised).
        stdp_edges: edges whose weight STDP changed.
        merged: survivor -> the near-duplicates folded into it.
        prototypes: prototype -> its member memories (REM).
        forgotten: memory -> why PRUNE forgot it.
        edges_decayed / edges_removed: learned edges weakened / removed.
        skipped: memories left alone because they changed while the sleep was planning.
        compacted: whether segments were merged afterwards.
        seconds: wall time per phase ("plan", "apply", "compact").
        sleep_id: id of the sleep-log record (namespace ``_t4dm_sleep``), ``None`` if nothing changed.
        versions_written: memory versions (puts and tombstones) the sleep's batch wrote.
    """

    replayed: int = 0
    stdp_edges: int = 0
    merged: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    prototypes: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    forgotten: dict[tuple[str, str], str] = field(default_factory=dict)
    edges_decayed: int = 0
    edges_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    compacted: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    sleep_id: str | None = None
    versions_written: int = 0
