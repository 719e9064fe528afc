"""The read-only Cypher subset behind ``T4DMGraphStore.query``: one entry point and its errors.

:func:`run` parses the whole query first (:mod:`._cypher_parse`, which refuses anything
outside the subset) and only then evaluates it (:mod:`._cypher_eval`), so a refused query
never reads, let alone writes, the graph. The subset has no writing clause at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol_adapters.langchain._cypher_eval import GraphView, NodeRef, RelRef, execute
from protocol_adapters.langchain._cypher_parse import (
    MAX_HOPS,
    CypherError,
    CypherSyntaxError,
    UnsupportedCypherError,
    parse,
)

__all__ = [
    "MAX_HOPS",
    "CypherError",
    "CypherSyntaxError",
    "GraphView",
    "NodeRef",
    "RelRef",
    "UnsupportedCypherError",
    "run",
]


def run(query: str, params: Mapping[str, Any], view: GraphView) -> list[dict[str, Any]]:
    """Parse and evaluate ``query``; one dict per row, keyed by the RETURN column names.

    Raises:
        CypherSyntaxError: malformed query (with line and column).
        UnsupportedCypherError: a clause or construct outside the subset (named in the message).
        CypherError: a missing parameter or a run-time type error.
    """
    return execute(parse(query), params, view)
