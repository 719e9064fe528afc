"""T4DMChatMessageHistory against the real engine, differential against InMemoryChatMessageHistory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

import t4dm_core
from protocol_adapters.langchain import T4DMChatMessageHistory
from t4dm_core import InvalidInputError, InvalidNamespaceError

DIM = 8
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def embedding() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=DIM)


@pytest.fixture
def shared(tmp_path) -> Iterator[t4dm_core.Store]:
    with t4dm_core.open(tmp_path / "shared", dim=DIM) as store:
        yield store


def every_message_type() -> list[BaseMessage]:
    return [
        SystemMessage("You are terse.", id="sys-1", additional_kwargs={"cache": {"ttl": 5}}),
        HumanMessage("What's the weather in Paris?", id="h-1", name="alice",
                     additional_kwargs={"lang": "en", "n": 1, "ratio": 0.5, "flags": [True, None]}),
        AIMessage("", id="ai-1", tool_calls=[{"name": "weather", "args": {"city": "Paris", "days": 2}, "id": "call-1"}],
                  invalid_tool_calls=[{"name": "bad", "args": "{not json", "id": "call-2", "error": "parse"}],
                  usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
                  response_metadata={"model_name": "fake", "finish_reason": "tool_calls"}),
        ToolMessage("18C and sunny", tool_call_id="call-1", id="t-1", name="weather", status="success",
                    artifact={"raw": [18, "C"]}),
        AIMessage([{"type": "text", "text": "It is 18C"}, {"type": "text", "text": " and sunny."}], id="ai-2"),
        FunctionMessage("42", name="answer", id="f-1"),
        ChatMessage("Looks right.", role="critic", id="c-1"),
        AIMessageChunk("partial", id="chunk-1"),
        HumanMessageChunk("more", id="chunk-2"),
        HumanMessage("no id here"),
    ]


def test_every_message_type_round_trips_exactly_and_matches_the_reference(tmp_path, embedding) -> None:
    sent = every_message_type()
    reference = InMemoryChatMessageHistory()
    reference.add_messages(sent)
    with T4DMChatMessageHistory("s1", path=tmp_path / "db", embedding=embedding) as history:
        history.add_messages(sent)
        got = history.messages
        assert type(got) is list
        assert got == reference.messages == sent
        assert [type(m) for m in got] == [type(m) for m in sent]
        assert got[2].tool_calls[0]["args"] == {"city": "Paris", "days": 2}
        assert got[3].artifact == {"raw": [18, "C"]}
    with T4DMChatMessageHistory("s1", path=tmp_path / "db", embedding=embedding) as reopened:
        assert reopened.messages == sent


def test_messages_is_a_fresh_full_list_and_convenience_adders_append(shared, embedding) -> None:
    history = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
    reference = InMemoryChatMessageHistory()
    for target in (history, reference):
        target.add_user_message("hi")
        target.add_ai_message("hello")
        target.add_message(HumanMessage("again"))
        target.add_messages([])
    first = history.messages
    first.append(HumanMessage("not stored"))
    assert history.messages == reference.messages
    assert [m.content for m in history.messages] == ["hi", "hello", "again"]
    assert history.messages is not history.messages


def test_messages_are_searchable_with_useful_metadata(shared, embedding) -> None:
    history = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
    history.add_messages([HumanMessage("my dog is called Rex", id="m1"), AIMessage("nice dog"),
                          HumanMessage("I live in Oslo")])
    hits = shared.search(embedding.embed_query("I live in Oslo"), k=3, namespace="chat",
                         filter={"session_id": "s", "type": "human"})
    assert hits[0].id == history.message_id(2) == "s/00000002"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.id for h in hits} == {history.message_id(0), history.message_id(2)}
    memory = shared.get(history.message_id(0), namespace="chat")
    assert memory is not None
    assert memory.text == "my dog is called Rex"
    assert {k: v for k, v in memory.metadata.items() if not k.startswith("_t4dm_")} == {
        "session_id": "s", "type": "human", "position": 0, "message_id": "m1"}


def test_consecutive_messages_are_linked_next_and_prev(shared, embedding) -> None:
    history = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
    history.add_messages([HumanMessage("one"), AIMessage("two")])
    history.add_messages([HumanMessage("three")])  # a later batch links to the earlier tail
    ids = [history.message_id(i) for i in range(3)]

    def reached(start: str, edge: str, hops: int = 1, direction: str = "out") -> list[str]:
        return [n.memory.id for n in shared.neighbors(start, hops=hops, type=edge, namespace="chat",
                                                      direction=direction)]

    assert reached(ids[0], "next", hops=2) == [ids[1], ids[2]]
    assert reached(ids[2], "prev", hops=2) == [ids[1], ids[0]]
    assert reached(ids[1], "next", direction="in") == [ids[0]]
    assert reached(ids[2], "next") == []
    assert reached(ids[0], "prev") == []


def test_clear_tombstones_keeps_history_and_then_add_starts_over(shared, embedding) -> None:
    history = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
    history.add_messages([HumanMessage("old one"), AIMessage("old two")])
    before_clear = time.time()
    time.sleep(0.01)
    history.clear()
    assert history.messages == []
    assert shared.get(history.message_id(0), namespace="chat") is None
    assert shared.edges(history.message_id(0), namespace="chat", direction="both") == []  # links go with it
    assert shared.edges(history.message_id(1), namespace="chat", direction="both") == []
    past = shared.get(history.message_id(1), namespace="chat", as_of=before_clear)
    assert past is not None and past.text == "old two"
    history.clear()  # clearing an empty session is a no-op
    history.add_messages([HumanMessage("new one")])
    assert history.messages == [HumanMessage("new one")]
    assert shared.edges(history.message_id(0), namespace="chat", direction="both") == []
    history.add_messages([AIMessage("new two")])
    assert [m.content for m in history.messages] == ["new one", "new two"]
    nxt = shared.neighbors(history.message_id(0), type="next", namespace="chat")
    assert [n.memory.text for n in nxt] == ["new two"]


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_an_append_and_its_links_are_one_atomic_write(tmp_path, embedding, nth: int) -> None:
    """The nth WAL write fails, then power is cut: the append is wholly there (with its links,
    including the one to the earlier tail) or wholly absent, never messages without links."""
    fs = t4dm_core.FaultInjectingFS()
    store = t4dm_core.open(tmp_path / "db", dim=DIM, fs=fs, options=t4dm_core.Options(sync="full"))
    history = T4DMChatMessageHistory("s", store=store, embedding=embedding)
    history.add_messages([HumanMessage("one")])
    fs.fail("write", nth)
    try:
        history.add_messages([AIMessage("two"), HumanMessage("three")])
    except t4dm_core.StoreFailedError:
        failed = True
    else:
        failed = False
    assert failed == (nth == 1)  # the append is a single WAL write
    fs.clear_faults()
    store.close()
    fs.crash()
    with t4dm_core.open(tmp_path / "db", dim=DIM) as reopened:
        recovered = T4DMChatMessageHistory("s", store=reopened, embedding=embedding)
        first = recovered.message_id(0)
        if failed:
            assert recovered.messages == [HumanMessage("one")]
            assert reopened.edges(first, namespace="chat", direction="both") == []
        else:
            assert [m.content for m in recovered.messages] == ["one", "two", "three"]
            chain = reopened.neighbors(first, hops=3, type="next", namespace="chat")
            assert [n.memory.text for n in chain] == ["two", "three"]
            back = reopened.neighbors(recovered.message_id(2), hops=3, type="prev", namespace="chat")
            assert [n.memory.text for n in back] == ["two", "one"]


@pytest.mark.parametrize("bad", [
    ["just a string"],
    [HumanMessage("fine"), {"role": "user", "content": "a dict"}],
    [HumanMessage("fine"), None],
    HumanMessage("a message, not a list"),
    "a string",
    [HumanMessage("bytes", additional_kwargs={"blob": b"\x00"})],
    [AIMessage("nan", response_metadata={"score": float("nan")})],
    [HumanMessage("tuple", additional_kwargs={"pair": (1, 2)})],
])
def test_bad_input_raises_a_typed_error_and_writes_nothing(shared, embedding, bad: Any) -> None:
    history = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
    history.add_messages([HumanMessage("kept")])
    lsn = shared.stats()["next_lsn"]
    with pytest.raises(InvalidInputError):
        history.add_messages(bad)
    assert shared.stats()["next_lsn"] == lsn
    assert history.messages == [HumanMessage("kept")]


def test_bad_construction_arguments_are_refused(tmp_path, shared) -> None:
    with pytest.raises(InvalidInputError):
        T4DMChatMessageHistory("", store=shared)
    with pytest.raises(InvalidInputError):
        T4DMChatMessageHistory(42, store=shared)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        T4DMChatMessageHistory("x" * 401, store=shared)
    with pytest.raises(InvalidNamespaceError):
        T4DMChatMessageHistory("s", store=shared, namespace="")
    with pytest.raises(InvalidInputError):
        T4DMChatMessageHistory("s", path=tmp_path / "other", store=shared)
    with pytest.raises(InvalidNamespaceError):  # an adapter that opened its store closes it on failure
        T4DMChatMessageHistory("s", path=tmp_path / "own", embedding=DeterministicFakeEmbedding(size=DIM),
                               namespace="bad\x00ns")
    with T4DMChatMessageHistory("s", path=tmp_path / "own", embedding=DeterministicFakeEmbedding(size=DIM)) as h:
        assert h.messages == []


def test_sessions_in_one_shared_store_are_isolated(shared, embedding) -> None:
    a = T4DMChatMessageHistory("a", store=shared, embedding=embedding)
    lookalike = T4DMChatMessageHistory("a/00000001", store=shared, embedding=embedding)
    b = T4DMChatMessageHistory("b", store=shared, embedding=embedding)
    a.add_messages([HumanMessage("a0"), AIMessage("a1")])
    lookalike.add_messages([HumanMessage("l0")])
    b.add_messages([HumanMessage("b0")])
    assert [m.content for m in a.messages] == ["a0", "a1"]
    assert [m.content for m in lookalike.messages] == ["l0"]
    a.clear()
    assert a.messages == []
    assert [m.content for m in b.messages] == ["b0"]
    assert [m.content for m in lookalike.messages] == ["l0"]
    other_ns = T4DMChatMessageHistory("b", store=shared, embedding=embedding, namespace="elsewhere")
    assert other_ns.messages == []
    assert not shared.closed  # adapters never close a shared store


def test_vectors_only_store_without_embedding_gets_flagged_stand_in_vectors(shared) -> None:
    history = T4DMChatMessageHistory("s", store=shared)
    history.add_messages([HumanMessage("no embedder anywhere")])
    memory = shared.get(history.message_id(0), namespace="chat")
    assert memory is not None and memory.metadata["_t4dm_unembedded"] is True
    assert history.messages == [HumanMessage("no embedder anywhere")]


def test_concurrent_appends_to_one_session_lose_nothing(shared, embedding) -> None:
    def writer(w: int) -> None:
        mine = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
        for i in range(8):
            mine.add_messages([HumanMessage(f"w{w}-{i}"), AIMessage(f"r{w}-{i}")])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = [m.content for m in T4DMChatMessageHistory("s", store=shared).messages]
    assert sorted(contents) == sorted([f"w{w}-{i}" for w in range(3) for i in range(8)] +
                                      [f"r{w}-{i}" for w in range(3) for i in range(8)])
    pairs = list(zip(contents[::2], contents[1::2], strict=True))  # each batch stayed together, in order
    assert all(h[1:] == r[1:] and h[0] == "w" and r[0] == "r" for h, r in pairs)


async def test_async_methods(shared, embedding) -> None:
    history = T4DMChatMessageHistory("s", store=shared, embedding=embedding)
    await history.aadd_messages([HumanMessage("a"), AIMessage("b")])
    assert await history.aget_messages() == [HumanMessage("a"), AIMessage("b")]
    with pytest.raises(InvalidInputError):
        await history.aadd_messages([object()])  # type: ignore[list-item]
    await history.aclear()
    assert await history.aget_messages() == []


# ---------------------------------------------------------------------- RunnableWithMessageHistory
def make_chain(get_history: Any, answer: str, seen: list[list[BaseMessage]]) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])

    def record(value: Any) -> Any:
        seen.append(value.to_messages())
        return value

    model = GenericFakeChatModel(messages=iter([AIMessage(answer)]))
    return RunnableWithMessageHistory(prompt | RunnableLambda(record) | model, get_history,
                                      input_messages_key="question", history_messages_key="history")


def turns(messages: list[BaseMessage]) -> list[tuple[str, Any]]:
    return [(m.type, m.content) for m in messages]


def test_runnable_with_message_history_survives_reopen(tmp_path, embedding) -> None:
    config = {"configurable": {"session_id": "conv"}}
    reference_store: dict[str, InMemoryChatMessageHistory] = {}
    reference_seen: list[list[BaseMessage]] = []
    for question, answer in (("I am Ada", "Hi Ada"), ("Who am I?", "You are Ada")):
        make_chain(lambda sid: reference_store.setdefault(sid, InMemoryChatMessageHistory()), answer,
                   reference_seen).invoke({"question": question}, config)

    seen: list[list[BaseMessage]] = []
    for question, answer in (("I am Ada", "Hi Ada"), ("Who am I?", "You are Ada")):
        with t4dm_core.open(tmp_path / "chat", embedder=embedding) as store:  # closed after each run
            chain = make_chain(lambda sid, store=store: T4DMChatMessageHistory(sid, store=store, embedding=embedding),
                               answer, seen)
            result = chain.invoke({"question": question}, config)
            assert result.content == answer
    assert turns(seen[1]) == [("human", "I am Ada"), ("ai", "Hi Ada"), ("human", "Who am I?")]
    assert [turns(s) for s in seen] == [turns(s) for s in reference_seen]
    with T4DMChatMessageHistory("conv", path=tmp_path / "chat", embedding=embedding) as history:
        assert turns(history.messages) == turns(reference_store["conv"].messages) == [
            ("human", "I am Ada"), ("ai", "Hi Ada"), ("human", "Who am I?"), ("ai", "You are Ada")]


async def test_runnable_with_message_history_async_survives_reopen(tmp_path, embedding) -> None:
    config = {"configurable": {"session_id": "conv"}}
    seen: list[list[BaseMessage]] = []
    for question, answer in (("I like tea", "Noted"), ("What do I like?", "Tea")):
        with t4dm_core.open(tmp_path / "chat", embedder=embedding) as store:
            chain = make_chain(lambda sid, store=store: T4DMChatMessageHistory(sid, store=store, embedding=embedding),
                               answer, seen)
            result = await chain.ainvoke({"question": question}, config)
            assert result.content == answer
    assert turns(seen[1]) == [("human", "I like tea"), ("ai", "Noted"), ("human", "What do I like?")]
    with T4DMChatMessageHistory("conv", path=tmp_path / "chat", embedding=embedding) as history:
        assert turns(await history.aget_messages()) == [
            ("human", "I like tea"), ("ai", "Noted"), ("human", "What do I like?"), ("ai", "Tea")]


@pytest.mark.embedder
def test_default_embedder_makes_messages_semantically_searchable(tmp_path) -> None:
    with T4DMChatMessageHistory("s", path=tmp_path / "minilm") as history:
        history.add_messages([HumanMessage("My dog Rex loves chasing tennis balls"),
                              HumanMessage("I work as a tax accountant in Oslo"),
                              AIMessage("Noted, thanks for sharing")])
        hits = history.store.search("what pet does the user have?", k=1, namespace="chat",
                                    filter={"session_id": "s"})
        assert hits[0].id == history.message_id(0)
        assert history.store.embedder is not None
