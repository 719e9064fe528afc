"""HEI-NW episodic adapter on the tiny LM: exact base logits without memory, gated read-out, frozen base."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from seeds.lm_corpus import lm_corpus
from t4dm_core import Memory
from t4dm_core.learning.llm.episodic import EpisodicAdapter, MemoryStates
from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.packer import MemoryPacker, question_prompt
from t4dm_core.learning.llm.training import answer_batch

QUESTIONS = ["Question: Where did Maria Lopez leave the blue umbrella?\nAnswer:", "The log level of billing-api is"]
MEMORY = [Memory("Maria Lopez left the blue umbrella at the old train station.", id="a"),
          Memory("The log level of billing-api is DEBUG.", id="b")]


@pytest.fixture
def adapter(tiny: BaseModel) -> Iterator[EpisodicAdapter]:
    torch.manual_seed(0)
    ad = EpisodicAdapter(tiny.model)
    yield ad
    ad.remove()


def batch(tiny: BaseModel) -> dict[str, torch.Tensor]:
    return dict(tiny.tokenizer(QUESTIONS, return_tensors="pt", padding=True))


@torch.no_grad()
def base_logits(tiny: BaseModel) -> torch.Tensor:
    return tiny.model(**batch(tiny)).logits


def test_attaches_at_sixty_percent_depth(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    assert tiny.num_layers == 5 and adapter.layer_index == 2  # after 3 of 5 layers
    assert all(not p.requires_grad for p in tiny.model.parameters())
    assert all(p.requires_grad for p in adapter.parameters())


@torch.no_grad()
def test_empty_memory_gives_exactly_the_base_logits(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    reference = base_logits(tiny)
    hidden = tiny.hidden_size
    with torch.no_grad():
        adapter.block.gate.fill_(1.0)  # even an open gate adds nothing without memory
    empty_pack = MemoryPacker(tiny.tokenizer, 64).pack([])
    cases = [None, adapter.encode([empty_pack]), MemoryStates(torch.zeros(1, 0, hidden), torch.zeros(1, 0, dtype=bool)),
             MemoryStates(torch.randn(2, 5, hidden), torch.zeros(2, 5, dtype=bool))]
    for memory in cases:
        assert torch.equal(adapter.run(memory, **batch(tiny)).logits, reference)


@torch.no_grad()
def test_at_init_real_memory_gives_exactly_the_base_logits(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    packed = MemoryPacker(tiny.tokenizer, 64).pack(MEMORY)
    memory = adapter.encode([packed])
    assert memory.states.shape == (1, packed.n_tokens, tiny.hidden_size)
    assert torch.equal(adapter.run(memory, **batch(tiny)).logits, base_logits(tiny))


def test_open_gate_changes_logits_and_only_adapter_gets_gradients(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    reference = base_logits(tiny)
    memory = adapter.encode([MemoryPacker(tiny.tokenizer, 64).pack(MEMORY)])
    with torch.no_grad():
        adapter.block.gate.fill_(0.5)
    inputs = batch(tiny)
    out = adapter.run(memory, **inputs, labels=inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100))
    assert not torch.allclose(out.logits, reference, atol=1e-4)
    out.loss.backward()
    for name, p in adapter.block.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    assert all(p.grad is None for p in tiny.model.parameters())


@torch.no_grad()
def test_rows_without_memory_stay_exact_in_a_mixed_batch(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    packer = MemoryPacker(tiny.tokenizer, 64)
    memory = adapter.encode([packer.pack(MEMORY), packer.pack([])])
    assert memory.mask[1].sum() == 0
    adapter.block.gate.fill_(0.5)
    reference = base_logits(tiny)
    logits = adapter.run(memory, **batch(tiny)).logits
    assert torch.equal(logits[1], reference[1])
    assert not torch.allclose(logits[0], reference[0], atol=1e-4)


@torch.no_grad()
def test_removing_the_adapter_restores_the_base_model(tiny: BaseModel) -> None:
    reference = base_logits(tiny)
    ad = EpisodicAdapter(tiny.model)
    ad.block.gate.fill_(0.5)
    memory = ad.encode([MemoryPacker(tiny.tokenizer, 64).pack(MEMORY)])
    with ad.memory(memory):
        changed = tiny.model(**batch(tiny)).logits
        ad.remove()
        restored = tiny.model(**batch(tiny)).logits
    assert not torch.equal(changed, reference)
    assert torch.equal(restored, reference)


def test_training_the_adapter_lowers_the_answer_loss(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    episodes = lm_corpus(0).heldout_episodes[:8]
    packer = MemoryPacker(tiny.tokenizer, 96)
    memory = adapter.encode([packer.pack([Memory(t, id=str(i)) for i, t in enumerate(e.memories)])
                             for e in episodes])
    rows = answer_batch(tiny.tokenizer, [question_prompt(e.question) for e in episodes], [e.answer for e in episodes])
    opt = torch.optim.AdamW(adapter.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = adapter.run(memory, **rows).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_bad_memory_shapes_and_models_raise(adapter: EpisodicAdapter, tiny: BaseModel) -> None:
    with pytest.raises(AdapterError, match="bool"):
        MemoryStates(torch.zeros(1, 3, tiny.hidden_size), torch.ones(1, 3))
    three_rows = MemoryStates(torch.randn(3, 4, tiny.hidden_size), torch.ones(3, 4, dtype=bool))
    with torch.no_grad():
        adapter.block.gate.fill_(0.5)
    with pytest.raises(AdapterError, match="memory batch 3"):
        adapter.run(three_rows, **batch(tiny))
    with pytest.raises(AdapterError, match="at least one"):
        adapter.encode([])
    with pytest.raises(AdapterError, match="no decoder layer list"):
        EpisodicAdapter(torch.nn.Linear(3, 3))
    with pytest.raises(AdapterError, match="depth"):
        EpisodicAdapter(tiny.model, depth=1.5)
