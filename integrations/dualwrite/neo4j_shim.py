"""Drop-in wrapper for the app's ``neo4j.Driver``: mirrored writes, reads passed through.

``Neo4jShim(writer)`` stands in for the driver the :class:`DualWriter`'s Neo4j side holds.
The write calls an app makes — ``session.run(cypher, params)``, ``session.execute_write(fn)``
(``tx.run`` inside), ``session.begin_transaction()`` and ``driver.execute_query(cypher, ...)``
— are classified by :func:`is_write_statement`:

* a write is parsed and validated (:mod:`integrations.dualwrite.cypher_shapes`) before
  anything is sent — an unknown shape raises :class:`UnsupportedCypherShapeError` naming the
  clause — then journaled and applied to both sides by the writer; the call returns a
  :class:`ShimWriteResult` (no records; ``consume()`` gives the :class:`WriteResult`);
* a read (no write clause) goes to the real driver unchanged, so the app's queries keep
  working. Reads always come from Neo4j, also after cut-over: T4DM cannot answer arbitrary
  Cypher (the legacy graph keeps being mirrored until decommissioned).

A transaction (``execute_write`` / ``begin_transaction``) collects its writes and submits
them as one journal entry at commit; its reads run at once, outside the transaction, and do
not see its uncommitted writes. ``execute_write`` calls the function once (a mirrored write
is retried by the journal, not by re-running the function).

Writes always go to the database of the writer's Neo4j side; a session opened for another
database may read it but its writes raise :class:`InvalidWriteError`. Everything else
(``verify_connectivity``, ``close``, ...) is the real driver's. Thread-safety: as the
driver's; sessions are not thread-safe (as in neo4j).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from neo4j import Query

from integrations.dualwrite.cypher_shapes import is_write_statement, parse_write
from integrations.dualwrite.errors import DualWriteError, InvalidWriteError
from integrations.dualwrite.neo4j_side import Neo4jSide
from integrations.dualwrite.ops import Op
from integrations.dualwrite.sides import NEO4J
from integrations.dualwrite.writer import DualWriter, WriteResult

__all__ = ["Neo4jShim", "ShimEagerResult", "ShimSession", "ShimTransaction", "ShimWriteResult"]

T = TypeVar("T")


class ShimWriteResult:
    """Returned by ``run`` for a mirrored write: no records; ``consume()`` returns the :class:`WriteResult`.

    Inside a transaction the result is known only at commit, so ``write_result`` is None there.
    """

    def __init__(self, write_result: WriteResult | None) -> None:
        self.write_result = write_result

    def consume(self) -> WriteResult | None:
        return self.write_result

    def data(self, *keys: str) -> list[dict[str, Any]]:
        return []

    def values(self, *keys: str) -> list[list[Any]]:
        return []

    def keys(self) -> list[str]:
        return []

    def single(self, strict: bool = False) -> None:
        if strict:
            raise DualWriteError("a mirrored write returns no records")

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class ShimEagerResult(NamedTuple):
    """``execute_query``'s result for a mirrored write (same field names as ``neo4j.EagerResult``)."""

    records: list[Any]
    summary: WriteResult
    keys: list[str]


def _text(query: str | Query) -> str:
    return str(query.text) if isinstance(query, Query) else str(query)


class Neo4jShim:
    """Stands in for the writer's Neo4j driver; see the module doc."""

    def __init__(self, writer: DualWriter) -> None:
        side = writer.sides.get(NEO4J)
        if not isinstance(side, Neo4jSide):
            raise DualWriteError("the DualWriter has no Neo4j side (pass neo4j=Neo4jSide(driver, database))")
        self._writer = writer
        self._side = side

    @property
    def driver(self) -> Any:
        """The real ``neo4j.Driver``."""
        return self._side.driver

    @property
    def database(self) -> str:
        """The database writes go to."""
        return self._side.database

    def ops_for(self, cypher: str, params: Mapping[str, Any] | None, database: str | None = None) -> list[Op]:
        """Parse and validate a write statement into ops (nothing is sent). Raises typed errors naming the problem."""
        if database is not None and database != self.database:
            raise InvalidWriteError(f"writes through this shim go to database {self.database!r}, not {database!r}")
        ops = parse_write(cypher).expand(params, self._writer.mapping)
        self._side.validate(ops)
        return ops

    def write(self, cypher: str, params: Mapping[str, Any] | None = None, *, database: str | None = None
              ) -> WriteResult:
        """Mirror one write statement; returns the writer's :class:`WriteResult`."""
        return self._writer.submit(NEO4J, self.ops_for(cypher, params, database))

    def submit(self, ops: list[Op]) -> WriteResult:
        return self._writer.submit(NEO4J, ops)

    def session(self, **config: Any) -> ShimSession:
        """A session like ``driver.session(**config)`` (``database`` defaults to the writer's)."""
        config.setdefault("database", self.database)
        return ShimSession(self, config)

    def execute_query(self, query_: str | Query, parameters_: Mapping[str, Any] | None = None,
                      **kwargs: Any) -> Any:
        """``driver.execute_query``: writes are mirrored (keyword arguments not ending in ``_`` are parameters)."""
        text = _text(query_)
        if not is_write_statement(text):
            kwargs.setdefault("database_", self.database)
            return self.driver.execute_query(query_, parameters_, **kwargs)
        params = {**(parameters_ or {}), **{k: v for k, v in kwargs.items() if not k.endswith("_")}}
        result = self.write(text, params, database=kwargs.get("database_"))
        return ShimEagerResult([], result, [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._side.driver, name)

    def __enter__(self) -> Neo4jShim:
        return self

    def __exit__(self, *exc: object) -> None:
        self._side.driver.close()


class ShimSession:
    """Stands in for ``neo4j.Session``; writes mirrored, everything else on a real session opened lazily."""

    def __init__(self, shim: Neo4jShim, config: dict[str, Any]) -> None:
        self._shim = shim
        self._config = config
        self._real: Any = None

    @property
    def database(self) -> str:
        return str(self._config["database"])

    def real_session(self) -> Any:
        """The real ``neo4j.Session`` (opened on first use) that serves reads."""
        if self._real is None:
            self._real = self._shim.driver.session(**self._config)
        return self._real

    def run(self, query: str | Query, parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        text = _text(query)
        if not is_write_statement(text):
            return self.real_session().run(query, parameters, **kwargs)
        result = self._shim.write(text, {**(parameters or {}), **kwargs}, database=self.database)
        return ShimWriteResult(result)

    def execute_write(self, transaction_function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``transaction_function(tx, *args, **kwargs)`` once; its writes become one journal entry."""
        tx = ShimTransaction(self)
        try:
            value = transaction_function(tx, *args, **kwargs)
        except BaseException:
            tx.rollback()
            raise
        tx.commit()
        return value

    def begin_transaction(self, **_: Any) -> ShimTransaction:
        """An explicit transaction collecting writes until :meth:`ShimTransaction.commit`."""
        return ShimTransaction(self)

    def close(self) -> None:
        if self._real is not None:
            self._real.close()
            self._real = None

    def __enter__(self) -> ShimSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real_session(), name)


class ShimTransaction:
    """Collects a transaction's writes (validated at ``run``) and submits them as one entry at ``commit``."""

    def __init__(self, session: ShimSession) -> None:
        self._session = session
        self._ops: list[Op] = []
        self._closed = False
        self.write_result: WriteResult | None = None

    def run(self, query: str | Query, parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        if self._closed:
            raise DualWriteError("the transaction is closed")
        text = _text(query)
        if not is_write_statement(text):
            return self._session.real_session().run(query, parameters, **kwargs)
        self._ops.extend(self._session._shim.ops_for(text, {**(parameters or {}), **kwargs},
                                                     self._session.database))
        return ShimWriteResult(None)

    def commit(self) -> WriteResult | None:
        """Journal and apply the collected writes (one entry); returns the :class:`WriteResult`."""
        if self._closed:
            raise DualWriteError("the transaction is closed")
        self._closed = True
        if self._ops:
            self.write_result = self._session._shim.submit(self._ops)
        return self.write_result

    def rollback(self) -> None:
        """Drop the collected writes (nothing was sent)."""
        self._closed = True
        self._ops = []

    def close(self) -> None:
        if not self._closed:
            self.rollback()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ShimTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
