"""Memory token packer: budget by the model's tokenizer, stable order, marked cuts, redaction, real hits."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import t4dm_core
from t4dm_core import Hit, InvalidInputError, Memory, Options
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.packer import MemoryPacker, MemoryTemplate, question_prompt, render_memory_block
from t4dm_core.learning.llm.redaction import RedactionPolicy

TEXTS = [
    "Maria Lopez left the blue umbrella at the old train station on Monday morning.",
    "The log level of billing-api is DEBUG.",
    "Omar Khan prefers oat latte as the coffee order.",
    "On June 3, Liam Novak met Sara Berg at Cafe Lumen to talk about the office move.",
    "Contact Priya Silva at priya.silva@example.com or +44 20 7946 0958 about the tax return.",
    "Chen Park repaired the green bicycle helmet at the bike repair shop on Friday evening.",
]


def memories() -> list[Memory]:
    return [Memory(text, id=f"m{i}", valid_from=1000.0 - i) for i, text in enumerate(TEXTS)]


def hits(scores: list[float]) -> list[Hit]:
    return [Hit(m, s) for m, s in zip(memories(), scores, strict=True)]


def test_prefix_follows_the_template_and_is_deterministic(tiny: BaseModel) -> None:
    packer = MemoryPacker(tiny.tokenizer, 512, redaction=None, order="given")
    packed = packer.pack(memories())
    assert packed.text == render_memory_block(TEXTS)
    assert packed.text.startswith("Memories:\n- Maria Lopez") and packed.text.endswith(".\n\n")
    assert packed.input_ids == tuple(tiny.tokenizer.encode(packed.text, add_special_tokens=False))
    assert packed.memory_ids == tuple(f"m{i}" for i in range(6))
    assert packed.truncated_id is None and packed.dropped_ids == () and packed.skipped_ids == ()
    assert packer.pack(memories()) == packed


def test_pii_is_redacted_by_default_and_can_be_turned_off(tiny: BaseModel) -> None:
    redacted = MemoryPacker(tiny.tokenizer, 512).pack(memories())
    assert "priya.silva@example.com" not in redacted.text and "7946" not in redacted.text
    assert "Contact Priya Silva at [EMAIL] or [PHONE] about the tax return." in redacted.text
    assert redacted.redactions == {"email": 1, "phone": 1}
    plain = MemoryPacker(tiny.tokenizer, 512, redaction=None).pack(memories())
    assert "priya.silva@example.com" in plain.text and plain.redactions == {}
    custom = MemoryPacker(tiny.tokenizer, 512, redaction=RedactionPolicy(extra=(("service", r"billing-api"),)))
    assert "The log level of [SERVICE] is DEBUG." in custom.pack(memories()).text


@pytest.mark.parametrize("budget", [1, 3, 5, 8, 13, 21, 34, 55, 89, 144])
def test_budget_holds_and_every_memory_is_whole_or_marked(tiny: BaseModel, budget: int) -> None:
    template = MemoryTemplate()
    packer = MemoryPacker(tiny.tokenizer, budget, redaction=None, order="given")
    packed = packer.pack(memories())
    assert packed.n_tokens <= budget
    lines = [line[2:] for line in packed.text.splitlines() if line.startswith("- ")]
    assert len(lines) == len(packed.memory_ids)
    for mid, line in zip(packed.memory_ids, lines, strict=True):
        original = TEXTS[int(mid[1:])]
        if mid == packed.truncated_id:
            assert line.endswith(template.marker)
            kept = line[: -len(template.marker)]
            assert original.startswith(kept + " ") and len(kept.split()) >= 3
        else:
            assert line == original
    # order is kept: included memories first, then the dropped ones, no gaps
    assert list(packed.memory_ids) + list(packed.dropped_ids) == [f"m{i}" for i in range(6)]
    assert packed.truncated_id is None or packed.truncated_id == packed.memory_ids[-1]


def test_a_cut_happens_when_a_memory_only_partly_fits(tiny: BaseModel) -> None:
    whole_first = MemoryPacker(tiny.tokenizer, 512, redaction=None, order="given").pack(memories()[:1])
    packed = MemoryPacker(tiny.tokenizer, whole_first.n_tokens - 4, redaction=None, order="given").pack(memories())
    assert packed.truncated_id == "m0" and packed.memory_ids == ("m0",)
    assert packed.dropped_ids == ("m1", "m2", "m3", "m4", "m5")
    assert "[...]" in packed.text


def test_budget_too_small_for_anything_gives_an_empty_prefix(tiny: BaseModel) -> None:
    packed = MemoryPacker(tiny.tokenizer, 2).pack(memories())
    assert packed.text == "" and packed.input_ids == () and len(packed.dropped_ids) == 6
    assert MemoryPacker(tiny.tokenizer, 100).pack([]).text == ""


def test_score_order_is_stable_under_input_shuffles(tiny: BaseModel) -> None:
    scores = [0.2, 0.9, 0.5, 0.9, 0.1, 0.7]  # m1 and m3 tie: id decides
    packer = MemoryPacker(tiny.tokenizer, 512)
    reference = packer.pack(hits(scores))
    assert reference.memory_ids == ("m1", "m3", "m5", "m2", "m0", "m4")
    shuffled = hits(scores)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert packer.pack(shuffled) == reference


def test_time_order_given_order_mixed_inputs_duplicates_and_empty_texts(tiny: BaseModel) -> None:
    mems = memories()
    by_time = MemoryPacker(tiny.tokenizer, 512, order="time").pack(mems)
    assert by_time.memory_ids == ("m5", "m4", "m3", "m2", "m1", "m0")  # valid_from decreases with i
    mixed = [mems[0], Hit(mems[1], 0.3), mems[2], Hit(mems[3], 0.8)]
    assert MemoryPacker(tiny.tokenizer, 512).pack(mixed).memory_ids == ("m3", "m1", "m0", "m2")
    dup = [Hit(mems[0], 0.9), Hit(mems[0], 0.9), Memory(None, id="empty"), Memory("", id="blank")]
    packed = MemoryPacker(tiny.tokenizer, 512).pack(dup)
    assert packed.memory_ids == ("m0",) and packed.skipped_ids == ("empty", "blank")


def test_packs_real_store_hits(tiny: BaseModel, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(len(TEXTS), 16)).astype(np.float32)
    with t4dm_core.open(tmp_path / "s", dim=16, options=Options(learn_on_read=False)) as store:
        store.put_many([Memory(t, id=f"m{i}", vector=v) for i, (t, v) in enumerate(zip(TEXTS, vectors, strict=True))])
        found = store.search(vectors[4], k=3)
    assert found[0].id == "m4"
    packed = MemoryPacker(tiny.tokenizer, 512).pack(found)
    assert packed.memory_ids == tuple(h.id for h in found)
    assert "[EMAIL]" in packed.text and packed.redactions == {"email": 1, "phone": 1}
    prompt = packed.text + question_prompt("Whom should I contact about the tax return?")
    assert prompt.endswith("Question: Whom should I contact about the tax return?\nAnswer:")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": 10, "order": "random"}, "order"),
    ({"max_tokens": 10, "min_cut_words": 0}, "min_cut_words"),
])
def test_bad_packer_options_raise(tiny: BaseModel, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        MemoryPacker(tiny.tokenizer, **kwargs)  # type: ignore[arg-type]


def test_bad_items_and_templates_raise(tiny: BaseModel) -> None:
    with pytest.raises(InvalidInputError, match="Memory or Hit"):
        MemoryPacker(tiny.tokenizer, 10).pack(["just a string"])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="text"):
        MemoryTemplate(entry="- no slot\n")
