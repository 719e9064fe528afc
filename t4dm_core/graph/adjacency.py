"""Current edge state and k-hop traversal.

Edge operations (set / add / del, see :class:`~t4dm_core.storage.ops.EdgeOp`) are applied in
LSN order. ``add`` on a missing edge creates it with the delta as weight. Edges are scoped
by namespace; traversal never leaves the start memory's namespace. Mutated only under the
engine's exclusive lock; read under the shared lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from t4dm_core.storage.ops import EdgeOp

__all__ = ["EdgeGraph", "fold_edge_ops"]

EdgeKey = tuple[str, str, str, str]  # namespace, src, dst, type


class EdgeGraph:
    def __init__(self) -> None:
        self.weights: dict[EdgeKey, float] = {}
        self._out: dict[tuple[str, str], dict[tuple[str, str], None]] = {}
        self._in: dict[tuple[str, str], dict[tuple[str, str], None]] = {}

    def __len__(self) -> int:
        return len(self.weights)

    def apply(self, op: EdgeOp) -> None:
        key = (op.namespace, op.src, op.dst, op.type)
        if op.kind == "del":
            if self.weights.pop(key, None) is not None:
                self._out[(op.namespace, op.src)].pop((op.dst, op.type), None)
                self._in[(op.namespace, op.dst)].pop((op.src, op.type), None)
            return
        weight = op.weight if op.kind == "set" else self.weights.get(key, 0.0) + op.weight
        self.weights[key] = weight
        self._out.setdefault((op.namespace, op.src), {})[(op.dst, op.type)] = None
        self._in.setdefault((op.namespace, op.dst), {})[(op.src, op.type)] = None

    def edges_of(self, namespace: str, node: str, direction: str) -> Iterator[tuple[str, str, str, float]]:
        """(src, dst, type, weight) of edges touching ``node``; direction "out", "in" or "both"."""
        if direction in ("out", "both"):
            for dst, etype in list(self._out.get((namespace, node), {})):
                yield node, dst, etype, self.weights[(namespace, node, dst, etype)]
        if direction in ("in", "both"):
            for src, etype in list(self._in.get((namespace, node), {})):
                yield src, node, etype, self.weights[(namespace, src, node, etype)]

    def traverse(self, namespace: str, start: str, hops: int, edge_type: str | None, direction: str,
                 is_current: Callable[[str], bool]) -> list[tuple[str, int, tuple[str, str, str, float]]]:
        """Breadth-first: (node, distance, first edge reaching it), nearest first, start excluded."""
        seen = {start}
        out: list[tuple[str, int, tuple[str, str, str, float]]] = []
        frontier: deque[tuple[str, int]] = deque([(start, 0)])
        while frontier:
            node, depth = frontier.popleft()
            if depth == hops:
                continue
            for edge in self.edges_of(namespace, node, direction):
                if edge_type is not None and edge[2] != edge_type:
                    continue
                other = edge[1] if edge[0] == node else edge[0]
                if other in seen or not is_current(other):
                    continue
                seen.add(other)
                out.append((other, depth + 1, edge))
                frontier.append((other, depth + 1))
        return out


def fold_edge_ops(ops: list[tuple[int, EdgeOp]]) -> list[tuple[int, EdgeOp]]:
    """Collapse each edge's operations into one with the same effect (used by compaction)."""
    state: dict[EdgeKey, tuple[int, EdgeOp]] = {}
    for lsn, op in sorted(ops, key=lambda item: item[0]):
        key = (op.namespace, op.src, op.dst, op.type)
        prev = state.get(key)
        if op.kind != "add" or prev is None:
            state[key] = (lsn, op)
        elif prev[1].kind == "del":
            state[key] = (lsn, EdgeOp("set", *key, op.weight))
        else:
            state[key] = (lsn, EdgeOp(prev[1].kind, *key, prev[1].weight + op.weight))
    return sorted(state.values(), key=lambda item: item[0])
