"""Turning sleep plans into one atomic batch of engine operations.

:func:`plan_ops` runs inside the store's commit (write mutex held, transaction time known):
it re-checks, for every memory a plan rewrites or deletes, that its current version is the
one the plan saw, drops the parts of the plan that touch memories changed meanwhile
(optimistic concurrency: writers are never blocked during planning), and emits the
operations in a safe order — puts, then κ deltas and edge changes, then deletes — followed by
the sleep-log record that makes ``why_forgotten`` answerable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from t4dm_core.consolidation.plan import ABSTRACTS, KIND_KEY, MERGED_KEY, PROTOTYPE_KIND, NamespacePlan
from t4dm_core.consolidation.report import SleepReport
from t4dm_core.storage.ops import EdgeOp, FieldDeltaOp, Op, PutOp
from t4dm_core.types import Memory

__all__ = ["SLEEP_LOG_NAMESPACE", "StoreView", "log_key", "plan_ops"]

SLEEP_LOG_NAMESPACE = "_t4dm_sleep"


def log_key(namespace: str, memory_id: str) -> str:
    """How the sleep log names a memory (namespace and id joined by a unit separator)."""
    return f"{namespace}\x1f{memory_id}"


class StoreView:
    """The few engine internals :func:`plan_ops` needs, as callables (keeps this module store-agnostic)."""

    def __init__(self, current_recorded_at: Callable[[str, str], float | None],
                 edges_of: Callable[[str, str], Iterable[tuple[str, str, str, float]]],
                 edge_weight: Callable[[str, str, str, str], float | None],
                 delete_ops: Callable[[str, list[str]], list[Op]], dim: int) -> None:
        self.current_recorded_at = current_recorded_at
        self.edges_of = edges_of
        self.edge_weight = edge_weight  # (namespace, src, dst, type) -> weight, None if no such edge
        self.delete_ops = delete_ops
        self.dim = dim


def plan_ops(plans: list[NamespacePlan], view: StoreView, ts: float, report: SleepReport) -> list[Op]:
    """Operations applying ``plans`` at transaction time ``ts``; fills ``report``."""
    puts: list[Op] = []
    updates: list[Op] = []
    deletes: list[Op] = []
    for plan in plans:
        _namespace_ops(plan, view, ts, report, puts, updates, deletes)
    ops = puts + updates + deletes
    if ops:
        report.sleep_id = f"sleep-{ts:.6f}"
        ops.append(_log_record(report, ts, view.dim))
    return ops


def _namespace_ops(plan: NamespacePlan, view: StoreView, ts: float, report: SleepReport, puts: list[Op],
                   updates: list[Op], deletes: list[Op]) -> None:
    ns = plan.namespace
    stale = {mid for mid, seen in plan.touched.items() if view.current_recorded_at(ns, mid) != seen}
    report.skipped.extend((ns, mid) for mid in sorted(stale))
    merges = [m for m in plan.merges if not any(x.id in stale for x in (m.survivor, *m.absorbed))]
    redirect = {str(a.id): str(m.survivor.id) for m in merges for a in m.absorbed}
    survivors = {str(m.survivor.id) for m in merges}
    # a survivor was just rewritten with the merged counters: it is not judged on its old ones
    forgotten = [f for f in plan.forgotten if f.memory.id not in stale and f.memory.id not in redirect
                 and f.memory.id not in survivors]
    removed = set(redirect) | {str(f.memory.id) for f in forgotten}
    for merge in merges:
        survivor = str(merge.survivor.id)
        puts.append(_merged_version(ns, merge.survivor, merge.absorbed, ts))
        absorbed_ids = [str(m.id) for m in merge.absorbed]
        moved: dict[tuple[str, str, str], float] = {}
        for mid in absorbed_ids:
            for src, dst, etype, weight in view.edges_of(ns, mid):
                a, b = redirect.get(src, src), redirect.get(dst, dst)  # both ends follow their merges
                if a != b and a not in removed and b not in removed:
                    moved[(a, b, etype)] = max(weight, moved.get((a, b, etype), weight))
        updates.extend(EdgeOp("set", ns, a, b, etype, w) for (a, b, etype), w in moved.items())
        deletes.extend(view.delete_ops(ns, absorbed_ids))
        report.merged[(ns, survivor)] = [(ns, mid) for mid in absorbed_ids]
    for forget in forgotten:
        mid = str(forget.memory.id)
        deletes.extend(view.delete_ops(ns, [mid]))
        report.forgotten[(ns, mid)] = forget.reason
    for proto in plan.prototypes:
        members = [m for m in proto.members if m not in removed and view.current_recorded_at(ns, m) is not None]
        if len(members) < 2:
            continue
        puts.append(PutOp(ns, proto.id, proto.text, {KIND_KEY: PROTOTYPE_KIND, "_t4dm_members": len(members)},
                          ts, None, 1.0, proto.importance, 0, False, proto.vector))
        updates.extend(EdgeOp("set", ns, proto.id, m, ABSTRACTS, 1.0) for m in members)
        report.prototypes[(ns, proto.id)] = [(ns, m) for m in members]
    for mid, delta in plan.kappa.items():
        if mid not in removed and delta > 0 and view.current_recorded_at(ns, mid) is not None:
            updates.append(FieldDeltaOp(ns, mid, "kappa", delta))
    report.replayed += sum(1 for mid in plan.replayed if mid not in removed)
    for changes, counter in ((plan.stdp, "stdp_edges"), (plan.decay, "edges_decayed")):
        for (src, dst, etype), delta in changes.items():
            # only an edge that still exists between current memories is adjusted (never re-created)
            if src in removed or dst in removed or delta == 0 or view.edge_weight(ns, src, dst, etype) is None:
                continue
            updates.append(EdgeOp("add", ns, src, dst, etype, delta))
            setattr(report, counter, getattr(report, counter) + 1)
    for src, dst, etype in sorted(plan.edge_removals):
        if src not in removed and dst not in removed and view.edge_weight(ns, src, dst, etype) is not None:
            deletes.append(EdgeOp("del", ns, src, dst, etype, 0.0))
            report.edges_removed += 1


def _merged_version(ns: str, survivor: Memory, absorbed: tuple[Memory, ...], ts: float) -> PutOp:
    """The survivor's new version: its content plus the provenance of what it absorbed."""
    meta: dict[str, Any] = dict(survivor.metadata)
    provenance = list(meta.get(MERGED_KEY, []))
    provenance.extend({"id": m.id, "recorded_at": m.recorded_at, "text": m.text} for m in absorbed)
    meta[MERGED_KEY] = provenance
    group = (survivor, *absorbed)
    return PutOp(ns, survivor.id, survivor.text, meta,  # type: ignore[arg-type]
                 survivor.valid_from if survivor.valid_from is not None else ts, survivor.valid_to,
                 max(m.kappa or 0.0 for m in group), max(m.importance or 0.0 for m in group),
                 sum(m.access_count or 0 for m in group), any(m.pinned for m in group),
                 survivor.vector)  # type: ignore[arg-type]  # memories from Store.find carry vectors


def _log_record(report: SleepReport, ts: float, dim: int) -> PutOp:
    forgotten = {log_key(ns, mid): reason for (ns, mid), reason in report.forgotten.items()}
    merged = {log_key(*k): [log_key(*v) for v in vs] for k, vs in report.merged.items()}
    meta = {"at": ts, "forgotten": sorted(forgotten), "reasons": forgotten, "merged": merged,
            "absorbed": sorted(x for vs in merged.values() for x in vs),
            "prototypes": sorted(log_key(*k) for k in report.prototypes)}
    text = (f"sleep at {ts:.0f}: {report.replayed} replayed, {len(report.merged)} merges, "
            f"{len(report.prototypes)} prototypes, {len(report.forgotten)} forgotten")
    vector = np.zeros(dim, dtype=np.float32)
    vector[0] = 1.0  # log records are found by metadata, never by similarity
    assert report.sleep_id is not None
    return PutOp(SLEEP_LOG_NAMESPACE, report.sleep_id, text, meta, ts, None, 1.0, 0.0, 0, True, vector)
