"""The memory-dynamics scenario generators (seeds/scenarios.py): determinism, sizes, valid evidence.

No embedder: the one store used here takes tiny random vectors.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import t4dm_core
from seeds import scenarios as sc


def item_ids(scenario: sc.Scenario) -> set[str]:
    return {it.id for it in scenario.items}


def test_generators_are_deterministic_by_seed() -> None:
    makers = [lambda s: sc.slot_stories(s, 30), lambda s: sc.changing_facts(s, 12, 12),
              lambda s: sc.near_collisions(s, 400, probe_span=200, n_probes=20),
              lambda s: sc.conversations(s, 2, 6, 20), lambda s: sc.redundant_stream(s, 40)]
    for make in makers:
        assert make(7) == make(7)
        assert make(7) != make(8)


def test_slot_stories_sizes_evidence_and_unambiguous_cues() -> None:
    s = sc.slot_stories(3, 60)
    assert len(s.items) == 5 * 60 and len(s.queries) == 3 * 60
    assert len(item_ids(s)) == len(s.items)
    assert Counter(q.category for q in s.queries) == {"direct": 60, "paraphrase": 60, "fragment": 60}
    by_id = {it.id: it for it in s.items}
    identity = Counter((it.metadata["who"], it.metadata["verb"], it.metadata["object"]) for it in s.items)
    fragment = Counter((it.metadata["who"].split()[1], it.metadata["verb"], it.metadata["object"]) for it in s.items)
    assert max(identity.values()) == 1 and max(fragment.values()) == 1
    for q in s.queries:
        (target,) = q.evidence
        meta = by_id[target].metadata
        assert meta["role"] == "target" and meta["object"] in q.text and meta["who"].split()[1] in q.text
        assert meta["who"] in by_id[target].text and "where" not in by_id[target].text.lower()
        group = [it.metadata for it in s.items if it.metadata["group"] == meta["group"]]
        for neg in (g for g in group if g["role"] == "negative"):  # hard negatives differ in exactly one slot
            assert sum(neg[k] != meta[k] for k in ("who", "verb", "object")) == 1


def test_changing_facts_change_over_time() -> None:
    facts = sc.changing_facts(5, 20, 15, eras=4)
    assert [f.kind for f in facts].count("preference") == 20 and len(facts) == 35
    assert len({f.key for f in facts}) == 35
    for f in facts:
        eras = [c.era for c in f.changes]
        assert eras[0] == 0 and len(eras) >= 2 and eras == sorted(set(eras)) and eras[-1] < 4
        assert all(a.value != b.value for a, b in zip(f.changes, f.changes[1:], strict=False))
        assert all(a.valid_from < b.valid_from for a, b in zip(f.changes, f.changes[1:], strict=False))
        assert all(c.value in c.text for c in f.changes)
        assert f.change_at(3) == f.changes[-1] and f.change_at(0) == f.changes[0]
    with pytest.raises(ValueError, match="eras"):
        sc.changing_facts(0, 2, 2, eras=1)


def test_near_collisions_are_prefix_stable_with_unique_cues() -> None:
    small = sc.near_collisions(2, 300, probe_span=200, n_probes=40)
    large = sc.near_collisions(2, 1_000, probe_span=200, n_probes=40)
    assert len(small.items) == 300 and len(large.items) == 1_000
    assert large.items[:300] == small.items and large.queries == small.queries and len(small.queries) == 40
    cues = Counter((m["a"], m["b"], m["topic"], m["place"]) for m in (it.metadata for it in large.items))
    assert max(cues.values()) == 1
    ids = [it.id for it in small.items[:200]]
    for q in small.queries:
        (target,) = q.evidence
        assert target in ids
        meta = small.items[ids.index(target)].metadata
        assert all(meta[k] in q.text for k in ("a", "b", "topic", "place")) and meta["date"] not in q.text
    families = Counter(it.metadata["family"] for it in large.items)
    assert set(list(families.values())[:-1]) == {sc.FAMILY_SIZE}  # only the last family may be cut short
    with pytest.raises(ValueError, match="n_probes"):
        sc.near_collisions(0, 100, probe_span=200)


def test_redundant_stream_evidence_is_every_restatement() -> None:
    s = sc.redundant_stream(4, 50, max_restatements=5)
    assert len(s.queries) == 50 and len(item_ids(s)) == len(s.items)
    by_id = {it.id: it for it in s.items}
    assert sum(len(q.evidence) for q in s.queries) == len(s.items)
    for n, q in enumerate(s.queries):
        texts = [by_id[e].text for e in q.evidence]
        assert all(by_id[e].metadata["fact"] == n for e in q.evidence) and 1 <= len(texts) <= 5
        assert all(texts[0].rstrip(".").lower() in t.lower() for t in texts)  # restatements of one fact
        assert q.text not in texts  # held out


def test_conversation_evidence_ids_are_the_ids_the_store_assigns(tmp_path) -> None:
    cs = sc.conversations(9, n_personas=2, sessions=6, turns_per_session=20)
    assert len(cs.sessions) == 12 and len(cs.queries) == 44
    assert Counter(q.category for q in cs.queries) == {"single": 20, "multi-hop": 8, "update": 8, "assistant": 8}
    assert all(len(s.turns) == 20 and [r for r, _ in s.turns[:2]] == ["user", "assistant"] for s in cs.sessions)
    rng = np.random.default_rng(0)
    texts: dict[tuple[str, str], str] = {}
    with t4dm_core.open(tmp_path / "s", dim=8, options=t4dm_core.Options(learn_on_read=False)) as store:
        for session in cs.sessions:
            vectors = rng.normal(size=(len(session.turns), 8)).astype(np.float32)
            ids = store.add_conversation(session.id, session.turns, namespace=session.namespace, vectors=vectors)
            assert ids == [sc.turn_id(session.id, i) for i in range(len(session.turns))]
            texts.update({(session.namespace, mid): text for mid, (_, text) in zip(ids, session.turns, strict=True)})
        for q in cs.queries:
            stored = [store.get(e, namespace=q.namespace) for e in q.evidence]
            assert all(m is not None and m.text == texts[(q.namespace, e)] for m, e in zip(stored, q.evidence,
                                                                                            strict=True))
            if q.category in ("multi-hop", "update"):  # two statements, in two sessions, in order
                assert len(q.evidence) == (2 if q.category == "multi-hop" else 1)
            if q.category == "assistant":
                roles = [store.get(e, namespace=q.namespace).metadata["role"] for e in q.evidence]  # type: ignore[union-attr]
                assert roles == ["user", "assistant"]
    with pytest.raises(ValueError, match="too few turns"):
        sc.conversations(0, 1, sessions=2, turns_per_session=10)


def test_multi_hop_statements_are_in_order_and_update_evidence_is_the_newer_statement() -> None:
    cs = sc.conversations(1, n_personas=3, sessions=8, turns_per_session=20)
    turns = {sc.turn_id(s.id, i): text for s in cs.sessions for i, (_, text) in enumerate(s.turns)}
    for q in cs.queries:
        sessions = [e.split("/")[0] for e in q.evidence]
        if q.category == "multi-hop":
            assert sessions[0] < sessions[1]
        if q.category == "update":
            new = turns[q.evidence[0]]
            assert any(word in new for word in ("instead", "moved", "replaced", "now"))


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_sizes_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(ValueError):
        sc.slot_stories(0, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sc.redundant_stream(0, bad)  # type: ignore[arg-type]
