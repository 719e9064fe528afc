"""T4DMChatStore against SimpleChatStore, T4DMAsyncChatStore against SQLAlchemyChatStore, and Memory.

The same operations go to our store and to LlamaIndex's reference; every return value,
every raised exception type and the resulting state are compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

import t4dm_core
from protocol_adapters.llama_index import T4DMChatStore
from protocol_adapters.llama_index.chat_store import T4DMAsyncChatStore
from t4dm_core import InvalidInputError, InvalidNamespaceError, StoreClosedError, StoreFailedError

DIM = 8


class KeywordEmbedding(BaseEmbedding):
    """A deterministic bag-of-words embedding: texts sharing words point the same way."""

    def _vector(self, text: str) -> list[float]:
        vector = np.full(DIM, 1e-3)
        for word in text.lower().split():
            vector[hashlib.blake2b(word.encode(), digest_size=2).digest()[0] % DIM] += 1.0
        return vector.tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


def message(n: int) -> ChatMessage:
    """Varied messages: roles, text, several blocks, additional_kwargs, and one without any text."""
    kind = n % 4
    if kind == 0:
        return ChatMessage(role="user", content=f"user says number {n}")
    if kind == 1:
        return ChatMessage(role="assistant", content=f"assistant answers {n}",
                           additional_kwargs={"tool_calls": [{"id": f"call-{n}", "args": {"x": [1, None]}}]})
    if kind == 2:
        return ChatMessage(role="user", blocks=[TextBlock(text=f"look at picture {n}"),
                                                ImageBlock(url=f"https://example.com/{n}.png")])
    return ChatMessage(role="tool", blocks=[], additional_kwargs={"tool_call_id": f"call-{n}", "name": "lookup"})


# ---------------------------------------------------------------------------
# BaseChatStore vs SimpleChatStore
# ---------------------------------------------------------------------------
ASYNC_NAMES = {"set_messages": "aset_messages", "get_messages": "aget_messages", "add_message": "async_add_message",
               "delete_messages": "adelete_messages", "delete_message": "adelete_message",
               "delete_last_message": "adelete_last_message", "get_keys": "aget_keys"}


async def both(ours: T4DMChatStore, ref: SimpleChatStore, use_async: bool, name: str, *args: Any) -> Any:
    """Run one operation on both stores; assert equal results (or equal exception types)."""
    ref_args = [list(a) if isinstance(a, list) else a for a in args]  # SimpleChatStore keeps the list object
    try:
        expected: Any = getattr(ref, name)(*ref_args)
        expected = list(expected) if isinstance(expected, list) else expected
    except Exception as exc:  # the reference's exception type is what we compare
        expected = type(exc)
    try:
        got = await getattr(ours, ASYNC_NAMES[name])(*args) if use_async else getattr(ours, name)(*args)
    except Exception as exc:
        got = type(exc)
    assert got == expected, (name, args)
    return got


@pytest.fixture
def chat(tmp_path) -> Iterator[T4DMChatStore]:
    store = T4DMChatStore(tmp_path / "chat", embedding=KeywordEmbedding())
    yield store
    store.close()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_scripted_operations_match_simple_chat_store(chat: T4DMChatStore, use_async: bool) -> None:
    ref = SimpleChatStore()
    m = [message(n) for n in range(8)]
    script: list[tuple[str, tuple[Any, ...]]] = [
        ("get_messages", ("missing",)), ("get_keys", ()), ("delete_messages", ("missing",)),
        ("delete_message", ("missing", 0)), ("delete_last_message", ("missing",)),
        ("add_message", ("a", m[0])), ("add_message", ("a", m[1])), ("add_message", ("a", m[2], 0)),
        ("add_message", ("a", m[3], -1)), ("add_message", ("a", m[4], 100)), ("add_message", ("a", m[5], -100)),
        ("get_messages", ("a",)),
        ("set_messages", ("b", [m[6], m[7]])), ("set_messages", ("b", [m[1]])), ("set_messages", ("c", [])),
        ("get_keys", ()), ("get_messages", ("b",)), ("get_messages", ("c",)),
        ("delete_message", ("a", 1)), ("delete_message", ("a", 10)), ("delete_message", ("a", -1)),
        ("delete_message", ("a", -100)), ("get_messages", ("a",)),
        ("delete_last_message", ("b",)), ("delete_last_message", ("b",)), ("get_keys", ()),
        ("delete_last_message", ("c",)), ("delete_messages", ("c",)), ("delete_messages", ("a",)),
        ("get_keys", ()), ("add_message", ("a", m[0])), ("get_keys", ()), ("get_messages", ("a",)),
        ("add_message", ("", m[1])), ("get_messages", ("",)), ("get_keys", ()),
    ]
    for name, args in script:
        await both(chat, ref, use_async, name, *args)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_operations_match_simple_chat_store(tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    ref = SimpleChatStore()
    keys = ["a", "b", "c"]
    with t4dm_core.open(tmp_path / "s", dim=DIM) as store:  # vectors-only store: messages stay unembedded
        ours = T4DMChatStore(store=store)
        for step in range(60):
            key, idx, use_async = rng.choice(keys), rng.randint(-4, 4), rng.random() < 0.3
            op = rng.choice(["add", "add", "add", "insert", "set", "get", "del_key", "del_at", "del_last", "keys"])
            if op == "add":
                await both(ours, ref, use_async, "add_message", key, message(step))
            elif op == "insert":
                await both(ours, ref, False, "add_message", key, message(step), idx)
            elif op == "set":
                batch = [message(step + i) for i in range(rng.randint(0, 3))]
                await both(ours, ref, use_async, "set_messages", key, batch)
            elif op == "get":
                await both(ours, ref, use_async, "get_messages", key)
            elif op == "del_key":
                await both(ours, ref, use_async, "delete_messages", key)
            elif op == "del_at":
                await both(ours, ref, use_async, "delete_message", key, idx)
            elif op == "del_last":
                await both(ours, ref, use_async, "delete_last_message", key)
            else:
                await both(ours, ref, use_async, "get_keys")
        for key in keys:
            await both(ours, ref, False, "get_messages", key)
        await both(ours, ref, False, "get_keys")


async def test_concurrent_appends_keep_every_message(chat: T4DMChatStore) -> None:
    await asyncio.gather(*(chat.async_add_message("k", ChatMessage(role="user", content=f"m{n}")) for n in range(20)))
    got = [m.content for m in chat.get_messages("k")]
    assert sorted(got) == sorted(f"m{n}" for n in range(20))
    positions = [m.metadata["_t4dm_chat_pos"] for m in chat.client.find({"_t4dm_chat_kind": "message"},
                                                                         namespace="llama_chat")]
    assert len(set(positions)) == 20


def test_chat_memory_buffer_round_trip(chat: T4DMChatStore) -> None:
    ref = SimpleChatStore()
    buffers = [ChatMemoryBuffer.from_defaults(chat_store=s, chat_store_key="session", token_limit=40)
               for s in (chat, ref)]
    for n in range(12):
        for buffer in buffers:
            buffer.put(message(n))
    ours, expected = (buffer.get() for buffer in buffers)
    assert ours == expected and 0 < len(ours) < 12  # the token window applies the same way
    assert chat.get_messages("session") == ref.get_messages("session") == [message(n) for n in range(12)]


def test_persistence_across_reopen(tmp_path) -> None:
    path = tmp_path / "chat"
    with T4DMChatStore(path, embedding=KeywordEmbedding()) as chat:
        chat.set_messages("x", [message(n) for n in range(5)])
        chat.add_message("y", message(9))
        chat.add_message("x", message(7), idx=2)
        chat.delete_message("x", 0)
        chat.set_messages("empty", [])
        expected = {key: chat.get_messages(key) for key in chat.get_keys()}
    with T4DMChatStore(path, embedding=KeywordEmbedding()) as chat:
        assert chat.get_keys() == ["x", "y", "empty"]
        assert {key: chat.get_messages(key) for key in chat.get_keys()} == expected
        assert chat.get_messages("x") == [message(1), message(7), message(2), message(3), message(4)]


@pytest.mark.parametrize("failing_write", [1, 2])
@pytest.mark.parametrize("view", ["base", "async_db"])
async def test_set_messages_is_one_atomic_batch(tmp_path, view: str, failing_write: int) -> None:
    """set_messages puts the new list and deletes the old one in ONE WAL write: if that write
    fails, a power cut leaves exactly the old list; a fault armed for a second write is never hit."""
    path = tmp_path / "chat"
    fs = t4dm_core.FaultInjectingFS()
    engine = t4dm_core.open(path, dim=DIM, fs=fs, options=t4dm_core.Options(sync="full"))
    chat = T4DMChatStore(store=engine)
    old, new = [message(n) for n in range(4)], [message(n) for n in range(5, 8)]
    chat.set_messages("k", old)
    fs.fail("write", failing_write)
    replace = chat.aset_messages if view == "base" else chat.as_memory_store().set_messages
    if failing_write == 1:
        with pytest.raises(StoreFailedError):
            await replace("k", new)
    else:
        await replace("k", new)
    engine.close()
    fs.crash()  # power cut: only what the WAL made durable survives
    with T4DMChatStore(path) as reopened:
        assert reopened.get_keys() == ["k"]
        assert reopened.get_messages("k") == (old if failing_write == 1 else new)
        assert len(reopened.client.find({"_t4dm_chat_kind": "message"}, namespace="llama_chat")) == \
            (len(old) if failing_write == 1 else len(new))


def test_messages_are_searchable_engine_memories(tmp_path) -> None:
    embedding = KeywordEmbedding()
    with T4DMChatStore(tmp_path / "chat", embedding=embedding) as chat:
        chat.set_messages("s", [ChatMessage(role="user", content="my cat is called Tom"),
                                ChatMessage(role="assistant", content="what a lovely name"),
                                message(3)])
        store = chat.client
        hits = store.search(embedding.get_query_embedding("cat called"), k=1, namespace="llama_chat",
                            filter={"_t4dm_chat_key": "s", "_t4dm_unembedded": {"$exists": False}})
        assert hits[0].memory.text == "my cat is called Tom"
        tool = [m for m in store.find({"_t4dm_chat_kind": "message"}, namespace="llama_chat") if not m.text]
        assert len(tool) == 1 and tool[0].metadata["_t4dm_unembedded"] is True  # no text: a stand-in vector


def test_store_embedder_or_stand_ins(tmp_path) -> None:
    def embed(texts: list[str]) -> np.ndarray:
        return np.array([KeywordEmbedding()._vector(t) for t in texts])

    with t4dm_core.open(tmp_path / "e", dim=DIM, embedder=embed) as store:
        chat = T4DMChatStore(store=store)
        chat.add_message("k", ChatMessage(role="user", content="hello there"))
        (memory,) = store.find({"_t4dm_chat_kind": "message"}, namespace="llama_chat")
        expected = np.asarray(KeywordEmbedding()._vector("hello there"))
        assert memory.vector is not None and np.allclose(memory.vector, expected / np.linalg.norm(expected), atol=1e-6)
        assert "_t4dm_unembedded" not in memory.metadata
    with t4dm_core.open(tmp_path / "v", dim=DIM) as store:  # no embedder anywhere
        chat = T4DMChatStore(store=store)
        chat.add_message("k", ChatMessage(role="user", content="hello there"))
        (memory,) = store.find({"_t4dm_chat_kind": "message"}, namespace="llama_chat")
        assert memory.metadata["_t4dm_unembedded"] is True


def test_bad_input_raises_and_writes_nothing(chat: T4DMChatStore, tmp_path) -> None:
    chat.set_messages("k", [message(0)])

    class Opaque:
        pass

    bad_calls = [
        lambda: chat.add_message("k", "not a message"),  # type: ignore[arg-type]
        lambda: chat.add_message(3, message(1)),  # type: ignore[arg-type]
        lambda: chat.add_message("k", message(1), idx="0"),  # type: ignore[arg-type]
        lambda: chat.set_messages("k", [message(1), "nope"]),  # type: ignore[list-item]
        lambda: chat.set_messages("k", message(1)),  # type: ignore[arg-type]
        lambda: chat.add_message("k", ChatMessage(role="user", content="x", additional_kwargs={"o": Opaque()})),
        lambda: chat.delete_message("k", 0.5),  # type: ignore[arg-type]
    ]
    for call in bad_calls:
        with pytest.raises(InvalidInputError):
            call()
        assert chat.get_messages("k") == [message(0)] and chat.get_keys() == ["k"]
    with pytest.raises(InvalidNamespaceError):
        T4DMChatStore(tmp_path / "n", namespace="", dim=DIM)
    with pytest.raises(InvalidInputError):
        T4DMChatStore(tmp_path / "n", embedding="not an embedding", dim=DIM)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        T4DMChatStore(tmp_path / "n", store=chat.client)
    chat.close()
    with pytest.raises(StoreClosedError):
        chat.get_messages("k")


# ---------------------------------------------------------------------------
# AsyncDBChatStore vs SQLAlchemyChatStore, and the Memory class
# ---------------------------------------------------------------------------
async def both_db(ours: T4DMAsyncChatStore, ref: SQLAlchemyChatStore, name: str, *args: Any, **kwargs: Any) -> Any:
    expected = await getattr(ref, name)(*args, **kwargs)
    got = await getattr(ours, name)(*args, **kwargs)
    if name == "get_keys":
        got, expected = sorted(got), sorted(expected)  # SQL's DISTINCT has no order
    assert got == expected, (name, args, kwargs)
    return got


async def test_async_db_store_matches_sqlalchemy_chat_store(tmp_path) -> None:
    ref = SQLAlchemyChatStore(table_name="reference")
    ours = T4DMAsyncChatStore(tmp_path / "db", embedding=KeywordEmbedding())
    m = [message(n) for n in range(10)]
    archived, active = MessageStatus.ARCHIVED, MessageStatus.ACTIVE
    script: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("get_keys", (), {}), ("get_messages", ("s",), {}), ("count_messages", ("s",), {}),
        ("add_message", ("s", m[0]), {}), ("add_messages", ("s", m[1:6]), {}),
        ("add_message", ("s", m[6]), {"status": archived}), ("add_messages", ("t", m[7:9]), {}),
        ("get_messages", ("s",), {}), ("get_messages", ("s",), {"status": None}),
        ("get_messages", ("s",), {"status": archived}), ("get_messages", ("s",), {"limit": 2, "offset": 1}),
        ("get_messages", ("s",), {"status": None, "limit": 3}), ("get_messages", ("s",), {"offset": 4}),
        ("count_messages", ("s",), {}), ("count_messages", ("s",), {"status": archived}),
        ("count_messages", ("s",), {"status": None}),
        ("archive_oldest_messages", ("s", 2), {}), ("get_messages", ("s",), {"status": None}),
        ("get_messages", ("s",), {"status": archived}), ("delete_oldest_messages", ("s", 2), {}),
        ("get_messages", ("s",), {"status": None}), ("archive_oldest_messages", ("s", 0), {}),
        ("delete_oldest_messages", ("missing", 3), {}), ("get_keys", (), {}),
        ("delete_messages", ("s",), {"status": archived}), ("get_messages", ("s",), {"status": None}),
        ("set_messages", ("t", [m[9], m[0]]), {}), ("get_messages", ("t",), {"status": None}),
        ("set_messages", ("u", [m[1]]), {"status": archived}), ("count_messages", ("u",), {"status": archived}),
        ("get_keys", (), {}), ("delete_messages", ("s",), {}), ("get_keys", (), {}),
        ("set_messages", ("u", []), {}), ("get_keys", (), {}), ("delete_oldest_messages", ("t", 5), {}),
        ("get_keys", (), {}),
    ]
    for name, args, kwargs in script:
        await both_db(ours, ref, name, *args, **kwargs)
    assert active.value == "active"
    ours.close()


async def test_async_db_store_delete_message_by_position(tmp_path) -> None:
    ours = T4DMAsyncChatStore(tmp_path / "db", dim=DIM)
    await ours.add_messages("s", [message(0), message(1)])
    await ours.add_message("s", message(2), status=MessageStatus.ARCHIVED)
    assert await ours.delete_message("s", 1) == message(1)  # position in get_messages(key, status=None)
    assert await ours.delete_message("s", 5) is None and await ours.delete_message("s", -1) is None
    assert await ours.get_messages("s", status=None) == [message(0), message(2)]
    await ours.delete_message("s", 0)
    await ours.delete_message("s", 0)
    assert await ours.get_keys() == []  # a key is listed while it has messages, as in SQLAlchemyChatStore
    with pytest.raises(InvalidInputError):
        await ours.get_messages("s", limit=-1)
    with pytest.raises(InvalidInputError):
        await ours.add_message("s", "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid MessageStatus"):
        await ours.add_message("s", message(0), status="deleted")  # type: ignore[arg-type]
    assert await ours.get_messages("s", status=None) == []
    ours.close()


async def test_memory_class_matches_default_store_and_survives_reopen(tmp_path) -> None:
    path = tmp_path / "memory"
    ours_store = T4DMAsyncChatStore(path, embedding=KeywordEmbedding())
    memories = [Memory.from_defaults(session_id="session-1", chat_store=ours_store, token_limit=60,
                                     token_flush_size=20),
                Memory.from_defaults(session_id="session-1", token_limit=60, token_flush_size=20)]  # SQLAlchemy
    for n in range(14):
        msg = ChatMessage(role="user" if n % 2 == 0 else "assistant", content=f"turn {n}: " + "words " * 6)
        for memory in memories:
            await memory.aput(msg)
        ours, ref = [await memory.aget() for memory in memories]
        assert ours == ref
    assert await memories[0].aget_all() == await memories[1].aget_all()
    active = await memories[0].aget()
    assert 0 < len(active) < 14 and await ours_store.count_messages("session-1", MessageStatus.ARCHIVED) > 0
    ours_store.close()
    reopened = T4DMAsyncChatStore(path, embedding=KeywordEmbedding())
    memory = Memory.from_defaults(session_id="session-1", chat_store=reopened, token_limit=60)
    assert await memory.aget() == active
    assert len(await memory.aget_all()) == 14
    await memory.aput(ChatMessage(role="user", content="after reopening"))
    assert (await memory.aget())[-1].content == "after reopening"
    reopened.close()


def test_both_views_share_one_layout(chat: T4DMChatStore) -> None:
    chat.set_messages("k", [message(0), message(1)])
    view = chat.as_memory_store()
    assert asyncio.run(view.get_messages("k", status=None)) == [message(0), message(1)]
    asyncio.run(view.archive_oldest_messages("k", 1))
    asyncio.run(view.add_message("k", message(2)))
    assert chat.get_messages("k") == [message(0), message(1), message(2)]  # every status, in order
    assert asyncio.run(view.get_messages("k")) == [message(1), message(2)]
    view.close()
    assert chat.get_keys() == ["k"]  # the shared store stays open
