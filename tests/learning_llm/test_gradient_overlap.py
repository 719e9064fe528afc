"""The model-based gradient-overlap proxy: scores, model left untouched, scheduler and consolidation wiring."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

import t4dm_core
from t4dm_core import InvalidInputError, Memory
from t4dm_core.learning.llm.consolidation import ConsolidationError, consolidate
from t4dm_core.learning.llm.gradient_overlap import GradientOverlap
from t4dm_core.learning.llm.hygiene import BaseTask, HygienePolicy
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.replay import ReplayScheduler, ReplayWeights

ONLY_OVERLAP = ReplayWeights(salience=0.0, recency=0.0, overlap=1.0, diversity=0.0)


def _proxy(tiny: BaseModel) -> GradientOverlap:
    layer = tiny.model.model.layers[-1]
    return GradientOverlap(tiny.model, tiny.tokenizer, [layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight])


def _memories(texts: list[str]) -> list[Memory]:
    return [Memory(text=t, id=f"m{i}", vector=np.eye(8)[i % 8] + 0.1) for i, t in enumerate(texts)]


def test_scores_are_in_range_and_a_repeat_of_the_reference_overlaps_fully(tiny: BaseModel,
                                                                          heldout_texts: list[str]) -> None:
    proxy = _proxy(tiny)
    reference = _memories([heldout_texts[0]])
    candidates = _memories([heldout_texts[0], heldout_texts[3], heldout_texts[5]])
    scores = proxy(candidates, reference)
    assert scores.shape == (3,) and np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores[0] == pytest.approx(1.0, abs=1e-5)  # the same text: the same gradient
    assert scores[0] > max(scores[1], scores[2])
    assert np.array_equal(proxy(candidates, reference), scores)  # deterministic
    assert np.array_equal(proxy(candidates, []), np.zeros(3))
    assert proxy([], reference).shape == (0,)


def test_the_model_is_left_as_it_was(tiny: BaseModel, heldout_texts: list[str]) -> None:
    proxy = _proxy(tiny)
    batch = tiny.tokenizer(heldout_texts[1], return_tensors="pt")
    with torch.no_grad():
        before = tiny.model(**batch).logits
    flags = [p.requires_grad for p in proxy.parameters]
    proxy(_memories(heldout_texts[:2]), _memories(heldout_texts[2:4]))
    assert [p.requires_grad for p in proxy.parameters] == flags == [False, False]  # the base stays frozen
    assert all(p.grad is None for p in proxy.parameters)
    with torch.no_grad():
        assert torch.equal(tiny.model(**batch).logits, before)


def test_a_one_token_text_has_no_update_direction(tiny: BaseModel, heldout_texts: list[str]) -> None:
    proxy = _proxy(tiny)
    assert not proxy.gradient("a").any()
    assert proxy(_memories(["a"]), _memories([heldout_texts[0]]))[0] == pytest.approx(0.5)


def test_bad_arguments_are_typed_errors(tiny: BaseModel) -> None:
    with pytest.raises(InvalidInputError, match="at least one parameter"):
        GradientOverlap(tiny.model, tiny.tokenizer, [])
    with pytest.raises(InvalidInputError, match="max_len"):
        GradientOverlap(tiny.model, tiny.tokenizer, [tiny.model.model.norm.weight], max_len=1)


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, heldout_texts: list[str]) -> Iterator[t4dm_core.Store]:
    """Four episodic memories, one repeating the text of the single consolidated memory (kappa 0.9)."""
    s = t4dm_core.open(tmp_path_factory.mktemp("store"), dim=8, options=t4dm_core.Options(learn_on_read=False))
    s.put(Memory(text=heldout_texts[0], id="consolidated", vector=np.eye(8)[0], kappa=0.9))
    s.put(Memory(text=heldout_texts[0], id="repeat", vector=np.eye(8)[7]))  # far from the reference in vector space
    for i in (3, 4, 5):
        s.put(Memory(text=heldout_texts[i], id=f"other-{i}", vector=np.eye(8)[0] + 0.05 * i))
    yield s
    s.close()


def test_scheduler_ranks_by_gradient_overlap(store: t4dm_core.Store, tiny: BaseModel) -> None:
    items = ReplayScheduler(store, weights=ONLY_OVERLAP, overlap=_proxy(tiny)).schedule(4)
    assert items[0].memory_id == "repeat" and items[0].overlap == pytest.approx(1.0, abs=1e-5)
    assert all(item.overlap < items[0].overlap for item in items[1:])
    # the vector proxy sees the opposite: "repeat" lies far from the reference vector
    by_vector = ReplayScheduler(store, weights=ONLY_OVERLAP).schedule(4)
    assert by_vector[-1].memory_id == "repeat"


def test_consolidate_with_the_gradient_proxy(store: t4dm_core.Store, tiny: BaseModel) -> None:
    task = BaseTask(("The capital of",), ("x",))
    policy = HygienePolicy(max_steps=2, eval_every=1, patience=5, max_loss_drift=float("inf"), max_em_drop=1.0)
    result = consolidate(store, "tiny", base_task=task, policy=policy, k=2, overlap="gradient",
                         weights=ONLY_OVERLAP, lr=1e-3, quantization="none")
    try:
        assert result.memories[0].id == "repeat" and result.steps == 2
    finally:
        result.attachment.remove()
    with pytest.raises(ConsolidationError, match="overlap"):
        consolidate(store, "tiny", base_task=task, policy=policy, overlap="model")  # type: ignore[arg-type]
