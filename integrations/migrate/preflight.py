"""Checks an import runs before it writes anything, and the opening of the target store.

* :func:`check_mapping`: every label, relationship type, property, collection and named
  vector the mapping names exists in the legacy stores (else one :class:`MappingError`
  listing them all, with what is there instead).
* :func:`collection_dims`: the dimension of the vector imported from each collection.
* :func:`open_target_store`: the vector dimension agrees with an existing store (else
  :class:`VectorShapeError`), then the store is opened — created only when every check passed.

Dimension of a new store: the Qdrant vectors' (all imported collections must agree); with no
Qdrant source, the embedder's (the packaged MiniLM by default), or ``dim`` with ``embedder="none"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import t4dm_core
from integrations.errors import MappingError, MigrationError, VectorShapeError
from integrations.mapping import Mapping
from integrations.migrate.neo4j_reader import GraphSchema
from integrations.migrate.qdrant_reader import QdrantReader
from t4dm_core import Options, Store

__all__ = ["EMBEDDER_CHOICES", "check_mapping", "collection_dims", "open_target_store", "resolve_collections"]

EMBEDDER_CHOICES = ("auto", "none", "minilm")
_DEFAULT_WEIGHT = "weight"
_DEFAULT_KEY = "id"


def resolve_collections(mapping: Mapping, qdrant: QdrantReader | None, requested: Sequence[str]) -> list[str]:
    """The collections to import: ``requested`` (each must exist), else every collection of the server."""
    if qdrant is None:
        if requested:
            raise MigrationError(f"collections {sorted(requested)} requested but no Qdrant source was given")
        return []
    available = qdrant.collections()
    missing = sorted(set(requested) - set(available))
    if missing:
        raise MappingError(f"Qdrant {qdrant.location} has no collection(s) {missing}; it has {available}")
    return sorted(requested) if requested else available


def check_mapping(mapping: Mapping, schema: GraphSchema, qdrant: QdrantReader | None,
                  collections: Sequence[str]) -> None:
    """Raise :class:`MappingError` naming every label/type/property/collection/vector that exists nowhere."""
    problems: list[str] = []
    for rule in mapping.nodes:
        if rule.label is not None and rule.label not in schema.labels:
            problems.append(f"label {rule.label!r} (labels present: {sorted(schema.labels)})")
        named = list(rule.named_properties()) + ([rule.key] if rule.key != _DEFAULT_KEY else [])
        problems.extend(f"node property {p!r} (rule for label {rule.label!r})"
                        for p in named if p not in schema.property_keys)
    for rel_rule in mapping.relationships:
        if rel_rule.type is not None and rel_rule.type not in schema.relationship_types:
            problems.append(f"relationship type {rel_rule.type!r} (types present: {sorted(schema.relationship_types)})")
        if rel_rule.weight not in (None, _DEFAULT_WEIGHT) and rel_rule.weight not in schema.property_keys:
            problems.append(f"relationship property {rel_rule.weight!r} (rule for type {rel_rule.type!r})")
    available = qdrant.collections() if qdrant is not None else []
    for point_rule in mapping.points:
        if point_rule.collection is not None and point_rule.collection not in available:
            where = f"Qdrant {qdrant.location}" if qdrant is not None else "no Qdrant source given"
            problems.append(f"collection {point_rule.collection!r} ({where}; collections present: {available})")
    if qdrant is not None:
        for collection in collections:
            wanted = mapping.point_rule(collection).vector
            if wanted is not None:
                sizes = qdrant.vector_sizes(collection)
                if wanted not in sizes:
                    present = sorted(str(name) for name in sizes if name is not None) or ["(one unnamed vector)"]
                    problems.append(f"named vector {wanted!r} in collection {collection!r} (present: {present})")
    if problems:
        raise MappingError("the mapping names what exists nowhere in the legacy stores: " + "; ".join(problems))


def collection_dims(mapping: Mapping, qdrant: QdrantReader, collections: Sequence[str]) -> dict[str, int]:
    """Dimension of the vector imported from each collection (the rule's named vector, else the only one)."""
    dims: dict[str, int] = {}
    for collection in collections:
        sizes = qdrant.vector_sizes(collection)
        wanted = mapping.point_rule(collection).vector
        if wanted is not None:
            dims[collection] = sizes[wanted]
        elif len(sizes) == 1:
            dims[collection] = next(iter(sizes.values()))
        elif not sizes:
            raise MappingError(f"collection {collection!r} has no dense vector to import")
        else:
            raise MappingError(f"collection {collection!r} has named vectors "
                               f"{sorted(str(n) for n in sizes)}; say which one to import (points[].vector)")
    return dims


def open_target_store(path: str | os.PathLike[str], dims: dict[str, int], *, embedder: Any = "auto",
                      dim: int | None = None) -> Store:
    """Open the store the import writes to (``sync="full"``), after checking vector dimensions.

    ``embedder``: ``"auto"`` (an existing store keeps its own; a new one embeds with MiniLM only
    when there are no Qdrant vectors), ``"none"`` (never embed: nodes without a point get
    stand-in vectors), ``"minilm"`` (the packaged all-MiniLM-L6-v2), or an embedder object.
    """
    if isinstance(embedder, str) and embedder not in EMBEDDER_CHOICES:
        raise MigrationError(f"embedder must be one of {EMBEDDER_CHOICES} or an embedder object, got {embedder!r}")
    distinct = sorted(set(dims.values()))
    if len(distinct) > 1:
        raise VectorShapeError(f"the collections' vectors differ in dimension ({dims}); one store holds one "
                               "dimension: import them into separate stores (--qdrant-collection)")
    legacy_dim = distinct[0] if distinct else None
    options = Options(sync="full")
    chosen = {"auto": None, "none": None, "minilm": "default"}.get(embedder, embedder) \
        if isinstance(embedder, str) else embedder
    if t4dm_core.exists(path):
        store = t4dm_core.open(path, embedder=chosen, options=options)
        if legacy_dim is not None and store.dim != legacy_dim:
            store.close()
            raise VectorShapeError(f"the legacy vectors have {legacy_dim} dimensions ({dims}), the store at {path} "
                                   f"has {store.dim}: import into a new store")
        return store
    embedder_dim = _embedder_dim(chosen)
    if legacy_dim is not None and embedder_dim is not None and embedder_dim != legacy_dim:
        raise VectorShapeError(f"the legacy vectors have {legacy_dim} dimensions ({dims}) but the embedder "
                               f"makes {embedder_dim}")
    if dim is not None and legacy_dim is not None and dim != legacy_dim:
        raise VectorShapeError(f"dim={dim} was asked for but the legacy vectors have {legacy_dim} dimensions")
    if chosen is None and legacy_dim is None:
        if embedder == "none":
            if dim is None:
                raise MigrationError("a new store with no Qdrant vectors and embedder 'none' needs a dimension (--dim)")
            return t4dm_core.open(path, dim=dim, options=options)
        chosen = "default"
    if chosen is None:
        return t4dm_core.open(path, dim=legacy_dim, options=options)
    return t4dm_core.open(path, embedder=chosen, options=options)


def _embedder_dim(embedder: Any) -> int | None:
    if embedder is None:
        return None
    if embedder == "default":
        from t4dm_core import MiniLMEmbedder

        return MiniLMEmbedder.dim
    value = getattr(embedder, "dim", None)
    return int(value) if isinstance(value, int) else None
