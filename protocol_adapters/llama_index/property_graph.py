"""LlamaIndex ``PropertyGraphStore`` over a T4DM store: :class:`T4DMPropertyGraphStore`.

Storage layout (one engine namespace, default ``"property_graph"``):

* **Nodes** are memories whose id is the node id (``EntityNode.id`` = its name,
  ``ChunkNode.id`` = ``id_``). A chunk's memory text is the chunk text; an entity's is a
  readable ``"<label>: <name>"``. The node's properties are the top-level metadata keys (so
  ``get(properties=...)`` runs as an engine metadata filter), next to the bookkeeping keys
  ``_t4dm_kind``, ``_t4dm_type`` (``"entity"``/``"chunk"``), ``_t4dm_label`` and
  ``_t4dm_name``. The vector is the node's embedding; a node without one gets
  :func:`~protocol_adapters._common.stand_in_vector` and ``_t4dm_unembedded: true``.
* **Relations** are engine edges ``source -> target`` of type = relation label, plus one
  record memory per relation (id ``_t4dm_rel:<hash of source, label, target>``) holding the
  relation's properties.
* **Atomicity.** Every write call is one atomic engine batch (``Store.write``):
  ``upsert_relations`` puts the missing endpoints and the records and links the edges
  together; ``delete`` deletes the nodes and the records of their relations (the engine
  removes every edge of a deleted node in the same batch) and unlinks the edges of the
  relations deleted by label. After a crash a call is visible whole or not at all.
* **Visibility.** A relation is *visible* only when its record is current, its edge exists
  and both endpoints are current nodes. The adapter's own writes keep these together, but
  the namespace may hold edges that are not relations: the ``co_retrieved`` edges the
  engine's learning-on-read adds between nodes that ``vector_query`` returns together, and
  edges or deletions made through the raw ``Store`` or another adapter sharing the
  namespace (an edge without a record, a record whose edge or endpoint is gone, or graphs
  written by an older, non-atomic version of this adapter). Those are ignored, and
  upserting the relation again repairs it.

Semantics, and where they follow which reference store:

* ``get(properties=...)`` combines the key/value pairs with **AND** (as
  ``Neo4jPropertyGraphStore``; ``SimplePropertyGraphStore`` uses OR, which makes a
  multi-key query match far more than asked for). Equality is JSON equality: ``True`` is
  not ``1``, and a missing key matches no value (not even ``None``).
* ``upsert_nodes`` replaces a node whole (properties, label, embedding), as
  ``SimplePropertyGraphStore``. ``upsert_relations`` creates missing endpoints as bare
  ``EntityNode(name=id)``; an already visible relation keeps its original properties (both
  reference stores do this: upserting an existing relation is a no-op).
* ``get_triplets`` returns ``[]`` without arguments (as the simple store) and otherwise the
  triplets, in both directions, around the nodes that match every given criterion
  (``entity_names``, ``ids``, ``properties``), restricted to ``relation_names``; with
  ``relation_names`` alone, every relation of those labels. Relations carry their
  properties.
* ``get_rel_map`` follows undirected paths of 1..``depth`` relations from the given nodes,
  never through ``MENTIONS`` relations (as Neo4j), drops ``ignore_rels`` from the result
  (they are still traversed, as in Neo4j), then applies ``limit``; nearest first.
* ``delete`` removes, independently for each argument given (as Neo4j), the entities named
  ``entity_names``, the nodes with ``ids``, the nodes matching all ``properties`` and every
  relation labelled ``relation_names``; deleting a node deletes its relations, never its
  neighbours (the simple store deletes both ends of every matched triplet).
* ``vector_query`` ranks **entity** nodes that have an embedding by cosine similarity in
  [-1, 1], higher = better (as Neo4j's, which searches ``__Entity__`` nodes only; chunks
  reach a PropertyGraphIndex answer through ``include_text``). ``filters`` mean what they
  mean for the LlamaIndex vector store adapter (shared :mod:`._filters`). It returns
  exactly the hits it fetches, so when the engine's search answers it, the engine's
  learning on read (``Options.learn_on_read``) stays on: those nodes count as retrieved.
* Returned embeddings are the stored unit-length vectors (cosine is unchanged).

Dimension: taken from ``dim=``, a shared ``store=``, an existing store at ``path=``, or the
first embedding written. Until one is known the store is not created; writing nodes without
embeddings at that point raises :class:`~t4dm_core.InvalidInputError` asking for ``dim=``
(a PropertyGraphIndex with an embed model never hits this: it embeds every node first).

Thread-safety: every method may be called from several threads; writes through one adapter
are serialised by a lock, reads run concurrently. Async methods run the sync method in a
worker thread. Persistence: data written with ``path=`` survives :meth:`close` and
reopening; durability of each call follows the store's ``Options.sync``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from llama_index.core.graph_stores.types import (
    ChunkNode,
    EntityNode,
    LabelledNode,
    PropertyGraphStore,
    Relation,
    Triplet,
)
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

import t4dm_core
from protocol_adapters._common import StoreHandle, run_in_thread, stand_in_vector
from protocol_adapters.llama_index._filters import (
    RESERVED_PREFIX,
    CompiledFilters,
    compile_metadata_filters,
    conjoin,
)
from t4dm_core import Edge, InvalidInputError, InvalidNamespaceError, Memory, Store, StoreClosedError, T4DMError

__all__ = ["StructuredQueryNotSupportedError", "T4DMPropertyGraphStore"]

MENTIONS = "MENTIONS"
_KIND, _TYPE, _LABEL, _NAME = "_t4dm_kind", "_t4dm_type", "_t4dm_label", "_t4dm_name"
_SOURCE, _TARGET, _UNEMBEDDED = "_t4dm_source", "_t4dm_target", "_t4dm_unembedded"
_NODE_KIND, _RELATION_KIND = "pg_node", "pg_relation"
_ENTITY, _CHUNK = "entity", "chunk"
_RELATION_ID_PREFIX = "_t4dm_rel:"
_MAX_ID_LEN = 512
_MAX_SEARCH_K = 10_000
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "BOOLEAN"), (int, "INTEGER"), (float, "FLOAT"), (str, "STRING"), (list, "LIST"), (dict, "MAP"))


class StructuredQueryNotSupportedError(T4DMError, NotImplementedError):
    """``structured_query`` was called: this store runs no Cypher (``supports_structured_queries`` is False)."""


class T4DMPropertyGraphStore(PropertyGraphStore):
    """A LlamaIndex labelled property graph stored in T4DM (see the module docstring for semantics).

    Args:
        path: store directory (``None`` = a temporary store removed on :meth:`close`).
        store: an open ``t4dm_core.Store`` to share (the caller closes it); not with ``path``.
        namespace: engine namespace holding the graph.
        dim: vector dimension; needed only to create a new store before any embedding is written.

    Raises:
        InvalidInputError: both ``path`` and ``store``, or a bad ``dim``.
        InvalidNamespaceError: a bad ``namespace``.
        DimensionMismatchError / EmbedderMismatchError: ``dim`` differs from the store's.
    """

    supports_structured_queries: bool = False
    supports_vector_queries: bool = True

    def __init__(self, *, path: str | os.PathLike[str] | None = None, store: Store | None = None,
                 namespace: str = "property_graph", dim: int | None = None) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise InvalidInputError(f"dim must be a positive integer or None, got {dim!r}")
        if store is not None and path is not None:
            raise InvalidInputError("pass either path= or store=, not both")
        self._namespace = _check_namespace(namespace)
        self._path = path
        self._lock = threading.RLock()
        self._closed = False
        self._schema: dict[str, Any] | None = None
        self._handle: StoreHandle | None = None
        if store is not None or dim is not None or (path is not None and t4dm_core.exists(path)):
            self._handle = StoreHandle(path=path, store=store, dim=dim)

    # ------------------------------------------------------------------ lifecycle
    @property
    def client(self) -> Store | None:
        """The underlying ``t4dm_core.Store`` (``None`` until the dimension is known)."""
        return None if self._handle is None else self._handle.store

    @property
    def namespace(self) -> str:
        """The engine namespace holding this graph."""
        return self._namespace

    def close(self) -> None:
        """Close the store if this adapter opened it (a shared store stays open). Idempotent."""
        with self._lock:
            self._closed = True
            if self._handle is not None:
                self._handle.close()

    def __enter__(self) -> T4DMPropertyGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reader(self) -> Store | None:
        if self._closed:
            raise StoreClosedError("this T4DMPropertyGraphStore is closed")
        return None if self._handle is None else self._handle.store

    def _writer(self, dim: int | None) -> Store:
        """The store to write to, created now if needed (call with the lock held)."""
        store = self._reader()
        if store is not None:
            return store
        if dim is None:
            raise InvalidInputError(
                "T4DMPropertyGraphStore does not know its vector dimension yet: pass dim= when creating a new "
                "store, or write nodes that carry embeddings first")
        self._handle = StoreHandle(path=self._path, store=None, dim=dim)
        return self._handle.store

    # ------------------------------------------------------------------ reads
    def get(self, properties: dict | None = None, ids: list[str] | None = None) -> list[LabelledNode]:
        """Nodes with all of ``properties`` (AND) and, if given, an id in ``ids`` (in ``ids`` order)."""
        _check_properties(properties, "properties")
        id_list = _check_names(ids, "ids")
        store = self._reader()
        if store is None:
            return []
        return [_node_from_memory(m) for m in self._match_nodes(store, ids=id_list, properties=properties)]

    def get_triplets(self, entity_names: list[str] | None = None, relation_names: list[str] | None = None,
                     properties: dict | None = None, ids: list[str] | None = None) -> list[Triplet]:
        """Triplets around the matching nodes (both directions); ``[]`` when called without arguments."""
        _check_properties(properties, "properties")
        names = _check_names(entity_names, "entity_names")
        labels = _check_names(relation_names, "relation_names")
        id_list = _check_names(ids, "ids")
        store = self._reader()
        if store is None or not (names or labels or properties or id_list):
            return []
        reader = _TripletReader(store, self._namespace)
        if not (names or properties or id_list):
            return reader.triplets(self._relation_edges(store, labels))
        anchors = self._match_nodes(store, ids=id_list, properties=properties, entity_names=names)
        wanted = set(labels) if labels else None
        edges = [e for m in anchors for e in store.edges(_memory_id(m), namespace=self._namespace, direction="both")
                 if wanted is None or e.type in wanted]
        return reader.triplets(edges)

    def get_rel_map(self, graph_nodes: list[LabelledNode], depth: int = 2, limit: int = 30,
                    ignore_rels: list[str] | None = None) -> list[Triplet]:
        """Triplets on undirected paths of 1..``depth`` relations from ``graph_nodes``, nearest first.

        ``MENTIONS`` relations are never followed; ``ignore_rels`` are followed but left out
        of the result; at most ``limit`` triplets are returned.
        """
        if not isinstance(graph_nodes, list) or not all(isinstance(n, LabelledNode) for n in graph_nodes):
            raise InvalidInputError("graph_nodes must be a list of LabelledNode")
        _check_count(depth, "depth", minimum=1)
        _check_count(limit, "limit", minimum=0)
        ignored = set(_check_names(ignore_rels, "ignore_rels") or [])
        store = self._reader()
        if store is None or limit == 0:
            return []
        reader = _TripletReader(store, self._namespace)
        frontier = [n.id for n in graph_nodes if reader.node(n.id) is not None]
        visited = set(frontier)
        seen: set[tuple[str, str, str]] = set()
        found: list[Triplet] = []
        for _ in range(depth):
            next_frontier: list[str] = []
            for node_id in frontier:
                for edge in store.edges(node_id, namespace=self._namespace, direction="both"):
                    key = (edge.src, edge.type, edge.dst)
                    if edge.type == MENTIONS or key in seen:
                        continue
                    seen.add(key)
                    triplet = reader.triplet(edge)
                    if triplet is None:
                        continue
                    other = edge.dst if edge.src == node_id else edge.src
                    if other not in visited:
                        visited.add(other)
                        next_frontier.append(other)
                    if edge.type not in ignored:
                        found.append(triplet)
                        if len(found) == limit:
                            return found
            frontier = next_frontier
        return found

    def vector_query(self, query: VectorStoreQuery, **kwargs: Any) -> tuple[list[LabelledNode], list[float]]:
        """Entity nodes with embeddings nearest to ``query.query_embedding`` and their cosine similarities.

        Honours ``similarity_top_k``, ``node_ids`` (restrict to these ids) and ``filters``
        (every LlamaIndex operator and condition, with the meaning the LlamaIndex vector
        store adapter gives them, see :mod:`protocol_adapters.llama_index._filters`). Filters
        the engine evaluates exactly run inside its vector search; otherwise (and with
        ``node_ids``) the candidates are scanned and ranked exactly.
        """
        if not isinstance(query, VectorStoreQuery):
            raise InvalidInputError(f"vector_query needs a VectorStoreQuery, got {type(query).__name__}")
        if query.query_embedding is None:
            raise InvalidInputError("vector_query needs query.query_embedding (this store does not embed text)")
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise InvalidInputError(f"vector_query supports only the default mode, got {query.mode!r}")
        if query.doc_ids is not None:
            raise InvalidInputError("vector_query does not support doc_ids (entity nodes have no ref_doc_id)")
        _check_count(query.similarity_top_k, "similarity_top_k", minimum=0)
        node_ids = _check_names(query.node_ids, "node_ids")
        compiled = compile_metadata_filters(query.filters)
        flt = conjoin({_KIND: _NODE_KIND, _TYPE: _ENTITY, _UNEMBEDDED: {"$ne": True}}, compiled.engine)
        store = self._reader()
        if store is None or query.similarity_top_k == 0 or not isinstance(flt, dict):
            return [], []
        vector = np.asarray(query.query_embedding, dtype=np.float64)
        if node_ids is None and compiled.exact:
            hits = store.search(vector, k=min(query.similarity_top_k, _MAX_SEARCH_K), namespace=self._namespace,
                                filter=flt)
            return [_node_from_memory(h.memory) for h in hits], [h.score for h in hits]
        return self._rank_exactly(store, vector, flt, compiled, node_ids, query.similarity_top_k)

    def _rank_exactly(self, store: Store, vector: np.ndarray, flt: dict[str, Any], compiled: CompiledFilters,
                      node_ids: list[str] | None, k: int) -> tuple[list[LabelledNode], list[float]]:
        """Cosine ranking over the scanned candidates (``flt`` prefilters, ``compiled`` decides)."""
        wanted = None if node_ids is None else set(node_ids)
        candidates = [m for m in store.find(flt, namespace=self._namespace)
                      if (wanted is None or m.id in wanted) and compiled.matches(m.metadata)]
        norm = float(np.linalg.norm(vector))
        if vector.ndim != 1 or vector.shape[0] != store.dim or not np.isfinite(norm) or norm == 0.0:
            raise InvalidInputError(f"query_embedding must be a finite non-zero vector of length {store.dim}")
        if not candidates:
            return [], []
        scores = np.stack([np.asarray(m.vector, dtype=np.float64) for m in candidates]) @ (vector / norm)
        order = np.argsort(-scores, kind="stable")[:k]
        return [_node_from_memory(candidates[i]) for i in order], [float(scores[i]) for i in order]

    def get_schema(self, refresh: bool = False) -> dict[str, Any]:
        """Labels, relation types, property keys with JSON types, and label-level relationships.

        Computed from the stored graph and cached until the next write (``refresh=True``
        recomputes). Keys: ``node_labels``, ``relation_types``, ``node_props``,
        ``rel_props`` (``{label: [{"property", "type"}]}``) and ``relationships``
        (``[{"start", "type", "end"}]``).
        """
        store = self._reader()
        with self._lock:
            if self._schema is None or refresh:
                self._schema = self._compute_schema(store)
            return json.loads(json.dumps(self._schema))

    def get_schema_str(self, refresh: bool = False) -> str:
        """The schema as text for prompts (node/relation properties and the relationship patterns)."""
        schema = self.get_schema(refresh=refresh)

        def props(section: dict[str, list[dict[str, str]]]) -> list[str]:
            return [f"{label} {{{', '.join(p['property'] + ': ' + p['type'] for p in entries)}}}"
                    for label, entries in section.items()]

        lines = ["Node properties:", *props(schema["node_props"]), "Relationship properties:",
                 *props(schema["rel_props"]), "The relationships:",
                 *(f"(:{r['start']})-[:{r['type']}]->(:{r['end']})" for r in schema["relationships"])]
        return "\n".join(lines)

    def _compute_schema(self, store: Store | None) -> dict[str, Any]:
        node_props: dict[str, dict[str, set[str]]] = {}
        rel_props: dict[str, dict[str, set[str]]] = {}
        patterns: set[tuple[str, str, str]] = set()
        if store is not None:
            for m in store.find({_KIND: _NODE_KIND}, namespace=self._namespace):
                _collect_types(node_props.setdefault(m.metadata[_LABEL], {}), m.metadata)
            reader = _TripletReader(store, self._namespace)
            for source, relation, target in reader.triplets(self._relation_edges(store, None)):
                _collect_types(rel_props.setdefault(relation.label, {}), relation.properties)
                patterns.add((source.label, relation.label, target.label))

        def listing(section: dict[str, dict[str, set[str]]]) -> dict[str, list[dict[str, str]]]:
            return {label: [{"property": key, "type": " | ".join(sorted(types))} for key, types in sorted(keys.items())]
                    for label, keys in sorted(section.items())}

        return {"node_labels": sorted(node_props), "relation_types": sorted(rel_props),
                "node_props": listing(node_props), "rel_props": listing(rel_props),
                "relationships": [{"start": s, "type": t, "end": e} for s, t, e in sorted(patterns)]}

    def structured_query(self, query: str, param_map: dict[str, Any] | None = None) -> Any:
        """Always raises :class:`StructuredQueryNotSupportedError`: no Cypher here."""
        raise StructuredQueryNotSupportedError(
            "T4DMPropertyGraphStore does not run Cypher or other structured queries "
            "(supports_structured_queries is False). Use get / get_triplets / get_rel_map / vector_query, "
            "or protocol_adapters.langchain.T4DMGraphStore, whose query() understands a Cypher subset.")

    # ------------------------------------------------------------------ writes
    def upsert_nodes(self, nodes: Sequence[LabelledNode]) -> None:
        """Insert or wholly replace nodes by id (atomic: all or none). The last duplicate id wins."""
        batch: dict[str, LabelledNode] = {}
        for node in _check_sequence(nodes, "nodes"):
            _check_node(node)
            batch.pop(node.id, None)
            batch[node.id] = node
        if not batch:
            return
        dim = _batch_dimension(batch.values())
        with self._lock:
            store = self._writer(dim)
            store.put_many([_node_memory(n, store.dim, self._namespace) for n in batch.values()])
            self._schema = None

    def upsert_relations(self, relations: list[Relation]) -> None:
        """Add relations (edge + property record); missing endpoints become bare entities.

        An already visible relation (same source, label, target) is left as it is, as in
        both reference stores; within one call the first duplicate wins. One atomic batch:
        the missing endpoints, the records and the edges are written together or not at all.
        """
        batch: dict[tuple[str, str, str], Relation] = {}
        for relation in _check_sequence(relations, "relations"):
            _check_relation(relation)
            batch.setdefault((relation.source_id, relation.label, relation.target_id), relation)
        if not batch:
            return
        with self._lock:
            store = self._writer(None)
            reader = _TripletReader(store, self._namespace)
            new = [r for key, r in batch.items() if reader.triplet(Edge(key[0], key[2], key[1])) is None]
            if not new:
                return
            endpoints = dict.fromkeys(i for r in new for i in (r.source_id, r.target_id))
            memories = [_node_memory(EntityNode(name=i), store.dim, self._namespace, node_id=i)
                        for i in endpoints if reader.node(i) is None]
            memories += [_relation_memory(r, store.dim, self._namespace) for r in new]
            store.write(put=memories, link=[Edge(r.source_id, r.target_id, r.label, namespace=self._namespace)
                                            for r in new])
            self._schema = None

    def delete(self, entity_names: list[str] | None = None, relation_names: list[str] | None = None,
               properties: dict | None = None, ids: list[str] | None = None) -> None:
        """Delete the entities named, the nodes with ``ids``, the nodes matching all ``properties``
        (each with its relations) and the relations labelled ``relation_names``, in one atomic batch."""
        _check_properties(properties, "properties")
        names = _check_names(entity_names, "entity_names")
        labels = _check_names(relation_names, "relation_names")
        id_list = _check_names(ids, "ids")
        with self._lock:
            store = self._reader()
            if store is None:
                return
            doomed: dict[str, None] = {}
            if names:
                doomed.update((_memory_id(m), None) for m in self._match_nodes(store, entity_names=names))
            if id_list:
                doomed.update((_memory_id(m), None) for m in self._match_nodes(store, ids=id_list))
            if properties:
                doomed.update((_memory_id(m), None) for m in self._match_nodes(store, properties=properties))
            edges = [e for i in doomed for e in store.edges(i, namespace=self._namespace, direction="both")]
            labelled = self._relation_edges(store, labels) if labels else []
            records = dict.fromkeys(_relation_id(e.src, e.type, e.dst) for e in [*edges, *labelled])
            if not doomed and not records:
                return
            # deleting a node removes its edges (engine); unlink only the other labelled relations' edges
            unlink = [e for e in labelled if e.src not in doomed and e.dst not in doomed]
            store.write(delete=[*doomed, *records], unlink=unlink, namespace=self._namespace)
            self._schema = None

    # ------------------------------------------------------------------ helpers
    def _match_nodes(self, store: Store, *, ids: list[str] | None = None, properties: dict | None = None,
                     entity_names: list[str] | None = None) -> list[Memory]:
        """Current node memories matching every given criterion (ids order when only ids are given)."""
        if ids and not properties and not entity_names:
            got = store.get_many([i for i in dict.fromkeys(ids) if _storable_id(i)], namespace=self._namespace)
            return [m for m in got if m is not None and m.metadata.get(_KIND) == _NODE_KIND]
        flt: dict[str, Any] = {_KIND: _NODE_KIND}
        residual: dict[str, Any] = {}
        for key, value in (properties or {}).items():
            if _filterable_key(key):
                flt[key] = {"$eq": value}
            else:
                residual[key] = value
        if entity_names:
            flt[_TYPE] = _ENTITY
            flt[_NAME] = {"$in": list(entity_names)}
        found = store.find(flt, namespace=self._namespace)
        if ids:
            wanted = set(ids)
            found = [m for m in found if m.id in wanted]
        return [m for m in found if all(key in m.metadata and _json_same(m.metadata[key], value)
                                        for key, value in residual.items())]

    def _relation_edges(self, store: Store, labels: list[str] | None) -> list[Edge]:
        """Edges of the relations whose records are current (all labels when ``labels`` is None)."""
        flt: dict[str, Any] = {_KIND: _RELATION_KIND}
        if labels is not None:
            flt[_LABEL] = {"$in": list(labels)}
        return [Edge(m.metadata[_SOURCE], m.metadata[_TARGET], m.metadata[_LABEL], namespace=self._namespace)
                for m in store.find(flt, namespace=self._namespace)]

    # ------------------------------------------------------------------ async twins
    async def aget(self, properties: dict | None = None, ids: list[str] | None = None) -> list[LabelledNode]:
        """Async :meth:`get` (runs in a worker thread)."""
        return await run_in_thread(self.get, properties, ids)

    async def aget_triplets(self, entity_names: list[str] | None = None, relation_names: list[str] | None = None,
                            properties: dict | None = None, ids: list[str] | None = None) -> list[Triplet]:
        """Async :meth:`get_triplets` (runs in a worker thread)."""
        return await run_in_thread(self.get_triplets, entity_names, relation_names, properties, ids)

    async def aget_rel_map(self, graph_nodes: list[LabelledNode], depth: int = 2, limit: int = 30,
                           ignore_rels: list[str] | None = None) -> list[Triplet]:
        """Async :meth:`get_rel_map` (runs in a worker thread)."""
        return await run_in_thread(self.get_rel_map, graph_nodes, depth, limit, ignore_rels)

    async def aget_llama_nodes(self, node_ids: list[str]) -> list[BaseNode]:
        """Async ``get_llama_nodes`` (runs in a worker thread)."""
        return await run_in_thread(self.get_llama_nodes, node_ids)

    async def aupsert_nodes(self, nodes: list[LabelledNode]) -> None:
        """Async :meth:`upsert_nodes` (runs in a worker thread)."""
        await run_in_thread(self.upsert_nodes, nodes)

    async def aupsert_relations(self, relations: list[Relation]) -> None:
        """Async :meth:`upsert_relations` (runs in a worker thread)."""
        await run_in_thread(self.upsert_relations, relations)

    async def adelete(self, entity_names: list[str] | None = None, relation_names: list[str] | None = None,
                      properties: dict | None = None, ids: list[str] | None = None) -> None:
        """Async :meth:`delete` (runs in a worker thread)."""
        await run_in_thread(self.delete, entity_names, relation_names, properties, ids)

    async def adelete_llama_nodes(self, node_ids: list[str] | None = None,
                                  ref_doc_ids: list[str] | None = None) -> None:
        """Async ``delete_llama_nodes`` (runs in a worker thread)."""
        await run_in_thread(self.delete_llama_nodes, node_ids, ref_doc_ids)

    async def astructured_query(self, query: str, param_map: dict[str, Any] | None = None) -> Any:
        """Async :meth:`structured_query`: always raises :class:`StructuredQueryNotSupportedError`."""
        return self.structured_query(query, param_map)

    async def avector_query(self, query: VectorStoreQuery,
                            **kwargs: Any) -> tuple[list[LabelledNode], list[float]]:
        """Async :meth:`vector_query` (runs in a worker thread)."""
        return await run_in_thread(self.vector_query, query, **kwargs)

    async def aget_schema(self, refresh: bool = False) -> Any:
        """Async :meth:`get_schema` (runs in a worker thread)."""
        return await run_in_thread(self.get_schema, refresh)

    async def aget_schema_str(self, refresh: bool = False) -> str:
        """Async :meth:`get_schema_str` (runs in a worker thread)."""
        return await run_in_thread(self.get_schema_str, refresh)


class _TripletReader:
    """Builds triplets from edges for one read, caching node lookups; skips invisible relations."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._namespace = namespace
        self._nodes: dict[str, LabelledNode | None] = {}
        self._out_edges: dict[str, set[tuple[str, str]]] = {}

    def node(self, node_id: str) -> LabelledNode | None:
        if node_id not in self._nodes:
            memory = self._store.get(node_id, namespace=self._namespace) if _storable_id(node_id) else None
            self._nodes[node_id] = (_node_from_memory(memory) if memory is not None
                                    and memory.metadata.get(_KIND) == _NODE_KIND else None)
        return self._nodes[node_id]

    def triplet(self, edge: Edge) -> Triplet | None:
        """The triplet for ``edge`` if the relation is visible (record, edge and both endpoints current)."""
        source, target = self.node(edge.src), self.node(edge.dst)
        if source is None or target is None:
            return None
        record = self._store.get(_relation_id(edge.src, edge.type, edge.dst), namespace=self._namespace)
        if record is None or record.metadata.get(_KIND) != _RELATION_KIND:
            return None
        if edge.src not in self._out_edges:
            self._out_edges[edge.src] = {(e.dst, e.type) for e in
                                         self._store.edges(edge.src, namespace=self._namespace, direction="out")}
        if (edge.dst, edge.type) not in self._out_edges[edge.src]:
            return None
        relation = Relation(label=edge.type, source_id=edge.src, target_id=edge.dst,
                            properties=_user_properties(record.metadata))
        return source, relation, target

    def triplets(self, edges: Iterable[Edge]) -> list[Triplet]:
        """Visible triplets for ``edges`` in order, each relation once."""
        seen: set[tuple[str, str, str]] = set()
        out: list[Triplet] = []
        for edge in edges:
            key = (edge.src, edge.type, edge.dst)
            if key in seen:
                continue
            seen.add(key)
            triplet = self.triplet(edge)
            if triplet is not None:
                out.append(triplet)
        return out


# ---------------------------------------------------------------------- conversions
def _node_memory(node: LabelledNode, dim: int, namespace: str, node_id: str | None = None) -> Memory:
    """The memory that stores ``node`` under ``node_id`` (default ``node.id``): text, vector or
    stand-in, label and properties in metadata."""
    memory_id = node.id if node_id is None else node_id
    meta: dict[str, Any] = dict(node.properties)
    meta[_KIND] = _NODE_KIND
    meta[_LABEL] = node.label
    if isinstance(node, ChunkNode):
        meta[_TYPE] = _CHUNK
        text = node.text
    else:
        assert isinstance(node, EntityNode)
        meta[_TYPE] = _ENTITY
        meta[_NAME] = node.name
        text = f"{node.label}: {node.name}"
    if node.embedding is None:
        meta[_UNEMBEDDED] = True
        vector = stand_in_vector(memory_id, dim)
    else:
        vector = np.asarray(node.embedding, dtype=np.float64)
    return Memory(text=text, id=memory_id, namespace=namespace, vector=vector, metadata=meta)


def _node_from_memory(memory: Memory) -> LabelledNode:
    meta = memory.metadata
    embedding = None if meta.get(_UNEMBEDDED) or memory.vector is None else memory.vector.tolist()
    properties = _user_properties(meta)
    if meta[_TYPE] == _CHUNK:
        return ChunkNode(text=memory.text or "", id_=memory.id, label=meta[_LABEL], properties=properties,
                         embedding=embedding)
    return EntityNode(name=meta[_NAME], label=meta[_LABEL], properties=properties, embedding=embedding)


def _relation_id(source: str, label: str, target: str) -> str:
    digest = hashlib.blake2b(json.dumps([source, label, target]).encode("utf-8"), digest_size=16).hexdigest()
    return _RELATION_ID_PREFIX + digest


def _relation_memory(relation: Relation, dim: int, namespace: str) -> Memory:
    rid = _relation_id(relation.source_id, relation.label, relation.target_id)
    meta = {**relation.properties, _KIND: _RELATION_KIND, _LABEL: relation.label, _SOURCE: relation.source_id,
            _TARGET: relation.target_id, _UNEMBEDDED: True}
    return Memory(text=f"{relation.source_id} -[{relation.label}]-> {relation.target_id}", id=rid,
                  namespace=namespace, vector=stand_in_vector(rid, dim), metadata=meta)


def _memory_id(memory: Memory) -> str:
    assert memory.id is not None  # the engine always returns stored memories with their id
    return memory.id


def _user_properties(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}


def _collect_types(keys: dict[str, set[str]], properties: dict[str, Any]) -> None:
    for key, value in properties.items():
        if not key.startswith(RESERVED_PREFIX):
            keys.setdefault(key, set()).add(next((name for kind, name in _JSON_TYPES if isinstance(value, kind)),
                                                 "NULL"))


# ---------------------------------------------------------------------- validation
def _check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str) or not namespace or len(namespace) > 128 \
            or any(ord(c) < 32 for c in namespace):
        raise InvalidNamespaceError(
            f"namespace must be a non-empty string of at most 128 characters without control characters, "
            f"got {namespace!r}")
    return namespace


def _check_sequence(items: object, what: str) -> list[Any]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInputError(f"{what} must be a list, got {type(items).__name__}")
    return list(items)


def _check_names(names: object, what: str) -> list[str] | None:
    """``None`` or a list of strings (a falsy value means "not given", as in the reference stores)."""
    if names is None:
        return None
    values = _check_sequence(names, what)
    if not all(isinstance(n, str) for n in values):
        raise InvalidInputError(f"{what} must contain only strings")
    return values


def _check_properties(properties: object, what: str) -> None:
    if properties is None:
        return
    if not isinstance(properties, dict):
        raise InvalidInputError(f"{what} must be a dict, got {type(properties).__name__}")
    for key, value in properties.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"{what}: keys must be strings, got {key!r}")
        if key.startswith(RESERVED_PREFIX):
            raise InvalidInputError(f"{what}: keys starting with {RESERVED_PREFIX!r} are reserved ({key!r})")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{what}: value of {key!r} is not JSON") from None


def _check_node(node: object) -> None:
    if not isinstance(node, (EntityNode, ChunkNode)):
        raise InvalidInputError(f"nodes must be EntityNode or ChunkNode, got {type(node).__name__}")
    _check_node_id(node.id, "node id")
    _check_properties(node.properties, f"properties of node {node.id!r}")


def _check_relation(relation: object) -> None:
    if not isinstance(relation, Relation):
        raise InvalidInputError(f"relations must be Relation, got {type(relation).__name__}")
    if not isinstance(relation.label, str) or not relation.label:
        raise InvalidInputError("a relation label must be a non-empty string")
    _check_node_id(relation.source_id, "relation source_id")
    _check_node_id(relation.target_id, "relation target_id")
    _check_properties(relation.properties, f"properties of relation {relation.label!r}")


def _check_node_id(node_id: object, what: str) -> None:
    if not isinstance(node_id, str) or not _storable_id(node_id):
        raise InvalidInputError(
            f"{what} must be a non-empty string of at most {_MAX_ID_LEN} characters not starting with "
            f"{RESERVED_PREFIX!r}, got {node_id!r}")


def _check_count(value: object, what: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{what} must be an integer >= {minimum}, got {value!r}")


def _batch_dimension(nodes: Iterable[LabelledNode]) -> int | None:
    """The embedding length shared by the nodes that have one (None if none has)."""
    lengths = {len(n.embedding) for n in nodes if n.embedding is not None}
    if len(lengths) > 1:
        raise t4dm_core.DimensionMismatchError(f"embeddings of different lengths in one batch: {sorted(lengths)}")
    return lengths.pop() if lengths else None


def _storable_id(node_id: str) -> bool:
    return 0 < len(node_id) <= _MAX_ID_LEN and not node_id.startswith(RESERVED_PREFIX)


def _filterable_key(key: str) -> bool:
    """Whether the engine filter can address ``key`` directly (no dots, no leading ``$``)."""
    return bool(key) and "." not in key and not key.startswith("$")


def _json_same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
