"""LangGraph long-term memory on T4DM: :class:`T4DMStore`, a ``langgraph.store.base.BaseStore``.

Submodules: ``store`` (the adapter and its contracts), ``_plan`` (op validation), ``_reads``
and ``_writes`` (engine access), ``_records`` (record layout), ``_semantics`` (LangGraph
filter and namespace matching), ``_pushdown`` (engine pre-screening of LangGraph filters),
``_shared`` (per-store caches and lock shared by adapters of one process), ``_index``
(embedding), ``_ttl`` (TTL config and sweeper).
"""

from __future__ import annotations

from protocol_adapters.langgraph.store import T4DMStore

__all__ = ["T4DMStore"]
