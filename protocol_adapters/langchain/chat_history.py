"""LangChain chat message history over a T4DM store: durable, ordered, searchable, linked.

Layout (namespace ``chat`` by default): message ``i`` (0-based) of session ``s`` is the
memory with id ``f"{s}/{i:08d}"``. Its text is the message's text content (what search
embeds); its metadata holds the exact serialised message
(``langchain_core.messages.messages_to_dict``) under the reserved key ``_t4dm_message``, plus
user-visible fields for search filters: ``session_id``, ``type`` (``"human"``, ``"ai"``,
``"tool"``, ...), ``position`` and ``message_id``. Message ``i`` is linked to ``i + 1`` by an
engine edge of type ``"next"`` and back by one of type ``"prev"``.

Positions ``0..n-1`` of a session are always all current, each linked to its neighbours
(an append with its links, and a clear with its links, are each one atomic engine batch),
so reading a session costs O(its messages) point reads and finding its end O(log n),
independent of other sessions.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage, messages_from_dict, messages_to_dict

from protocol_adapters._common import StoreBacked, StoreHandle, run_in_thread, stand_in_vector
from t4dm_core import Edge, InvalidInputError, Memory, Store

__all__ = ["MESSAGE_KIND", "NEXT_EDGE", "PREV_EDGE", "T4DMChatMessageHistory"]

MESSAGE_KIND = "chat_message"
NEXT_EDGE = "next"
PREV_EDGE = "prev"
MAX_SESSION_ID_LEN = 400
# Writes to one session are serialised within the process (the engine admits one writer
# process per store); a fixed stripe of locks bounds memory however many sessions exist.
_SESSION_LOCKS = tuple(threading.Lock() for _ in range(64))


class T4DMChatMessageHistory(StoreBacked, BaseChatMessageHistory):
    """The messages of one chat session, kept in a T4DM store.

    Args:
        session_id: the conversation; sessions sharing a store and namespace are isolated.
        path: store directory to open (``None`` with no ``store`` = a temporary store removed
            on :meth:`close`). Opened with ``embedding`` as its embedder, or the store's
            recorded embedder (the packaged MiniLM model for a new store).
        store: an open ``t4dm_core.Store`` to share (for example by a
            ``RunnableWithMessageHistory`` session factory); the caller closes it.
        namespace: where messages live.
        embedding: a LangChain ``Embeddings`` for message texts (overrides the store's
            embedder). With neither, messages get a stand-in vector and
            ``_t4dm_unembedded: true``.

    Contracts:
        * :attr:`messages` is the full history, oldest first, as a new ``list`` on every
          read; messages round-trip exactly (type, content, id, name, additional_kwargs,
          response_metadata, tool_calls, usage_metadata, ...).
        * :meth:`add_messages` appends atomically: the messages and their ``next``/``prev``
          edges (including those to the previous last message) are one engine batch, so
          after an error or a crash either all of it is there or none of it.
        * Durability is the store's (see ``t4dm_core.Options.sync``): history written before
          a close is there after reopening the same path.
        * Thread-safe; reads and writes of one session are serialised within the process.
        * The history relies on its positions being contiguous: delete messages only
          through :meth:`clear`, not with ``store.delete`` on single ids.

    Raises:
        InvalidInputError: an empty or over-long ``session_id``, both ``path`` and ``store``,
            or a bad namespace (a store the history opened is closed again).
        DimensionMismatchError: ``embedding`` and a shared ``store`` disagree on dimension.
    """

    def __init__(self, session_id: str, *, path: str | os.PathLike[str] | None = None, store: Store | None = None,
                 namespace: str = "chat", embedding: Embeddings | None = None) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError(f"session_id must be a non-empty string, got {session_id!r}")
        if len(session_id) > MAX_SESSION_ID_LEN:
            raise InvalidInputError(f"session_id longer than {MAX_SESSION_ID_LEN} characters")
        dim = len(embedding.embed_query("dimension probe")) if store is not None and embedding is not None else None
        self._handle = StoreHandle(path=path, store=store, dim=dim, embedder=embedding)
        self._store = self._handle.store
        self.session_id = session_id
        self._namespace = namespace
        self._embedding = embedding
        self._lock = _SESSION_LOCKS[hash((self._store.path, namespace, session_id)) % len(_SESSION_LOCKS)]
        try:
            self._store.get(self._id(0), namespace=namespace)  # validates the namespace and id shape
        except BaseException:
            self._handle.close()
            raise

    def message_id(self, position: int) -> str:
        """The engine memory id of the message at ``position`` (for ``store.get``/``neighbors``)."""
        return self._id(position)

    # ------------------------------------------------------------------ reads
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the session, oldest first (a new list on each read)."""
        with self._lock:
            stored = []
            position = 0
            while (memory := self._store.get(self._id(position), namespace=self._namespace)) is not None:
                stored.append(memory.metadata["_t4dm_message"])
                position += 1
        return messages_from_dict(stored)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async :attr:`messages` (runs in a worker thread)."""
        return await run_in_thread(lambda: self.messages)

    # ------------------------------------------------------------------ writes
    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in order, atomically.

        Raises:
            InvalidInputError: ``messages`` is not a sequence of ``BaseMessage``, or a message
                does not survive a JSON round trip unchanged. Nothing is written.
        """
        if isinstance(messages, BaseMessage | str) or not isinstance(messages, Sequence):
            raise InvalidInputError("add_messages expects a sequence of BaseMessage")
        batch = list(messages)
        for i, message in enumerate(batch):
            if not isinstance(message, BaseMessage):
                raise InvalidInputError(f"messages[{i}] is a {type(message).__name__}, not a BaseMessage")
        serialised = messages_to_dict(batch)
        for i, (message, data) in enumerate(zip(batch, serialised, strict=True)):
            if not _round_trips(message, data):
                raise InvalidInputError(f"messages[{i}] ({type(message).__name__}) does not round-trip unchanged "
                                        "through messages_to_dict/messages_from_dict and JSON")
        if not batch:
            return
        with self._lock:
            start = self._count()
            texts = [str(message.text) for message in batch]
            vectors = self._vectors(texts, start)
            unembedded = {"_t4dm_unembedded": True} if self._embedding is None and self._store.embedder is None \
                else {}
            memories = [
                Memory(text=text, id=self._id(start + i), namespace=self._namespace, vector=vector, metadata={
                    "session_id": self.session_id, "type": message.type, "position": start + i,
                    "message_id": message.id, "_t4dm_kind": MESSAGE_KIND, "_t4dm_message": data, **unembedded})
                for i, (message, data, text, vector) in enumerate(zip(batch, serialised, texts, vectors, strict=True))]
            links = [edge for position in range(max(start, 1), start + len(batch)) for edge in (
                Edge(self._id(position - 1), self._id(position), NEXT_EDGE, namespace=self._namespace),
                Edge(self._id(position), self._id(position - 1), PREV_EDGE, namespace=self._namespace))]
            self._store.write(put=memories, link=links)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async :meth:`add_messages` (runs in a worker thread)."""
        await run_in_thread(self.add_messages, messages)

    def clear(self) -> None:
        """Delete every message of the session and its ``next``/``prev`` edges (one atomic batch).

        Deleted messages vanish from :attr:`messages`, search, ``neighbors`` and ``edges``
        but stay in the store's history: ``store.get(id, as_of=t)`` and
        ``store.find(..., as_of=t)`` still show what the session held at time ``t`` (edges
        are not versioned). Messages added afterwards start again at position 0, linked
        only to each other.
        """
        with self._lock:
            count = self._count()
            if count:
                self._store.delete([self._id(p) for p in range(count)], namespace=self._namespace)

    async def aclear(self) -> None:
        """Async :meth:`clear` (runs in a worker thread)."""
        await run_in_thread(self.clear)

    # ------------------------------------------------------------------ internals
    def _id(self, position: int) -> str:
        return f"{self.session_id}/{position:08d}"

    def _exists(self, position: int) -> bool:
        return self._store.get(self._id(position), namespace=self._namespace) is not None

    def _count(self) -> int:
        """Number of messages: the first free position, by galloping then binary search."""
        if not self._exists(0):
            return 0
        low, high = 1, 2  # invariant: position low-1 exists, position high-1 might not
        while self._exists(high - 1):
            low, high = high, high * 2
        while high - low > 1:  # now position high-1 is free; the count is in [low, high-1]
            middle = (low + high) // 2
            if self._exists(middle - 1):
                low = middle
            else:
                high = middle
        return low

    def _vectors(self, texts: list[str], start: int) -> list[np.ndarray | None]:
        if self._embedding is not None:
            return [np.asarray(v, dtype=np.float32) for v in self._embedding.embed_documents(texts)]
        if self._store.embedder is not None:
            return [None] * len(texts)
        return [stand_in_vector(self._id(start + i), self._store.dim) for i in range(len(texts))]


def _round_trips(message: BaseMessage, data: dict[str, Any]) -> bool:
    """Whether ``data`` (``message`` serialised) survives JSON and deserialises to an equal message."""
    try:
        restored = messages_from_dict([json.loads(json.dumps(data, allow_nan=False))])[0]
    except (TypeError, ValueError):  # not JSON (bytes, NaN, ...) or a message type LangChain cannot rebuild
        return False
    return restored == message
