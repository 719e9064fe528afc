"""LangChain ``GraphStore`` over a T4DM store, with Neo4j's import semantics and a Cypher subset.

Storage layout (namespace ``graph`` by default):

* A **node** is one memory. Its id is the JSON text ``["<type>", <id>]`` (node identity is
  ``(type, id)`` as in Neo4j's MERGE; an int id stays an int). Its metadata is the node's
  properties (``id`` included) plus the reserved ``_t4dm_kind: "graph_node"`` and
  ``_t4dm_labels``. Its text is a readable rendering (``"Person Keanu Reeves; born: 1964"``; a
  source ``Document`` node's text is the page content), embedded with ``embedding`` or the
  store's embedder, so nodes are found by ``store.search(query, namespace=...,
  filter={"_t4dm_kind": "graph_node"})``. Without any embedder a node gets
  ``_common.stand_in_vector`` and ``_t4dm_unembedded: true``.
* A **relationship** is an engine edge between the two node memories (edge type = the
  relationship type), plus one record memory (``_t4dm_kind: "graph_relationship"``,
  stand-in vector, ``_t4dm_unembedded: true``) that holds its properties. There is at most
  one relationship per (start, type, end), as with Neo4j's MERGE.

Write semantics of :meth:`T4DMGraphStore.add_graph_documents`: everything is validated
before anything is written, then the changed node and relationship records and the missing
edges of one call are one atomic engine batch: after an error or a crash either the whole
call is visible or none of it. Every write is an idempotent upsert (a call that changes
nothing writes nothing). Writes through one store are serialised.

``query`` runs the read-only Cypher subset of :mod:`._cypher` against the current state,
read through the engine (so several adapters on one store see each other's writes); it is
not a snapshot, so a query that runs while ``add_graph_documents`` writes may see part of it.
Cost: one metadata scan of the namespace per unbound pattern anchor, then one adjacency
lookup per reached node (see :mod:`._cypher_eval`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_community.graphs.graph_document import GraphDocument, Node
from langchain_community.graphs.graph_store import GraphStore
from langchain_core.embeddings import Embeddings

from protocol_adapters._common import StoreBacked, StoreHandle, stand_in_vector
from protocol_adapters.langchain._cypher import (
    CypherError,
    CypherSyntaxError,
    NodeRef,
    RelRef,
    UnsupportedCypherError,
    run,
)
from t4dm_core import Edge, InvalidInputError, Memory, Store

__all__ = ["BASE_ENTITY_LABEL", "CypherError", "CypherSyntaxError", "T4DMGraphStore", "UnsupportedCypherError"]

BASE_ENTITY_LABEL = "__Entity__"
EXCLUDED_LABELS = frozenset({BASE_ENTITY_LABEL, "__KGBuilder__"})
RESERVED_PREFIX = "_t4dm_"
NODE_KIND = "graph_node"
REL_KIND = "graph_relationship"
MAX_ID_LEN = 512
_FILTERABLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WRITE_LOCKS = tuple(threading.Lock() for _ in range(16))


class T4DMGraphStore(StoreBacked, GraphStore):
    """A LangChain ``GraphStore`` (``GraphCypherQAChain`` works on it) backed by a T4DM store.

    Args:
        path: store directory to open (``None`` with no ``store`` = a temporary store deleted
            on :meth:`close`). Opened with ``embedding`` as the store's embedder, or the
            store's recorded embedder (the packaged MiniLM model for a new store).
        store: an open ``t4dm_core.Store`` to share; the caller closes it.
        namespace: where nodes and relationship records live.
        embedding: a LangChain ``Embeddings`` for node texts (overrides the store's embedder).

    Thread-safety: every method may be called from several threads; writes through one store
    are serialised. ``get_schema``/``get_structured_schema`` return the schema computed by
    the last :meth:`refresh_schema` (run at construction and after every
    :meth:`add_graph_documents`).

    Raises:
        InvalidInputError: both ``path`` and ``store``, or a bad namespace (a store the
            adapter opened is closed again).
        DimensionMismatchError: ``embedding`` and a shared ``store`` disagree on dimension.
    """

    def __init__(self, *, path: str | os.PathLike[str] | None = None, store: Store | None = None,
                 namespace: str = "graph", embedding: Embeddings | None = None) -> None:
        dim = len(embedding.embed_query("dimension probe")) if store is not None and embedding is not None else None
        self._handle = StoreHandle(path=path, store=store, dim=dim, embedder=embedding)
        self._store = self._handle.store
        self._namespace = namespace
        self._embedding = embedding
        self._schema_lock = threading.Lock()
        self._structured: dict[str, Any] = {}
        self._schema_text = ""
        try:
            self.refresh_schema()
        except BaseException:
            self._handle.close()
            raise

    # ------------------------------------------------------------------ schema
    @property
    def get_schema(self) -> str:
        """The schema as Neo4jGraph formats it (``Node properties:`` / ``Relationship properties:`` /
        ``The relationships:``)."""
        return self._schema_text

    @property
    def get_structured_schema(self) -> dict[str, Any]:
        """``{"node_props", "rel_props", "relationships", "metadata"}`` in Neo4jGraph's format (a copy).

        Labels, properties and relationship triples are sorted; a property whose values have
        several types across nodes of one label is listed once per type. ``__Entity__`` and
        ``__KGBuilder__`` are left out. ``metadata`` lists no constraints or indexes (the
        engine has none).
        """
        with self._schema_lock:
            return copy.deepcopy(self._structured)

    @property
    def schema(self) -> str:
        """Alias of :attr:`get_schema` (Neo4jGraph's attribute name)."""
        return self.get_schema

    @property
    def structured_schema(self) -> dict[str, Any]:
        """Alias of :attr:`get_structured_schema` (Neo4jGraph's attribute name)."""
        return self.get_structured_schema

    def refresh_schema(self) -> None:
        """Recompute the schema from the stored graph (one metadata scan of the namespace)."""
        records = self._store.find({"_t4dm_kind": {"$in": [NODE_KIND, REL_KIND]}}, namespace=self._namespace)
        labels_of: dict[str, list[str]] = {}
        node_props: dict[str, set[tuple[str, str]]] = {}
        rel_props: dict[str, set[tuple[str, str]]] = {}
        for memory in records:
            if memory.metadata["_t4dm_kind"] == NODE_KIND:
                labels = [label for label in memory.metadata["_t4dm_labels"] if label not in EXCLUDED_LABELS]
                labels_of[str(memory.id)] = labels
                for label in labels:
                    node_props.setdefault(label, set()).update(_typed_props(memory.metadata))
        triples: set[tuple[str, str, str]] = set()
        for memory in records:
            meta = memory.metadata
            if meta["_t4dm_kind"] == REL_KIND:
                rel_type = meta["_t4dm_type"]
                typed = _typed_props(meta)
                if typed:
                    rel_props.setdefault(rel_type, set()).update(typed)
                for start in labels_of.get(meta["_t4dm_start"], []):
                    triples.update((start, rel_type, end) for end in labels_of.get(meta["_t4dm_end"], []))
        structured = {
            "node_props": {label: _prop_list(node_props[label]) for label in sorted(node_props)},
            "rel_props": {rel: _prop_list(rel_props[rel]) for rel in sorted(rel_props)},
            "relationships": [{"start": s, "type": t, "end": e} for s, t, e in sorted(triples)],
            "metadata": {"constraint": [], "index": []},
        }
        text = _format_schema(structured)
        with self._schema_lock:
            self._structured, self._schema_text = structured, text

    # ------------------------------------------------------------------ query
    def query(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read-only Cypher query; one dict per row keyed by the RETURN columns.

        Nodes come back as dicts of their properties, relationships as
        ``(start properties, type, end properties)``, like the Neo4j driver's ``data()``.

        Raises:
            CypherSyntaxError: malformed query (with line and column).
            UnsupportedCypherError: a clause or construct outside the subset, named in the
                message (CREATE, MERGE, SET, DELETE, OPTIONAL MATCH, WITH, UNWIND, CALL, ...).
            CypherError: a missing parameter or a run-time type error.
        """
        return run(query, {} if params is None else params, _StoreView(self._store, self._namespace))

    # ------------------------------------------------------------------ writes
    def add_graph_documents(self, graph_documents: list[GraphDocument], include_source: bool = False,
                            baseEntityLabel: bool = False) -> None:
        """Upsert the nodes and relationships of ``graph_documents`` (Neo4jGraph's semantics).

        Nodes are merged by ``(type, id)`` and relationships by (start, type, end); properties
        are merged into existing ones (a ``None`` value removes the property, as
        ``SET n += map`` does). Relationship types are normalised with
        ``type.replace(" ", "_").upper()``; backticks are removed from labels and types.
        ``include_source`` adds a ``Document`` node (id = ``source.metadata["id"]`` or the MD5
        of ``page_content``; properties ``text`` and the metadata) with a ``MENTIONS``
        relationship to each node of the document. ``baseEntityLabel`` adds the label
        ``__Entity__`` to the document's nodes. As in Neo4jGraph, a computed document id is
        written back into ``source.metadata["id"]``. The whole call is one atomic engine
        batch: after an error or a crash either all of it is stored or none of it.

        Raises:
            InvalidInputError: not a list of GraphDocument, an unsupported property value
                (only str, int, float, bool, None and flat lists of one of those), a property
                key starting with ``_t4dm_``, an ``id`` property that differs from the node's
                id, or an id too long for the engine. Nothing is written.
        """
        plan = _plan(graph_documents, include_source, baseEntityLabel)
        with _WRITE_LOCKS[hash((self._store.path, self._namespace)) % len(_WRITE_LOCKS)]:
            self._write(plan)
        for document, doc_id in plan.document_ids:
            if not document.source.metadata.get("id"):
                document.source.metadata["id"] = doc_id
        self.refresh_schema()

    def _write(self, plan: _Plan) -> None:
        stored: dict[str, Memory | None] = {}

        def fetch(key: str) -> Memory | None:
            if key not in stored:
                stored[key] = self._store.get(key, namespace=self._namespace)
            return stored[key]

        nodes: dict[str, tuple[list[str], dict[str, Any]]] = {}
        for key, labels, props in plan.nodes:
            if key not in nodes:
                memory = fetch(key)
                known = memory is not None and memory.metadata.get("_t4dm_kind") == NODE_KIND
                nodes[key] = (list(memory.metadata["_t4dm_labels"]), _user_props(memory.metadata)) \
                    if known and memory is not None else ([], {})
            current_labels, current_props = nodes[key]
            nodes[key] = (current_labels + [label for label in labels if label not in current_labels],
                          _merge(current_props, props))
        rels: dict[tuple[str, str, str], dict[str, Any]] = {}
        for triple, props in plan.rels:
            if triple not in rels:
                memory = fetch(_rel_key(*triple))
                rels[triple] = {} if memory is None else _user_props(memory.metadata)
            rels[triple] = _merge(rels[triple], props)
        node_records = [(key, _render_node(labels, props), {**props, "_t4dm_kind": NODE_KIND, "_t4dm_labels": labels})
                        for key, (labels, props) in nodes.items()]
        rel_records = [(_rel_key(*triple), _render_rel(triple), {
            **props, "_t4dm_kind": REL_KIND, "_t4dm_start": triple[0], "_t4dm_type": triple[1],
            "_t4dm_end": triple[2], "_t4dm_unembedded": True}) for triple, props in rels.items()]
        changed_nodes = [r for r in node_records if _changed(fetch(r[0]), r[1], r[2])]
        changed_rels = [r for r in rel_records if _changed(fetch(r[0]), r[1], r[2])]
        memories = self._node_memories(changed_nodes) + [
            Memory(text=text, id=key, namespace=self._namespace, metadata=meta,
                   vector=stand_in_vector(key, self._store.dim)) for key, text, meta in changed_rels]
        linked = {start: {(e.dst, e.type) for e in self._store.edges(start, namespace=self._namespace)}
                  for start in {start for start, _, _ in rels}}
        links = [Edge(start, end, rel_type, namespace=self._namespace) for start, rel_type, end in rels
                 if (end, rel_type) not in linked[start]]
        self._store.write(put=memories, link=links)

    def _node_memories(self, records: list[tuple[str, str, dict[str, Any]]]) -> list[Memory]:
        texts = [text for _, text, _ in records]
        vectors: list[np.ndarray | None]
        if self._embedding is not None:
            vectors = [np.asarray(v, dtype=np.float32) for v in self._embedding.embed_documents(texts)] \
                if texts else []
        elif self._store.embedder is not None:
            vectors = [None] * len(records)
        else:
            vectors = [stand_in_vector(key, self._store.dim) for key, _, _ in records]
            records = [(key, text, {**meta, "_t4dm_unembedded": True}) for key, text, meta in records]
        return [Memory(text=text, id=key, namespace=self._namespace, metadata=meta, vector=vector)
                for (key, text, meta), vector in zip(records, vectors, strict=True)]


# ---------------------------------------------------------------------- planning (pure)
@dataclass
class _Plan:
    """Validated writes in input order: node upserts, relationship upserts, document ids."""

    nodes: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)
    rels: list[tuple[tuple[str, str, str], dict[str, Any]]] = field(default_factory=list)
    document_ids: list[tuple[GraphDocument, Any]] = field(default_factory=list)


def _plan(graph_documents: Sequence[GraphDocument], include_source: bool, base_label: bool) -> _Plan:
    if isinstance(graph_documents, GraphDocument) or not isinstance(graph_documents, Sequence):
        raise InvalidInputError("graph_documents must be a list of GraphDocument")
    plan = _Plan()
    for d, document in enumerate(graph_documents):
        where = f"graph_documents[{d}]"
        if not isinstance(document, GraphDocument):
            raise InvalidInputError(f"{where} is a {type(document).__name__}, not a GraphDocument")
        source = document.source
        doc_id = source.metadata.get("id") or hashlib.md5(source.page_content.encode("utf-8"),
                                                          usedforsecurity=False).hexdigest()
        plan.document_ids.append((document, doc_id))
        doc_key = ""
        if include_source:
            doc_props = _checked_props({"text": source.page_content, **source.metadata, "id": doc_id},
                                       f"{where}.source.metadata")
            doc_key = _node_key("Document", doc_id, f"{where}.source")
            plan.nodes.append((doc_key, ["Document"], doc_props))
        extra = [BASE_ENTITY_LABEL] if base_label else []
        for n, node in enumerate(document.nodes):
            key, label = _node_identity(node, f"{where}.nodes[{n}]")
            props = _checked_props(node.properties, f"{where}.nodes[{n}].properties")
            if "id" in props and not _same_value(props["id"], node.id):
                raise InvalidInputError(f"{where}.nodes[{n}]: property 'id' ({props['id']!r}) differs from the "
                                        f"node id ({node.id!r})")
            plan.nodes.append((key, [label, *extra], {"id": node.id, **props}))
            if include_source:
                plan.rels.append(((doc_key, "MENTIONS", key), {}))
        for r, rel in enumerate(document.relationships):
            here = f"{where}.relationships[{r}]"
            rel_type = _clean_label(str(rel.type).replace(" ", "_").upper(), f"{here}.type")
            ends = []
            for role, node in (("source", rel.source), ("target", rel.target)):
                key, label = _node_identity(node, f"{here}.{role}")
                plan.nodes.append((key, [label, *extra], {"id": node.id}))
                ends.append(key)
            plan.rels.append(((ends[0], rel_type, ends[1]), _checked_props(rel.properties, f"{here}.properties")))
    return plan


def _node_identity(node: Node, where: str) -> tuple[str, str]:
    if not isinstance(node, Node):
        raise InvalidInputError(f"{where} is a {type(node).__name__}, not a Node")
    if isinstance(node.id, bool) or not isinstance(node.id, str | int):
        raise InvalidInputError(f"{where}: a node id must be a str or an int, got {node.id!r}")
    label = _clean_label(node.type, f"{where}.type")
    return _node_key(label, node.id, where), label


def _clean_label(raw: Any, where: str) -> str:
    label = raw.replace("`", "") if isinstance(raw, str) else ""
    if not label:
        raise InvalidInputError(f"{where}: a label or relationship type must be a non-empty string, got {raw!r}")
    return label


def _node_key(label: str, node_id: Any, where: str) -> str:
    key = json.dumps([label, node_id], ensure_ascii=False)
    if len(key) > MAX_ID_LEN:
        raise InvalidInputError(f"{where}: the node's type and id are too long to store ({len(key)} characters "
                                f"as {key[:40]}...; at most {MAX_ID_LEN})")
    return key


def _rel_key(start: str, rel_type: str, end: str) -> str:
    digest = hashlib.blake2b(json.dumps([start, rel_type, end]).encode("utf-8"), digest_size=16).hexdigest()
    return f"rel:{digest}"


def _checked_props(props: Any, where: str) -> dict[str, Any]:
    """Neo4j-storable properties: str keys; str/int/float/bool/None or a flat list of one type."""
    if not isinstance(props, Mapping):
        raise InvalidInputError(f"{where} must be a dict, got {type(props).__name__}")
    for key, value in props.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"{where}: property names must be non-empty strings, got {key!r}")
        if key.startswith(RESERVED_PREFIX):
            raise InvalidInputError(f"{where}: property {key!r} uses the reserved prefix {RESERVED_PREFIX!r}")
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len({type(v) for v in value}) > 1:
            raise InvalidInputError(f"{where}: property {key!r} mixes types in a list (Neo4j lists are homogeneous)")
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise InvalidInputError(f"{where}: property {key!r} is NaN or infinite")
            if not (item is None and not isinstance(value, list)) and not isinstance(item, str | int | float):
                raise InvalidInputError(f"{where}: property {key!r} has a {type(item).__name__} value; properties "
                                        "are str, int, float, bool, None or a flat list of one of those")
    return dict(props)


def _changed(memory: Memory | None, text: str, meta: dict[str, Any]) -> bool:
    """Whether writing (text, meta) would change the stored record (the vector flag aside)."""
    if memory is None or memory.text != text:
        return True
    return _without_flag(memory.metadata) != _without_flag(meta)


def _without_flag(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k != "_t4dm_unembedded"}


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``SET n += update``: overwrite, and remove keys whose new value is None."""
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v is not None}


def _user_props(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}


def _render_node(labels: list[str], props: dict[str, Any]) -> str:
    if "Document" in labels and isinstance(props.get("text"), str):
        return str(props["text"])
    details = "; ".join(f"{k}: {v}" for k, v in props.items() if k != "id")
    head = f"{labels[0]} {props.get('id')}"
    return f"{head}; {details}" if details else head


def _render_rel(triple: tuple[str, str, str]) -> str:
    start, rel_type, end = triple
    return f"{json.loads(start)[1]} {rel_type} {json.loads(end)[1]}"


# ---------------------------------------------------------------------- schema helpers
def _neo4j_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, list):
        return "LIST"
    return "STRING"


def _typed_props(metadata: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(k, _neo4j_type(v)) for k, v in _user_props(metadata).items()}


def _prop_list(typed: set[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"property": name, "type": kind} for name, kind in sorted(typed)]


def _format_schema(structured: dict[str, Any]) -> str:
    def block(entries: dict[str, list[dict[str, str]]]) -> str:
        lines = []
        for name, props in entries.items():
            listed = ", ".join(f"{p['property']}: {p['type']}" for p in props)
            lines.append(f"{name} {{{listed}}}")
        return "\n".join(lines)
    relationships = "\n".join(f"(:{r['start']})-[:{r['type']}]->(:{r['end']})" for r in structured["relationships"])
    return "\n".join(["Node properties:", block(structured["node_props"]), "Relationship properties:",
                      block(structured["rel_props"]), "The relationships:", relationships])


# ---------------------------------------------------------------------- query view
class _StoreView:
    """The evaluator's window on the store, with per-query caches (one instance per query)."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._namespace = namespace
        self._nodes: dict[str, NodeRef | None] = {}
        self._rel_props: dict[RelRef, dict[str, Any]] = {}

    def scan(self, labels: tuple[str, ...], props: Mapping[str, Any]) -> Iterator[NodeRef]:
        flt: dict[str, Any] = {"_t4dm_kind": NODE_KIND}
        if labels:
            flt["_t4dm_labels"] = {"$all": list(labels)}
        for key, value in props.items():  # push simple equalities down; the evaluator re-checks
            if _FILTERABLE_KEY.match(key) and isinstance(value, str | int | float):
                flt[key] = {"$eq": value}
        for memory in self._store.find(flt, namespace=self._namespace):
            yield self._remember(memory)

    def node(self, key: str) -> NodeRef | None:
        if key not in self._nodes:
            memory = self._store.get(key, namespace=self._namespace)
            ok = memory is not None and memory.metadata.get("_t4dm_kind") == NODE_KIND
            self._nodes[key] = self._remember(memory) if ok and memory is not None else None
        return self._nodes[key]

    def relationships(self, node: NodeRef, direction: str, types: tuple[str, ...]) -> Iterator[RelRef]:
        for edge in self._store.edges(node.key, namespace=self._namespace, direction=direction):
            if not types or edge.type in types:
                yield RelRef(edge.src, edge.type, edge.dst)

    def rel_props(self, rel: RelRef) -> Mapping[str, Any]:
        if rel not in self._rel_props:
            memory = self._store.get(_rel_key(rel.src, rel.type, rel.dst), namespace=self._namespace)
            self._rel_props[rel] = {} if memory is None else _user_props(memory.metadata)
        return self._rel_props[rel]

    def _remember(self, memory: Memory) -> NodeRef:
        key = str(memory.id)
        ref = NodeRef(key, tuple(memory.metadata["_t4dm_labels"]), _user_props(memory.metadata))
        self._nodes[key] = ref
        return ref
