"""LlamaIndex chat stores over a T4DM store.

* :class:`T4DMChatStore` is a ``BaseChatStore`` (``ChatMemoryBuffer`` and the older memories).
* :class:`T4DMAsyncChatStore` is an ``AsyncDBChatStore``, the short-term store of the new
  ``llama_index.core.memory.Memory``:
  ``Memory.from_defaults(session_id=..., chat_store=T4DMAsyncChatStore(...), token_limit=...)``.
  (``Memory`` accepts only an ``AsyncDBChatStore``, whose methods share names with
  ``BaseChatStore``'s but are coroutines, so one class cannot be both; the two share one
  storage layout and read each other's data: :meth:`T4DMChatStore.as_memory_store`.)

Contracts:

* **Layout.** Every message is one engine memory in the namespace: text = the message's
  text content (searchable), vector = ``embedding`` (a LlamaIndex ``BaseEmbedding``), else
  the store's own embedder, else (or for a message without text) a deterministic stand-in
  flagged ``_t4dm_unembedded`` that vector queries exclude. The message itself round-trips
  through ``message.model_dump(mode="json")`` / ``ChatMessage.model_validate`` (roles,
  content blocks, ``additional_kwargs``). Bookkeeping lives in ``_t4dm_chat_*`` metadata: the
  key, an integer position (the order; reading a key is one ``Store.find`` plus a sort) and
  the status (``active`` / ``archived``). Each key also has a marker record so a key whose
  list is empty still exists, as in ``SimpleChatStore``.
* **BaseChatStore view** (``T4DMChatStore``): a key's messages are all its messages, any
  status, in order; ``delete_message(key, idx)`` takes a list position, with ``list.pop``
  semantics; everything else mirrors ``SimpleChatStore``, including ``IndexError`` from
  ``delete_last_message`` on an existing, empty key. Messages it writes are ``active``.
* **AsyncDBChatStore view** (``T4DMAsyncChatStore``): mirrors ``SQLAlchemyChatStore``
  (status filters, ``limit``/``offset``, oldest-first deletion and archiving; a key is
  listed while it has messages), except that ``delete_message(key, idx)`` takes the
  position in ``get_messages(key, status=None)``: SQLAlchemy's row ids are not visible
  through the interface.
* **Atomicity and crashes.** Every write call is one atomic engine batch (``Store.write``):
  append, insert, delete, status change, and ``set_messages``, which puts the new list (and
  the key's marker) and deletes the old messages in the same batch. After a crash a call is
  visible whole or not at all (durability as the store's ``Options.sync``); a key never
  shows a mix of its old and new list.
* **Thread-safety.** Every method may be called from several threads and tasks: the
  read-modify-write of positions is serialised by one lock per engine store (shared by all
  chat stores over that store in this process). Async methods run in a worker thread.
* **Lifetime.** ``close()`` closes a store the adapter opened; a shared ``store=`` stays open.
  Data written through ``path=`` is there when the path is opened again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
import weakref
from collections.abc import Sequence
from typing import Any, Self

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import ChatMessage
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from protocol_adapters._common import StoreHandle, run_in_thread, stand_in_vector
from protocol_adapters.llama_index.vector_store import _check_namespace
from t4dm_core import InvalidInputError, Memory, Store, StoreClosedError

__all__ = ["T4DMAsyncChatStore", "T4DMChatStore"]

DEFAULT_NAMESPACE = "llama_chat"
_DIMENSION_PROBE = "dimension probe"
_KIND, _KEY, _POS, _STATUS, _MESSAGE = ("_t4dm_chat_kind", "_t4dm_chat_key", "_t4dm_chat_pos",
                                         "_t4dm_chat_status", "_t4dm_chat_message")
_UNEMBEDDED = "_t4dm_unembedded"

_STORE_LOCKS: weakref.WeakKeyDictionary[Store, threading.RLock] = weakref.WeakKeyDictionary()
_STORE_LOCKS_GUARD = threading.Lock()


def _store_lock(store: Store) -> threading.RLock:
    with _STORE_LOCKS_GUARD:
        return _STORE_LOCKS.setdefault(store, threading.RLock())


def _marker_id(key: str) -> str:
    return "chat-key-" + hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise InvalidInputError(f"a chat key must be a string, got {key!r}")
    return key


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an integer, got {value!r}")
    return value


def _serialise(message: object) -> dict[str, Any]:
    if not isinstance(message, ChatMessage):
        raise InvalidInputError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
    try:
        return message.model_dump(mode="json")
    except (TypeError, ValueError) as exc:  # pydantic's serialisation errors are ValueErrors
        raise InvalidInputError(f"chat message cannot be stored as JSON: {exc}") from None


def _decode(memory: Memory) -> ChatMessage:
    return ChatMessage.model_validate(memory.metadata[_MESSAGE])


class _ChatLog:
    """The engine layout both chat stores use: messages with positions, plus one marker per key."""

    def __init__(self, handle: StoreHandle, namespace: str, embedding: BaseEmbedding | None) -> None:
        self.handle = handle
        self.store = handle.store
        self.namespace = namespace
        self.embedding = embedding
        self.lock = _store_lock(self.store)
        self.closed = False

    # -- building records ----------------------------------------------------
    def _vectors(self, ids: list[str], texts: list[str]) -> list[tuple[Any, bool]]:
        """(vector or None = let the store embed, unembedded flag) per message; computed outside the lock."""
        out: list[tuple[Any, bool]] = [(stand_in_vector(i, self.store.dim), True) for i in ids]
        todo = [n for n, text in enumerate(texts) if text.strip()]
        if todo and self.embedding is not None:
            vectors = self.embedding.get_text_embedding_batch([texts[n] for n in todo])
            for n, vector in zip(todo, vectors, strict=True):
                out[n] = (vector, False)
        elif todo and self.store.embedder is not None:
            for n in todo:
                out[n] = (None, False)
        return out

    def prepare(self, key: str, messages: Sequence[ChatMessage], status: MessageStatus) -> list[Memory]:
        """Records for new messages (positions filled in later by :meth:`_placed`)."""
        self.check_open()
        _check_key(key)
        if isinstance(messages, ChatMessage | str) or not isinstance(messages, Sequence):
            raise InvalidInputError(f"messages must be a list of ChatMessage, got {type(messages).__name__}")
        status = MessageStatus(status)
        dumps = [_serialise(m) for m in messages]
        ids = [uuid.uuid4().hex for _ in messages]
        texts = [m.content or "" for m in messages]
        records = []
        for mid, text, dump, (vector, unembedded) in zip(ids, texts, dumps, self._vectors(ids, texts), strict=True):
            metadata: dict[str, Any] = {_KIND: "message", _KEY: key, _POS: 0, _STATUS: status.value, _MESSAGE: dump}
            if unembedded:
                metadata[_UNEMBEDDED] = True
            records.append(Memory(text=text, id=mid, namespace=self.namespace, vector=vector, metadata=metadata))
        return records

    def _placed(self, record: Memory, position: int, status: MessageStatus | None = None) -> Memory:
        metadata = {**record.metadata, _POS: position}
        if status is not None:
            metadata[_STATUS] = status.value
        return Memory(text=record.text, id=record.id, namespace=self.namespace, vector=record.vector,
                      metadata=metadata)

    def _marker(self, key: str) -> Memory:
        mid = _marker_id(key)
        return Memory(id=mid, namespace=self.namespace, vector=stand_in_vector(mid, self.store.dim),
                      metadata={_KIND: "key", _KEY: key, _UNEMBEDDED: True})

    # -- reads (call with the lock held when the result feeds a write) -------
    def check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("this chat store is closed")

    def read(self, key: str, status: MessageStatus | None = None) -> list[Memory]:
        """The key's message records in order (only those with ``status`` unless None)."""
        self.check_open()
        where: dict[str, Any] = {_KIND: "message", _KEY: _check_key(key)}
        if status is not None:
            where[_STATUS] = MessageStatus(status).value
        found = self.store.find(where, namespace=self.namespace)
        return sorted(found, key=lambda m: m.metadata[_POS])  # stable: equal positions keep write order

    def has_key(self, key: str) -> bool:
        self.check_open()
        return self.store.get(_marker_id(_check_key(key)), namespace=self.namespace) is not None

    def keys(self) -> list[str]:
        """Keys in the order they were created."""
        self.check_open()
        return [m.metadata[_KEY] for m in self.store.find({_KIND: "key"}, namespace=self.namespace)]

    # -- writes --------------------------------------------------------------
    def _write(self, key: str, records: list[Memory], stale: Sequence[str] = ()) -> None:
        """One atomic batch: put ``records`` (plus the key's marker if the key is new), delete ``stale`` ids."""
        if not self.has_key(key):
            records = [*records, self._marker(key)]
        if records or stale:
            self.store.write(put=records, delete=stale, namespace=self.namespace)

    def append(self, key: str, new: list[Memory]) -> None:
        with self.lock:
            current = self.read(key)
            start = current[-1].metadata[_POS] + 1 if current else 0
            self._write(key, [self._placed(r, start + n) for n, r in enumerate(new)])

    def insert(self, key: str, idx: int, record: Memory) -> None:
        """``list.insert(idx, message)`` on the key's list, renumbering what follows."""
        with self.lock:
            order = self.read(key)
            order.insert(idx, record)
            changed = [self._placed(r, n) for n, r in enumerate(order)
                       if r is record or r.metadata[_POS] != n]
            self._write(key, changed)

    def replace(self, key: str, new: list[Memory], *, keep_empty_key: bool) -> None:
        """Put ``new`` and delete the current messages in one atomic batch.

        With an empty ``new`` and ``keep_empty_key=False`` the key itself goes too.
        """
        with self.lock:
            stale = [m.id for m in self.read(key) if m.id is not None]
            if new or keep_empty_key:
                self._write(key, [self._placed(r, n) for n, r in enumerate(new)], stale)
            else:
                self.store.delete([*stale, _marker_id(key)], namespace=self.namespace)

    def delete(self, key: str, records: list[Memory], *, drop_key_when_empty: bool) -> None:
        ids = [m.id for m in records if m.id is not None]
        if drop_key_when_empty and not {m.id for m in self.read(key)} - set(ids):
            ids.append(_marker_id(key))
        self.store.delete(ids, namespace=self.namespace)

    def drop_key(self, key: str) -> list[Memory]:
        """Delete the key and all its messages (one batch); returns the deleted messages."""
        with self.lock:
            current = self.read(key)
            self.store.delete([_marker_id(key), *(m.id for m in current if m.id is not None)],
                              namespace=self.namespace)
            return current

    def set_status(self, records: list[Memory], status: MessageStatus) -> None:
        if records:
            self.store.put_many([self._placed(r, r.metadata[_POS], status) for r in records])

    def close(self) -> None:
        self.closed = True
        self.handle.close()


def _open_log(path: str | os.PathLike[str] | None, store: Store | None, namespace: str,
              embedding: BaseEmbedding | None, dim: int | None) -> _ChatLog:
    _check_namespace(namespace)
    if embedding is not None and not isinstance(embedding, BaseEmbedding):
        raise InvalidInputError(f"embedding must be a llama_index BaseEmbedding, got {type(embedding).__name__}")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
    if store is None and embedding is not None and dim is None:
        dim = len(embedding.get_text_embedding(_DIMENSION_PROBE))
    return _ChatLog(StoreHandle(path=path, store=store, dim=dim), namespace, embedding)


class T4DMChatStore(BaseChatStore):
    """A LlamaIndex ``BaseChatStore`` whose messages live in one namespace of a T4DM store.

    Args:
        path: store directory (``None`` = a temporary store deleted on close).
        store: an open :class:`t4dm_core.Store` to share (the caller closes it).
        namespace: the namespace holding the messages.
        embedding: embeds message text; without it the store's embedder is used (a new
            store at ``path`` gets the packaged all-MiniLM-L6-v2 unless ``dim=`` is given),
            and a store without an embedder keeps messages unembedded.
        dim: the dimension of a store created here (default: the embedding's, found by
            embedding one probe text).

    Raises:
        InvalidInputError: both ``path`` and ``store``; a bad ``dim`` or ``embedding``.
        InvalidNamespaceError: a bad namespace.
    """

    _log: _ChatLog = PrivateAttr()

    def __init__(self, path: str | os.PathLike[str] | None = None, *, store: Store | None = None,
                 namespace: str = DEFAULT_NAMESPACE, embedding: BaseEmbedding | None = None,
                 dim: int | None = None) -> None:
        super().__init__()
        self._log = _open_log(path, store, namespace, embedding, dim)

    @classmethod
    def class_name(cls) -> str:
        return "T4DMChatStore"

    @property
    def client(self) -> Store:
        """The engine store."""
        return self._log.store

    def as_memory_store(self) -> T4DMAsyncChatStore:
        """An ``AsyncDBChatStore`` over the same store and namespace, for ``llama_index.core.memory.Memory``.

        It shares this adapter's store (closing it does not close the store).
        """
        return T4DMAsyncChatStore(store=self._log.store, namespace=self._log.namespace,
                                  embedding=self._log.embedding)

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the key's messages (the key exists afterwards, even with an empty list)."""
        self._log.replace(key, self._log.prepare(key, messages, MessageStatus.ACTIVE), keep_empty_key=True)

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The key's messages in order; ``[]`` for an unknown key."""
        return [_decode(m) for m in self._log.read(key)]

    def add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        """Append ``message``, or insert it at list position ``idx`` (``list.insert`` semantics)."""
        if idx is not None:
            idx = _check_count(idx, "idx")
        record = self._log.prepare(key, [message], MessageStatus.ACTIVE)[0]
        if idx is None:
            self._log.append(key, [record])
        else:
            self._log.insert(key, idx, record)

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete the key; returns its messages, or None if the key does not exist."""
        with self._log.lock:
            if not self._log.has_key(key):
                return None
            return [_decode(m) for m in self._log.drop_key(key)]

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at list position ``idx`` (None for an unknown key or ``idx >= len``)."""
        idx = _check_count(idx, "idx")
        with self._log.lock:
            if not self._log.has_key(key):
                return None
            records = self._log.read(key)
            if idx >= len(records):
                return None
            record = records.pop(idx)  # IndexError below -len, like list.pop
            self._log.delete(key, [record], drop_key_when_empty=False)
            return _decode(record)

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete the last message (None for an unknown key; IndexError for an empty one, like SimpleChatStore)."""
        with self._log.lock:
            if not self._log.has_key(key):
                return None
            record = self._log.read(key).pop()
            self._log.delete(key, [record], drop_key_when_empty=False)
            return _decode(record)

    def get_keys(self) -> list[str]:
        """Every key, in creation order."""
        return self._log.keys()

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await run_in_thread(self.set_messages, key, messages)

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return await run_in_thread(self.get_messages, key)

    async def async_add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        await run_in_thread(self.add_message, key, message, idx)

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        return await run_in_thread(self.delete_messages, key)

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        return await run_in_thread(self.delete_message, key, idx)

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        return await run_in_thread(self.delete_last_message, key)

    async def aget_keys(self) -> list[str]:
        return await run_in_thread(self.get_keys)

    def close(self) -> None:
        """Close the store if this adapter opened it (a shared ``store=`` stays open). Idempotent."""
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class T4DMAsyncChatStore(AsyncDBChatStore):
    """A LlamaIndex ``AsyncDBChatStore`` (the short-term store of ``Memory``) over a T4DM store.

    Same arguments, layout and errors as :class:`T4DMChatStore`; the two read each other's data.
    """

    _log: _ChatLog = PrivateAttr()

    def __init__(self, path: str | os.PathLike[str] | None = None, *, store: Store | None = None,
                 namespace: str = DEFAULT_NAMESPACE, embedding: BaseEmbedding | None = None,
                 dim: int | None = None) -> None:
        super().__init__()
        self._log = _open_log(path, store, namespace, embedding, dim)

    @classmethod
    def class_name(cls) -> str:
        return "T4DMAsyncChatStore"

    @property
    def client(self) -> Store:
        """The engine store."""
        return self._log.store

    def _get(self, key: str, status: MessageStatus | None, limit: int | None, offset: int | None) -> list[ChatMessage]:
        start = 0 if offset is None else _check_count(offset, "offset")
        stop = None if limit is None else start + _check_count(limit, "limit")
        if start < 0 or (stop is not None and stop < start):
            raise InvalidInputError("limit and offset must be non-negative")
        return [_decode(m) for m in self._log.read(key, status)[start:stop]]

    async def get_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE,
                           limit: int | None = None, offset: int | None = None) -> list[ChatMessage]:
        """The key's messages with ``status`` (all when None), oldest first, after ``offset``, at most ``limit``."""
        return await run_in_thread(self._get, key, status, limit, offset)

    async def count_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        return await run_in_thread(lambda: len(self._log.read(key, status)))

    async def add_message(self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self.add_messages(key, [message], status)

    async def add_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Append ``messages`` in one atomic batch."""
        await run_in_thread(lambda: self._log.append(key, self._log.prepare(key, messages, status)))

    async def set_messages(self, key: str, messages: list[ChatMessage],
                           status: MessageStatus = MessageStatus.ACTIVE) -> None:
        """Replace every message of the key (any status) with ``messages``."""
        await run_in_thread(lambda: self._log.replace(key, self._log.prepare(key, messages, status),
                                                  keep_empty_key=False))

    def _delete_at(self, key: str, idx: int) -> ChatMessage | None:
        idx = _check_count(idx, "idx")
        with self._log.lock:
            records = self._log.read(key)
            if not 0 <= idx < len(records):
                return None
            self._log.delete(key, [records[idx]], drop_key_when_empty=True)
            return _decode(records[idx])

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` of ``get_messages(key, status=None)``; None if there is none."""
        return await run_in_thread(self._delete_at, key, idx)

    def _delete_status(self, key: str, status: MessageStatus | None) -> None:
        with self._log.lock:
            self._log.delete(key, self._log.read(key, status), drop_key_when_empty=True)

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete the key's messages with ``status`` (all when None)."""
        await run_in_thread(self._delete_status, key, status)

    def _oldest(self, key: str, n: int, archive: bool) -> list[ChatMessage]:
        n = _check_count(n, "n")
        with self._log.lock:
            oldest = self._log.read(key, MessageStatus.ACTIVE)[:max(n, 0)]
            if archive:
                self._log.set_status(oldest, MessageStatus.ARCHIVED)
            else:
                self._log.delete(key, oldest, drop_key_when_empty=True)
            return [_decode(m) for m in oldest]

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the ``n`` oldest active messages and return them."""
        return await run_in_thread(self._oldest, key, n, False)

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Mark the ``n`` oldest active messages archived and return them."""
        return await run_in_thread(self._oldest, key, n, True)

    async def get_keys(self) -> list[str]:
        """Every key, in creation order."""
        return await run_in_thread(self._log.keys)

    def close(self) -> None:
        """Close the store if this adapter opened it (a shared ``store=`` stays open). Idempotent."""
        self._log.close()
