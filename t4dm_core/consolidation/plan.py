"""Planning a sleep: pure functions from a snapshot of one namespace to the changes to make.

Nothing here touches the store. :func:`plan_namespace` takes the current memories (with
vectors and counters), the edges among them, and a ``near`` callback (approximate nearest
neighbours, from the store's index), and returns a :class:`NamespacePlan`. The store then
applies the plan as one atomic batch (see ``Store.sleep``), skipping any memory that changed
since the snapshot.

Strength (PRUNE): ``(0.5 + importance) · (1 + ln(1 + accesses)) · (1 + κ) · 2^(−idle / half-life)``
where *idle* is the time since the memory was last retrieved or written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from t4dm_core.consolidation.policy import SleepPolicy, extractive_summary
from t4dm_core.types import Memory

__all__ = ["ABSTRACTS", "PROTOTYPE_KIND", "Forget", "Merge", "NamespacePlan", "Prototype", "plan_namespace", "strength"]

PROTOTYPE_KIND = "prototype"
MERGED_KEY = "_t4dm_merged_from"  # provenance of a merge survivor
ABSTRACTS = "abstracts"  # edge type: prototype -> member
KIND_KEY = "_t4dm_kind"
DAY = 86_400.0

EdgeKey = tuple[str, str, str]  # (src, dst, type)
Near = Callable[[Memory], list[tuple[str, float]]]


@dataclass(frozen=True)
class Merge:
    """Near-duplicates folded into one survivor (which records them as provenance)."""

    survivor: Memory
    absorbed: tuple[Memory, ...]


@dataclass(frozen=True)
class Prototype:
    """A semantic memory abstracting an episodic cluster (``abstracts`` edges to members)."""

    id: str
    text: str
    vector: np.ndarray
    members: tuple[str, ...]
    importance: float


@dataclass(frozen=True)
class Forget:
    """A memory PRUNE forgets, and why."""

    memory: Memory
    reason: str


@dataclass
class NamespacePlan:
    """Everything one sleep changes in one namespace."""

    namespace: str
    replayed: list[str] = field(default_factory=list)
    kappa: dict[str, float] = field(default_factory=dict)  # id -> κ delta
    stdp: dict[EdgeKey, float] = field(default_factory=dict)  # edge -> weight delta from STDP
    decay: dict[EdgeKey, float] = field(default_factory=dict)  # edge -> (negative) delta from decay
    edge_removals: set[EdgeKey] = field(default_factory=set)
    merges: list[Merge] = field(default_factory=list)
    prototypes: list[Prototype] = field(default_factory=list)
    forgotten: list[Forget] = field(default_factory=list)

    @property
    def touched(self) -> dict[str, float | None]:
        """Ids whose current version the plan relies on -> recorded_at it saw (for the optimistic check)."""
        seen: dict[str, float | None] = {}
        for merge in self.merges:
            for m in (merge.survivor, *merge.absorbed):
                seen[m.id] = m.recorded_at  # type: ignore[index]
        for f in self.forgotten:
            seen[f.memory.id] = f.memory.recorded_at  # type: ignore[index]
        return seen


def strength(memory: Memory, now: float, half_life_days: float) -> float:
    """PRUNE's retention strength of a memory at time ``now`` (see the module docstring)."""
    last = max(memory.last_accessed or 0.0, memory.recorded_at or 0.0)
    idle_days = max(0.0, now - last) / DAY
    return ((0.5 + max(0.0, memory.importance or 0.0)) * (1.0 + math.log1p(memory.access_count or 0))
            * (1.0 + (memory.kappa or 0.0)) * 2.0 ** (-idle_days / half_life_days))


def plan_namespace(namespace: str, memories: Sequence[Memory], edges: dict[EdgeKey, float], near: Near,
                   policy: SleepPolicy, now: float) -> NamespacePlan:
    """Plan NREM, REM and PRUNE for one namespace from a consistent snapshot."""
    plan = NamespacePlan(namespace)
    by_id = {m.id: m for m in memories}
    merges = _duplicate_groups(memories, near, policy.dedupe_similarity)
    plan.merges = merges
    gone = {m.id for merge in merges for m in merge.absorbed}
    alive = [m for m in memories if m.id not in gone]
    _replay(plan, alive, edges, by_id, policy, now)
    if policy.prune:
        plan.forgotten = [Forget(m, reason) for m, reason in _prune(alive, policy, now)]
        gone |= {f.memory.id for f in plan.forgotten}
        _decay_edges(plan, edges, policy)
    if policy.rem:
        abstracted = {dst for (_src, dst, etype) in edges if etype == ABSTRACTS}  # already in a prototype
        plan.prototypes = _abstract([m for m in alive if m.id not in gone and m.id not in abstracted], policy)
        for proto in plan.prototypes:
            for mid in proto.members:
                plan.kappa[mid] = plan.kappa.get(mid, 0.0) + policy.kappa_step * (1.0 - _kappa(by_id[mid]))
    return plan


def _kappa(m: Memory) -> float:
    return float(m.kappa or 0.0)


def _replay(plan: NamespacePlan, alive: list[Memory], edges: dict[EdgeKey, float], by_id: dict[str | None, Memory],
            policy: SleepPolicy, now: float) -> None:
    """NREM: replay the most important recently used memories; raise κ; STDP along their edges."""
    def priority(m: Memory) -> float:
        last = max(m.last_accessed or 0.0, m.recorded_at or 0.0)
        return (0.5 + max(0.0, m.importance or 0.0)) * 2.0 ** (-max(0.0, now - last) / (7 * DAY))

    replayed = sorted(alive, key=priority, reverse=True)[: policy.replay_limit]
    plan.replayed = [m.id for m in replayed]  # type: ignore[misc]
    for m in replayed:
        plan.kappa[m.id] = policy.kappa_step * (1.0 - _kappa(m))  # type: ignore[index]
    chosen = set(plan.replayed)
    for (src, dst, etype), weight in edges.items():
        if etype not in policy.stdp_edge_types or src not in chosen or dst not in chosen:
            continue
        t_src, t_dst = by_id[src].valid_from or 0.0, by_id[dst].valid_from or 0.0
        if t_src < t_dst:  # pre before post: potentiation
            plan.stdp[(src, dst, etype)] = policy.stdp_rate * (1.0 - weight)
        elif t_src > t_dst:  # post before pre: depression
            plan.stdp[(src, dst, etype)] = -policy.stdp_rate * weight


def _duplicate_groups(memories: Sequence[Memory], near: Near, threshold: float) -> list[Merge]:
    """Union-find over near-duplicate pairs; the survivor is pinned, else most important, else oldest.

    Two memories are duplicates only if their metadata are equal (so turns of different
    sessions, or facts of different users, are never merged) and their text is identical or
    their vectors have cosine ≥ ``threshold``.
    """
    parent: dict[str, str] = {str(m.id): str(m.id) for m in memories}
    context = {str(m.id): _context_key(m) for m in memories}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_text: dict[tuple[str, str], str] = {}
    for m in memories:
        mid = str(m.id)
        if m.text:
            first = by_text.setdefault((m.text, context[mid]), mid)
            parent[root(mid)] = root(first)
        for other, cosine in near(m):
            if other != mid and other in parent and cosine >= threshold and context[other] == context[mid]:
                parent[root(other)] = root(mid)
    groups: dict[str, list[Memory]] = {}
    for m in memories:
        groups.setdefault(root(str(m.id)), []).append(m)
    merges = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: (not m.pinned, -(m.importance or 0.0), m.recorded_at or 0.0, m.id))
        merges.append(Merge(members[0], tuple(members[1:])))
    return merges


def _context_key(memory: Memory) -> str:
    """A memory's metadata as canonical JSON, without merge provenance."""
    return json.dumps({k: v for k, v in memory.metadata.items() if k != MERGED_KEY}, sort_keys=True)


def _prune(alive: Sequence[Memory], policy: SleepPolicy, now: float) -> list[tuple[Memory, str]]:
    out = []
    for m in alive:
        if m.pinned or (m.metadata.get(KIND_KEY) == PROTOTYPE_KIND):
            continue
        last = max(m.last_accessed or 0.0, m.recorded_at or 0.0)
        idle_days = (now - last) / DAY
        if idle_days < policy.min_idle_days:
            continue
        s = strength(m, now, policy.half_life_days)
        if s < policy.forget_below:
            out.append((m, f"strength {s:.4f} < {policy.forget_below}: importance {m.importance or 0.0:.2f}, "
                           f"{m.access_count or 0} retrievals, kappa {m.kappa or 0.0:.2f}, idle {idle_days:.1f} days "
                           f"(half-life {policy.half_life_days} days)"))
    return out


def _decay_edges(plan: NamespacePlan, edges: dict[EdgeKey, float], policy: SleepPolicy) -> None:
    for key, weight in edges.items():
        if key[2] not in policy.decaying_edge_types:
            continue
        new = weight * policy.edge_decay
        if new < policy.edge_forget_below:
            plan.edge_removals.add(key)
        else:
            plan.decay[key] = new - weight


def _abstract(candidates: Sequence[Memory], policy: SleepPolicy) -> list[Prototype]:
    """REM: HDBSCAN over episodic memories; each cluster becomes a prototype memory."""
    episodic = [m for m in candidates if _kappa(m) < policy.rem_max_kappa and m.vector is not None
                and m.metadata.get(KIND_KEY) != PROTOTYPE_KIND]
    if len(episodic) < 2 * policy.rem_min_cluster_size:
        return []
    import hdbscan  # lazy: only sleep needs it

    vectors = np.stack([m.vector for m in episodic]).astype(np.float64)  # type: ignore[misc]
    labels = hdbscan.HDBSCAN(min_cluster_size=policy.rem_min_cluster_size, metric="euclidean").fit_predict(vectors)
    summarize = policy.summarizer or extractive_summary
    out = []
    for label in sorted(set(labels.tolist()) - {-1}):
        idx = np.flatnonzero(labels == label)
        centroid = vectors[idx].mean(axis=0)
        order = idx[np.argsort(-(vectors[idx] @ centroid), kind="stable")]
        members = [episodic[i] for i in order]
        member_ids = tuple(sorted(str(m.id) for m in members))
        digest = hashlib.blake2b("\x1f".join(member_ids).encode(), digest_size=8).hexdigest()
        norm = float(np.linalg.norm(centroid))
        if norm == 0.0:
            continue
        out.append(Prototype(f"proto-{digest}", summarize(members), (centroid / norm).astype(np.float32), member_ids,
                             float(np.mean([m.importance or 0.0 for m in members]))))
    return out
