"""B2/B3 consolidation of the harness: the drift guard's base task, the summary, and which specs may run it.

Unit tests use the tiny LM and a real T4DM store; the SmolLM2 base-task check is opt-in (slow).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import pytest

import t4dm_core
from t4dm_core.learning.llm.evaluation.base_task import (
    GENERAL_FACTS,
    HELD_OUT_TEXTS,
    BaseTaskError,
    build_guard_task,
    measure_guard,
    tiny_candidates,
)
from t4dm_core.learning.llm.evaluation.consolidated import (
    AFTER_REPLAY,
    PRETRAINED_BUDGET,
    REPLAY_NAMESPACE,
    TINY_BUDGET,
    EvalConsolidation,
    budget_for,
    consolidate_targets,
    consolidation_summary,
    require_consolidation,
)
from t4dm_core.learning.llm.evaluation.embedders import HashingEmbedder
from t4dm_core.learning.llm.evaluation.errors import ModeUnavailableError
from t4dm_core.learning.llm.evaluation.scenario_a import scenario_a
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.training import answer_exact_match


# ----------------------------------------------------------------------------- base task
def _wrong(facts: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Each prompt with the next fact's answer (a different value), which the model cannot get right."""
    values = [a for _, a in facts]
    return tuple((p, next(v for v in values[i + 1:] + values[:i] if v != a))
                 for i, (p, a) in enumerate(facts))


def test_guard_task_keeps_only_facts_the_model_answers(tiny: BaseModel) -> None:
    facts, texts = tiny_candidates()
    candidates = facts + _wrong(facts)
    task = build_guard_task(tiny.model, tiny.tokenizer, candidates, texts)
    right = answer_exact_match(tiny.model, tiny.tokenizer, [p for p, _ in candidates], [a for _, a in candidates])
    assert task.candidates == len(candidates)
    assert list(task.facts) == [fact for fact, hit in zip(candidates, right, strict=True) if hit]
    assert task.facts and set(task.facts) <= set(facts)  # no wrong variant survives
    assert measure_guard(tiny.model, tiny.tokenizer, task).fact_em == 1.0
    rows = task.base_task()
    assert rows.prompts[:len(task.facts)] == tuple(p for p, _ in task.facts)
    assert len(rows.prompts) == len(task.facts) + len(texts)


def test_guard_task_without_a_known_fact_is_a_typed_error(tiny: BaseModel) -> None:
    facts, texts = tiny_candidates()
    with pytest.raises(BaseTaskError, match="none of the 24 candidate"):
        build_guard_task(tiny.model, tiny.tokenizer, _wrong(facts), texts)
    with pytest.raises(ModeUnavailableError, match="none of the 0 candidate"):
        build_guard_task(tiny.model, tiny.tokenizer, (), texts)
    with pytest.raises(BaseTaskError, match="at least one held-out text"):
        build_guard_task(tiny.model, tiny.tokenizer, facts, ())
    with pytest.raises(BaseTaskError, match="more than 4 words"):
        build_guard_task(tiny.model, tiny.tokenizer, facts, ("far too short",))


def test_held_out_perplexity_is_a_perplexity_of_the_continuations(tiny: BaseModel) -> None:
    facts, texts = tiny_candidates()
    task = build_guard_task(tiny.model, tiny.tokenizer, facts, texts)
    assert all(" ".join((p, c)) == " ".join(t.split()) for (p, c), t in zip(task.held_out, texts, strict=True))
    seen = measure_guard(tiny.model, tiny.tokenizer, task).held_out_perplexity
    # generic English is far less predictable for the tiny LM than its own corpus's held-out sentences
    unseen = build_guard_task(tiny.model, tiny.tokenizer, facts, HELD_OUT_TEXTS)
    assert 1.0 < seen < measure_guard(tiny.model, tiny.tokenizer, unseen).held_out_perplexity < math.inf


# ----------------------------------------------------------------------------- which models
@pytest.mark.parametrize("model", ["tiny", "smollm2", "/any/local/model"])
def test_after_replay_modes_are_no_longer_refused_for_any_model(model: str) -> None:
    require_consolidation(("B0", *AFTER_REPLAY), model)  # loads nothing


def test_after_replay_modes_need_peft(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # as if peft were not installed
    require_consolidation(("B0", "B1"), "smollm2")
    with pytest.raises(ModeUnavailableError, match=r"mode B3 .*'peft'"):
        require_consolidation(("B0", "B3"), "smollm2")


def test_budgets_per_model() -> None:
    assert budget_for("tiny") is TINY_BUDGET
    assert budget_for("smollm2") is PRETRAINED_BUDGET and budget_for("/a/path") is PRETRAINED_BUDGET
    assert PRETRAINED_BUDGET.lora.target_modules != TINY_BUDGET.lora.target_modules


# ----------------------------------------------------------------------------- consolidation summary
@pytest.fixture(scope="module")
def consolidated(tiny: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvalConsolidation]:
    data = scenario_a(4, seed=3)
    with t4dm_core.open(tmp_path_factory.mktemp("store"), embedder=HashingEmbedder(64)) as store:
        store.put_many([t4dm_core.Memory(id=mid, text=text) for mid, text, _meta in data.memories])
        result = consolidate_targets(store, data, tiny, "where", seed=3)
        assert len(store.ids(namespace=REPLAY_NAMESPACE)) == 4
    assert isinstance(result, EvalConsolidation)
    yield result
    result.attachment.remove()


def test_summary_reports_base_task_em_and_held_out_perplexity_before_and_after(
        tiny: BaseModel, consolidated: EvalConsolidation) -> None:
    summary = consolidation_summary(consolidated)
    task = consolidated.guard_task
    before = measure_guard(tiny.model, tiny.tokenizer, task)
    after = measure_guard(consolidated.attachment.model, consolidated.attachment.tokenizer, task)
    assert summary["base_task_em"]["before"] == before.fact_em == 1.0
    assert summary["base_task_em"]["after"] == after.fact_em
    assert summary["held_out_perplexity"]["before"] == pytest.approx(before.held_out_perplexity, rel=1e-5)
    assert summary["held_out_perplexity"]["after"] == pytest.approx(after.held_out_perplexity, rel=1e-5)
    rise = summary["held_out_perplexity"]["rise"]
    assert rise == pytest.approx(after.held_out_perplexity / before.held_out_perplexity - 1.0, rel=1e-5, abs=1e-9)
    assert summary["base_task"] == {"facts_kept": len(task.facts), "fact_candidates": 24, "held_out_texts": 8}
    assert summary["budget"]["lr"] == TINY_BUDGET.lr and summary["memories"] == 4


def test_guard_keeps_the_bounds_it_reports(consolidated: EvalConsolidation) -> None:
    summary = consolidation_summary(consolidated)
    policy = consolidated.hygiene.history["policy"]
    assert policy["max_em_drop"] == 0.01
    # the guard loss bound is ln(1.05) nats over the guard's own baseline loss
    baseline = summary["guard"]["baseline"]["loss"]
    assert policy["max_loss_drift"] * baseline == pytest.approx(math.log(1.05), rel=1e-4)
    if not summary["rolled_back"]:  # what the adapter kept passed every evaluation of the guard
        assert summary["max_loss_drift"] <= policy["max_loss_drift"]
        assert summary["max_em_drop"] <= 0.01


@pytest.mark.slow
def test_smollm2_knows_most_general_facts() -> None:
    from t4dm_core.learning.llm.models import load_base_model

    smol = load_base_model("smollm2")
    task = build_guard_task(smol.model, smol.tokenizer)
    assert len(task.facts) >= len(GENERAL_FACTS) // 2
    score = measure_guard(smol.model, smol.tokenizer, task)
    assert score.fact_em == 1.0 and 1.0 < score.held_out_perplexity < 100.0
