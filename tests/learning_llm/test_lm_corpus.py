"""The tiny LM's corpus (seeds/lm_corpus.py): deterministic, sized as asked, answerable, held out."""

from __future__ import annotations

import pytest

from seeds.lm_corpus import lm_corpus


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    small = {"n_people": 6, "n_sentences": 50, "n_episodes": 30, "n_heldout": 20}
    assert lm_corpus(3, **small) == lm_corpus(3, **small)
    assert lm_corpus(3, **small) != lm_corpus(4, **small)


def test_sizes_and_fact_statements() -> None:
    c = lm_corpus(0, n_people=5, repeats=2, n_sentences=40, n_episodes=25, n_heldout=10)
    assert len(c.facts) == 10 and len({f.subject for f in c.facts}) == 5
    assert len(c.train_sentences) == 10 * 3 * 2 + 40
    assert len(c.train_episodes) == 25 and len(c.heldout_episodes) == 10 and len(c.heldout_sentences) == 10
    for f in c.facts:
        assert f.statements[0] == f"{f.prompt} {f.value}."
        assert sum(s == f.statements[0] for s in c.train_sentences) == 2


def test_every_episode_answer_is_in_its_target_memory_only_once_among_memories() -> None:
    c = lm_corpus(1, n_episodes=300, n_heldout=50)
    kinds = set()
    for e in c.train_episodes + c.heldout_episodes:
        kinds.add(e.kind)
        assert e.answer in e.memories[e.target]
        assert 2 <= len(e.memories) <= 4
        assert len(set(e.memories)) == len(e.memories)
    assert kinds == {"story", "preference", "setting", "meeting"}


def test_heldout_text_is_not_in_training_text() -> None:
    c = lm_corpus(0)
    train = set(c.train_sentences)
    assert not train & set(c.heldout_sentences)
    assert not {e.question for e in c.train_episodes} & {e.question for e in c.heldout_episodes}


@pytest.mark.parametrize("bad", [{"n_people": 0}, {"repeats": -1}, {"n_sentences": 1.5}, {"n_episodes": True}])
def test_bad_sizes_raise_value_error(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        lm_corpus(0, **bad)  # type: ignore[arg-type]
