"""The dual writer: journal first, then the primary side, then the secondary; ``reconcile()`` replays.

Write protocol (:meth:`DualWriter.submit`, used by the Neo4j and Qdrant shims):

1. The write is parsed and validated into ops before anything else; invalid input raises a
   typed error and nothing is journaled or sent.
2. The ops are appended to the durable journal (fsynced) — the commit point.
3. They are applied to the primary side ("legacy" = the Neo4j or Qdrant store the write
   came from, or "t4dm" after :meth:`DualWriter.cut_over`), then to the secondary. A side
   that fails transiently is retried ``RetryPolicy.attempts`` times with exponential
   backoff; if it still fails, the entry stays pending for that side.
4. Per side, entries are applied strictly in journal order: while a side has pending
   entries, new entries queue behind them and the side is probed again (with growing
   intervals, ``RetryPolicy.probe_interval`` .. ``max_probe_interval``) on later writes;
   :meth:`DualWriter.reconcile` replays every side's backlog at once. Shim construction
   also reconciles, so a restarted process converges after a crash.

What the caller gets:

* all sides applied: a :class:`WriteResult` with ``complete=True``;
* a side unreachable (the primary included): the write is still accepted — it is durable in
  the journal and applied wherever possible — and the :class:`WriteResult` lists the side
  under ``pending``; a :class:`PendingWriteWarning` is issued. Nothing is lost: the side
  receives the entry when it is back (next write after the probe interval, or reconcile);
* the first side to apply the entry rejects it (invalid Cypher, constraint, wrong vector
  dimension): no side applies it, the entry is marked failed on every side and
  :class:`WriteRejectedError` is raised (``side``, ``seq``, the side's error as cause);
* a later side rejects what an earlier one applied (possible only when sides disagree on
  validity): that side is marked failed, the result lists it under ``diverged`` and a
  :class:`DivergedWriteWarning` is issued; the entry is not retried automatically.

Idempotence: every side applies ops so that re-applying an entry is harmless (canonical
MERGE statements on Neo4j, upserts by id on Qdrant, compare-before-write on T4DM). A crash
at any point — after the journal append, between sides, mid-batch — is repaired by
replaying the entries still pending, which :meth:`reconcile` does.

Thread-safety: writes and reconciles are serialised by one lock; any number of threads may
share a writer. One process per journal (the journal's ``flock``).
"""

from __future__ import annotations

import collections
import os
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from integrations.dualwrite.errors import (
    DivergedWriteWarning,
    DualWriteError,
    PendingWriteWarning,
    WriteRejectedError,
)
from integrations.dualwrite.journal import DONE, FAILED, PENDING, Journal, JournalEntry
from integrations.dualwrite.ops import Op, op_from_dict, op_to_dict
from integrations.dualwrite.sides import LEGACY_SIDES, T4DM, Side, SideRejectedError, SideUnavailableError
from integrations.dualwrite.t4dm_side import T4DMSide
from integrations.mapping import Mapping
from t4dm_core import Store

__all__ = ["DualWriter", "Primary", "ReconcileReport", "RetryPolicy", "WriteResult"]

Primary = Literal["legacy", "t4dm"]
_PRIMARY_SETTING = "primary"
_DECOMMISSIONED_SETTING = "decommissioned"
_INCIDENT_LOG = 256


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the writer tries a side before leaving an entry pending (times in seconds)."""

    attempts: int = 3
    initial_delay: float = 0.05
    max_delay: float = 1.0
    probe_interval: float = 0.5
    max_probe_interval: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or min(self.initial_delay, self.max_delay, self.probe_interval) < 0:
            raise ValueError("RetryPolicy needs attempts >= 1 and non-negative delays")

    def delays(self) -> Iterator[float]:
        """The pauses between attempts (``attempts - 1`` of them)."""
        delay = self.initial_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(self.max_delay, delay * 2)


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one shim write: the journal ``seq`` and which sides applied it, still owe it or diverged."""

    seq: int | None
    applied: tuple[str, ...]
    pending: tuple[str, ...]
    diverged: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every side applied the write."""
        return not self.pending and not self.diverged


@dataclass
class ReconcileReport:
    """What a :meth:`DualWriter.reconcile` call did, per side."""

    replayed: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, judging side, error)
    diverged: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, refusing side, error)

    @property
    def converged(self) -> bool:
        """True when no side owes any entry and no side diverged."""
        return not any(self.remaining.values()) and not self.diverged


@dataclass
class _Health:
    interval: float
    next_probe: float = 0.0
    down: bool = False

    def failed(self, policy: RetryPolicy) -> None:
        self.next_probe = time.monotonic() + self.interval
        self.interval = min(policy.max_probe_interval, max(self.interval * 2, 1e-3))
        self.down = True

    def recovered(self, policy: RetryPolicy) -> None:
        self.interval, self.down, self.next_probe = policy.probe_interval, False, 0.0


class DualWriter:
    """Keeps a T4DM store in step with legacy Neo4j and/or Qdrant through a durable journal.

    Args:
        store: the T4DM store (open for writing; the writer does not close it).
        journal: a :class:`Journal` or a directory for one.
        mapping: the legacy -> T4DM mapping (default :class:`Mapping()`), the importer's.
        neo4j: the Neo4j side (``Neo4jSide(driver, database)``), if the app writes a graph.
        qdrant: the Qdrant side (``QdrantSide(client)``), if the app writes vectors.
        retry: retry / probe policy.
        check_connectivity: verify each legacy side answers (raises
            :class:`integrations.errors.LegacyConnectionError` / ``LegacyAuthError``).

    The primary is what the journal recorded last (:meth:`cut_over` / :meth:`roll_back`),
    "legacy" for a new journal. Construction reconciles (replays what a previous process
    left pending); its report is kept in :attr:`startup_report`.
    """

    def __init__(self, store: Store, journal: Journal | str | os.PathLike[str], *, mapping: Mapping | None = None,
                 neo4j: Side | None = None, qdrant: Side | None = None, retry: RetryPolicy | None = None,
                 check_connectivity: bool = True) -> None:
        self.mapping = mapping or Mapping()
        self.retry = retry or RetryPolicy()
        self.store = store
        owns_journal = not isinstance(journal, Journal)
        self.journal: Journal = journal if isinstance(journal, Journal) else Journal(journal)
        try:
            self.sides: dict[str, Side] = {T4DM: T4DMSide(store, self.mapping)}
            for side in (neo4j, qdrant):
                if side is not None:
                    if check_connectivity:
                        side.check()
                    self.sides[side.name] = side
            self._health = {name: _Health(self.retry.probe_interval) for name in self.sides}
            self._lock = threading.RLock()
            self._causes: dict[int, BaseException] = {}
            self.incidents: collections.deque[tuple[int, str, str, str]] = collections.deque(maxlen=_INCIDENT_LOG)
            self.startup_report = self.reconcile()
        except BaseException:
            if owns_journal:
                self.journal.close()
            raise

    # ---- configuration ------------------------------------------------------------------------
    @property
    def primary(self) -> Primary:
        """The side writes go to first and shim reads are served from: "legacy" or "t4dm"."""
        value = self.journal.setting(_PRIMARY_SETTING, "legacy")
        return "t4dm" if value == "t4dm" else "legacy"

    @property
    def decommissioned(self) -> frozenset[str]:
        """Legacy sides no longer written (see :meth:`decommission`)."""
        return frozenset(self.journal.setting(_DECOMMISSIONED_SETTING, []))

    def cut_over(self) -> ReconcileReport:
        """Make T4DM the primary (durably). Reconciles first; refuses while T4DM still owes entries.

        Afterwards writes apply to T4DM first, the shims serve their reads from T4DM, and the
        legacy sides keep being mirrored until :meth:`decommission`.

        Raises:
            DualWriteError: the T4DM side has pending entries it could not replay.
        """
        with self._lock:
            report = self.reconcile()
            if report.remaining.get(T4DM):
                raise DualWriteError(f"cannot cut over: T4DM still owes {report.remaining[T4DM]} journal entries "
                                     f"({report.unavailable.get(T4DM, 'see reconcile report')})")
            self._set_primary("t4dm")
            return report

    def roll_back(self) -> None:
        """Make the legacy stores primary again (durably). Allowed until a side is decommissioned."""
        with self._lock:
            if self.decommissioned:
                raise DualWriteError(f"cannot roll back: {sorted(self.decommissioned)} decommissioned")
            self._set_primary("legacy")

    def decommission(self, side: str) -> int:
        """Stop mirroring legacy ``side`` ("neo4j" / "qdrant"); only after cut-over. Returns entries dropped.

        Entries still pending for that side are marked failed ("decommissioned"); new writes
        go to T4DM only.
        """
        with self._lock:
            if side not in LEGACY_SIDES:
                raise ValueError(f"side must be one of {LEGACY_SIDES}, got {side!r}")
            if self.primary != "t4dm":
                raise DualWriteError("decommission a legacy side only after cut_over()")
            dropped = self.journal.pending(side)
            for entry in dropped:
                self.journal.mark(entry.seq, side, FAILED, "decommissioned")
            self.journal.set(_DECOMMISSIONED_SETTING, sorted(self.decommissioned | {side}))
            return len(dropped)

    def _set_primary(self, primary: Primary) -> None:
        self.journal.set(_PRIMARY_SETTING, primary)

    def side_order(self) -> list[str]:
        """Configured sides, primary first."""
        legacy = [name for name in LEGACY_SIDES if name in self.sides]
        return [T4DM, *legacy] if self.primary == "t4dm" else [*legacy, T4DM]

    # ---- writing ------------------------------------------------------------------------------
    def submit(self, source: str, ops: Sequence[Op]) -> WriteResult:
        """Journal ``ops`` (a write to legacy side ``source``) and apply them; see the module doc."""
        if source not in LEGACY_SIDES:
            raise ValueError(f"source must be one of {LEGACY_SIDES}, got {source!r}")
        if source not in self.sides and source not in self.decommissioned:
            raise DualWriteError(f"this DualWriter has no {source} side configured")
        if not ops:
            return WriteResult(None, (), ())
        with self._lock:
            names = [name for name in self.side_order() if name in (source, T4DM) and name not in self.decommissioned]
            entry = self.journal.append(source, names, [op_to_dict(op) for op in ops])
            report = ReconcileReport()
            for name in names:
                if entry.sides[name] == PENDING:
                    self._advance(name, report, until=entry.seq, force=False)
            result = WriteResult(entry.seq, tuple(n for n in names if entry.sides[n] == DONE),
                                 tuple(n for n in names if entry.sides[n] == PENDING),
                                 {s: e for seq, s, e in report.diverged if seq == entry.seq})
            rejection = next(((side, err) for seq, side, err in report.rejected if seq == entry.seq), None)
        if rejection is not None:
            side, error = rejection
            raise WriteRejectedError(f"{side} rejected the write (journal entry {entry.seq}, applied nowhere): "
                                     f"{error}", side=side, seq=entry.seq) from self._causes.pop(entry.seq, None)
        if result.pending:
            warnings.warn(PendingWriteWarning(
                f"write {entry.seq} is journaled but {list(result.pending)} could not be reached "
                f"({'; '.join(report.unavailable.get(s, 'queued behind earlier writes') for s in result.pending)}); "
                "it will be replayed by reconcile() or a later write"), stacklevel=3)
        if result.diverged:
            warnings.warn(DivergedWriteWarning(f"write {entry.seq} was refused by {result.diverged} after "
                                               f"{list(result.applied)} applied it"), stacklevel=3)
        return result

    def reconcile(self) -> ReconcileReport:
        """Replay every side's pending entries in journal order (primary first), ignoring probe backoff.

        Stops per side at the first entry the side cannot take because it is unreachable
        (``report.unavailable``); never raises for an unreachable side.
        """
        with self._lock:
            report = ReconcileReport()
            for name in self.side_order():
                self._advance(name, report, until=None, force=True)
            for name in (T4DM, *LEGACY_SIDES):
                count = len(self.journal.pending(name))
                if name in self.sides or count:
                    report.remaining[name] = count
            return report

    def pending_counts(self) -> dict[str, int]:
        """Entries each configured side still owes."""
        with self._lock:
            return {name: len(self.journal.pending(name)) for name in self.sides}

    def _advance(self, name: str, report: ReconcileReport, *, until: int | None, force: bool) -> None:
        side = self.sides.get(name)
        entries = [e for e in self.journal.pending(name) if until is None or e.seq <= until]
        if side is None or not entries:
            return
        health = self._health[name]
        if health.down and not force and time.monotonic() < health.next_probe:
            report.unavailable.setdefault(name, "down; waiting for the next probe")
            return
        for entry in entries:
            if entry.sides.get(name) != PENDING:  # finished meanwhile (rejected by the judge)
                continue
            if not self._apply_entry(name, side, entry, report):
                health.failed(self.retry)
                return
        health.recovered(self.retry)

    def _apply_entry(self, name: str, side: Side, entry: JournalEntry, report: ReconcileReport) -> bool:
        """Apply one entry to one side with retries; False if the side stayed unreachable."""
        ops = [op_from_dict(d) for d in entry.ops]
        first = not any(state == DONE for other, state in entry.sides.items() if other != name)
        delays = self.retry.delays()
        while True:
            try:
                side.apply(ops, first=first)
            except SideUnavailableError as exc:
                delay = next(delays, None)
                if delay is None:
                    report.unavailable[name] = str(exc)
                    return False
                time.sleep(delay)
                continue
            except SideRejectedError as exc:
                self._record_rejection(name, entry, exc, first, report)
                return True
            self.journal.mark(entry.seq, name, DONE)
            report.replayed[name] = report.replayed.get(name, 0) + 1
            return True

    def _record_rejection(self, name: str, entry: JournalEntry, exc: SideRejectedError, first: bool,
                          report: ReconcileReport) -> None:
        if first:
            for other, state in list(entry.sides.items()):
                if state == PENDING:
                    self.journal.mark(entry.seq, other, FAILED, f"rejected by {name}: {exc}")
            report.rejected.append((entry.seq, name, str(exc)))
            self._causes[entry.seq] = exc.__cause__ or exc
            if len(self._causes) > _INCIDENT_LOG:
                self._causes.pop(next(iter(self._causes)))
            self.incidents.append((entry.seq, name, "rejected", str(exc)))
        else:
            self.journal.mark(entry.seq, name, FAILED, str(exc))
            report.diverged.append((entry.seq, name, str(exc)))
            self.incidents.append((entry.seq, name, "diverged", str(exc)))

    # ---- lifecycle ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Primary, decommissioned sides, pending entries and reachability per side."""
        with self._lock:
            return {"primary": self.primary, "decommissioned": sorted(self.decommissioned),
                    "pending": self.pending_counts(),
                    "down": sorted(name for name, h in self._health.items() if h.down),
                    "journal": self.journal.stats()}

    def close(self) -> None:
        """Close the journal (the store, driver and client belong to the caller)."""
        self.journal.close()

    def __enter__(self) -> DualWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
