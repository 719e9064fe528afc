"""Evaluation scenarios C, D, E (issue 6): generators, store filling, report sections, tiny-LM runs, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import t4dm_core
from t4dm_core import cli
from t4dm_core.learning.llm.evaluation import (
    EvalConfigError,
    EvalQuestion,
    ModeUnavailableError,
    normalize_answer,
    scenario_a,
    scenario_c,
    scenario_d,
    scenario_e,
)
from t4dm_core.learning.llm.evaluation.embedders import HashingEmbedder
from t4dm_core.learning.llm.evaluation.report import report_dict, report_markdown
from t4dm_core.learning.llm.evaluation.runner import (
    APPEND_VARIANT,
    FULL_CONTEXT_VARIANT,
    EvalConfig,
    ModeResult,
    RunResult,
    fill_store,
    run_eval,
)
from t4dm_core.learning.llm.evaluation.scenario_d import default_store_sizes, parse_store_sizes
from t4dm_core.learning.llm.evaluation.scenario_e import HEADER, Transcript
from t4dm_core.learning.llm.models import BaseModel

_FAST = {"embedder": "hashing", "n_boot": 50, "max_new_tokens": 6}


def _says(text: str | None, value: str) -> bool:
    return text is not None and f" {normalize_answer(value)} " in f" {normalize_answer(text)} "


# ----------------------------------------------------------------------------- scenario C
def test_scenario_c_versioned_items_and_stale_values() -> None:
    data = scenario_c(12, seed=3)
    assert data == scenario_c(12, seed=3) and data != scenario_c(12, seed=4)
    assert data.scenario == "C" and data.answer_kind == "value" and len(data.questions) == 12
    assert sum(q.evidence_id.startswith("pref-") for q in data.questions) == 6
    for q in data.questions:
        versions = [(text, meta) for mid, text, meta in data.memories if mid == q.evidence_id]
        assert len(versions) >= 2  # every fact changes at least once
        eras = [int(meta["era"]) for _t, meta in versions]  # type: ignore[call-overload]
        assert eras == sorted(eras) and eras[0] == 0
        assert _says(versions[-1][0], q.answer) and q.answer in data.vocabulary
        assert q.answer not in q.stale_answers and q.stale_ids == ()
        earlier = [text for text, _m in versions[:-1]]
        for stale in q.stale_answers:
            assert stale in data.vocabulary
            assert any(_says(text, stale) for text in earlier) and not _says(versions[-1][0], stale)
        # every earlier value that differs from the current one is listed as stale
        assert all(_says(text, q.answer) or any(_says(text, s) for s in q.stale_answers) for text in earlier)
    assert any(q.stale_answers for q in data.questions)
    # era by era: no era-1 change is written before an era-0 value
    all_eras = [int(meta["era"]) for _mid, _t, meta in data.memories]  # type: ignore[call-overload]
    assert all_eras == sorted(all_eras)


def test_scenario_c_append_layout_keeps_every_change_apart() -> None:
    versioned, appended = scenario_c(10, seed=1), scenario_c(10, seed=1, layout="append")
    ids = [mid for mid, _t, _m in appended.memories]
    assert len(ids) == len(set(ids)) == len(versioned.memories)
    texts = {mid: text for mid, text, _m in appended.memories}
    for qv, qa in zip(versioned.questions, appended.questions, strict=True):
        assert (qa.question, qa.answer, qa.stale_answers) == (qv.question, qv.answer, qv.stale_answers)
        assert qa.evidence_id.startswith(f"{qv.evidence_id}-v") and _says(texts[qa.evidence_id], qa.answer)
        assert all(_says(texts[sid], qa.answer) is False for sid in qa.stale_ids)
        assert len(qa.stale_ids) >= len(qa.stale_answers)


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 3, "eras": 1}, {"n": 3, "layout": "log"}])
def test_scenario_c_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(EvalConfigError):
        scenario_c(**kwargs)  # type: ignore[arg-type]


def test_fill_store_writes_versions_and_search_sees_only_the_current_one(tmp_path: Path) -> None:
    data = scenario_c(6, seed=2)
    with t4dm_core.open(tmp_path / "store", embedder=HashingEmbedder()) as store:
        fill_store(store, data.memories)
        for q in data.questions:
            versions = store.history(q.evidence_id)
            assert len(versions) == sum(mid == q.evidence_id for mid, _t, _m in data.memories)
            current = store.get(q.evidence_id)
            assert current is not None and _says(current.text, q.answer) and "role" not in current.metadata
            hits = store.search(q.question, k=20, learn=False)
            assert [h.id for h in hits].count(q.evidence_id) == 1
            assert all(_says(h.memory.text, q.answer) for h in hits if h.id == q.evidence_id)


# ----------------------------------------------------------------------------- scenario D
def test_scenario_d_asks_scenario_a_questions_among_distractors() -> None:
    items = scenario_d(4, (60, 20, 33), seed=5)
    a = scenario_a(4, seed=5)
    assert items.sizes == (20, 33, 60) and len(items.data.memories) == 60
    assert items.data.questions == a.questions and items.data.vocabulary == a.vocabulary
    ids = [mid for mid, _t, _m in items.data.memories]
    assert len(set(ids)) == 60
    assert set(ids[:20]) == {mid for mid, _t, _m in a.memories}  # the asked groups come first
    assert all(int(meta["group"]) >= 4 for _mid, _t, meta in items.data.memories[20:])  # type: ignore[call-overload]
    assert scenario_d(4, (20, 60), seed=5).data.memories == scenario_d(4, (20, 60), seed=5).data.memories


def test_store_size_parsing_and_defaults() -> None:
    assert parse_store_sizes("250, 1000") == (250, 1000)
    assert default_store_sizes(50) == (250, 1000, 2500)
    assert default_store_sizes(300) == (1500, 2500)
    with pytest.raises(EvalConfigError, match="integers"):
        parse_store_sizes("250,lots")
    for sizes in ((), (20, 20), (19, 40)):
        with pytest.raises(EvalConfigError):
            scenario_d(4, sizes)


# ----------------------------------------------------------------------------- scenario E
def test_transcript_keeps_the_newest_exchanges_within_budget(tiny: BaseModel) -> None:
    data = scenario_e(4, seed=1)
    assert data.scenario == "E" and data.questions == scenario_a(4, seed=1).questions
    transcript = Transcript(tiny.tokenizer, data)
    assert len(transcript.exchanges) == 20
    full, kept_all = transcript.block(None)
    assert kept_all == 20 and full.startswith(HEADER) and all(text in full for _m, text, _x in data.memories)

    def tokens(text: str) -> int:
        return len(tiny.tokenizer.encode(text, add_special_tokens=False))

    previous = 0
    for budget in (5, 60, 150, 300, tokens(full)):
        block, kept = transcript.block(budget)
        assert tokens(block) <= budget and kept >= previous
        assert block == (HEADER + "".join(transcript.exchanges[20 - kept:]) + "\n" if kept else "")
        previous = kept
    assert transcript.block(5) == ("", 0) and previous == 20


# ----------------------------------------------------------------------------- report sections (hand-made runs)
def _mode(predictions: list[str], answers: list[str], **extra: list[object]) -> ModeResult:
    em = [float(p == a) for p, a in zip(predictions, answers, strict=True)]
    return ModeResult(em=em, f1=list(em), latency_ms=[10.0] * len(em), replies=list(predictions),
                      predictions=predictions, **extra)  # type: ignore[arg-type]


def test_report_c_counts_stale_answers() -> None:
    questions = (EvalQuestion("q1", "dark", "pref-0", "current", "q1", ("light",), ("pref-0-v0",)),
                 EvalQuestion("q2", "30 s", "cfg-0", "current", "q2", ("15 s", "60 s"), ()))
    b1 = _mode(["dark", "60 s"], ["dark", "30 s"], evidence_ranks=[1, 2], memory_tokens=[5, 5])
    append = _mode(["light", "15 s"], ["dark", "30 s"], evidence_ranks=[2, None], memory_tokens=[5, 5],
                   top_stale=[True, False])
    run = RunResult(EvalConfig(scenario="C", n=2, n_boot=50), "src", "emb", questions,
                    {"B0": _mode(["x", "30 s"], ["dark", "30 s"]), "B1": b1}, variants={APPEND_VARIANT: append})
    report = report_dict(run)
    assert {name: v["mean"] for name, v in report["stale_rate"].items()} == {"B0": 0.0, "B1": 0.5, "B1-append": 1.0}
    section = report["append_store"]
    assert section["em"]["mean"] == 0.0 and section["stale_top1"] == 0.5
    assert section["retrieval"] == {"p@1": 0.0, "mrr": 0.25, "k": 3}
    assert section["b1_minus_append_em"]["mean"] == 0.5
    assert "B1-append" in report_markdown(report) and "Stale answers" in report_markdown(report)


@pytest.mark.parametrize(("wrong", "matched"), [(0, True), (8, False)])
def test_report_e_ratios_and_quality_match(wrong: int, matched: bool) -> None:
    answers = [f"answer {i}" for i in range(12)]
    questions = tuple(EvalQuestion(f"q{i}", a, f"m{i}", "direct", f"q{i}") for i, a in enumerate(answers))
    b1 = _mode(list(answers), answers, evidence_ranks=[1] * 12, memory_tokens=[40] * 12, prompt_tokens=[100] * 12)
    full = _mode(["wrong"] * wrong + answers[wrong:], answers, prompt_tokens=[400, 600] * 6,
                 exchanges_kept=[20, 12] * 6)
    full.latency_ms = [30.0, 50.0] * 6
    run = RunResult(EvalConfig(scenario="E", n=12, n_boot=200), "src", "emb", questions, {"B1": b1},
                    variants={FULL_CONTEXT_VARIANT: full}, facts={"exchanges": 20, "context_limit": 700})
    report = report_dict(run)
    section, versus = report["full_context"], report["full_vs_b1"]
    assert section["truncated_share"] == 0.5 and section["exchanges_kept"] == {"mean": 16.0, "min": 12}
    assert section["prompt_tokens"] == {"mean": 500.0, "max": 600}
    assert versus["tokens_ratio"] == 5.0 and versus["latency_ratio"] == {"mean": 4.0, "p50": 4.0}
    assert versus["quality_matched"] is matched
    assert ("quality matched: yes" in report_markdown(report)) is matched


# ----------------------------------------------------------------------------- runs on the tiny LM
def _check_summary(summary: dict[str, Any]) -> None:
    lo, hi = summary["ci95"]
    assert 0.0 <= lo <= summary["mean"] <= hi <= 1.0


def test_scenario_c_run_on_tiny(tiny: BaseModel) -> None:
    result = run_eval(EvalConfig(modes=("B0", "B1"), scenario="C", n=3, **_FAST), base=tiny)  # type: ignore[arg-type]
    report = report_dict(result)
    assert list(report["modes"]) == ["B0", "B1"] and report["scenario"] == "C"
    for mode in (*report["modes"].values(), report["append_store"]):
        _check_summary(mode["em"])
        _check_summary(mode["f1"])
    assert set(report["stale_rate"]) == {"B0", "B1", "B1-append"}
    assert 0.0 <= report["append_store"]["stale_top1"] <= 1.0
    # versioned store: the evidence id is the fact's key, never a superseded version
    assert all(not stale for stale in result.modes["B1"].top_stale)
    assert len(result.variants[APPEND_VARIANT].top_stale) == 3


def test_scenario_d_run_on_tiny(tiny: BaseModel) -> None:
    config = EvalConfig(modes=("B0", "B1"), scenario="D", n=3, store_sizes=(40, 15), **_FAST)  # type: ignore[arg-type]
    result = run_eval(config, base=tiny)
    report = report_dict(result)
    assert report["store_sizes"] == [15, 40] and list(report["by_store_size"]) == ["15", "40"]
    assert result.modes["B1"] is result.by_store_size[40]
    for entry in report["by_store_size"].values():
        _check_summary(entry["B1"]["em"])
        assert -1.0 <= entry["b1_minus_b0_em"]["mean"] <= 1.0 and 0.0 <= entry["B1"]["retrieval"]["p@1"] <= 1.0
    assert "| 15 |" in report_markdown(report) and "| 40 |" in report_markdown(report)


def test_scenario_e_cli_on_tiny(tmp_path: Path, tiny: BaseModel) -> None:
    out, md = tmp_path / "e.json", tmp_path / "e.md"
    code = cli.main(["eval", "--scenario", "E", "--modes", "B0,B1", "--model", "tiny", "--n", "3", "--embedder",
                     "hashing", "--n-boot", "50", "--max-new-tokens", "6", "--json", str(out), "--markdown", str(md)])
    assert code == 0
    report = json.loads(out.read_text())
    assert list(report["modes"]) == ["B0", "B1"]
    full = report["full_context"]
    _check_summary(full["em"])
    assert full["exchanges_total"] == 15 and 0 <= full["exchanges_kept"]["min"] <= 15
    limit = tiny.model.config.max_position_embeddings
    assert full["context_limit"] == limit and full["prompt_tokens"]["max"] <= limit - 6
    assert report["full_vs_b1"]["tokens_ratio"] > 1.0  # the transcript is longer than k = 3 memories
    assert "Full context" in md.read_text()


# ----------------------------------------------------------------------------- bad flags (nothing is loaded)
@pytest.mark.parametrize(("argv", "error"), [
    (["--scenario", "C", "--store-sizes", "100"], "EvalConfigError"),
    (["--scenario", "D", "--n", "10", "--store-sizes", "40,100"], "EvalConfigError"),
    (["--scenario", "D", "--store-sizes", "500,many"], "EvalConfigError"),
    (["--scenario", "D", "--n", "2", "--store-sizes", "10,10"], "EvalConfigError"),
    (["--scenario", "C", "--modes", "B0,B2"], "ModeUnavailableError"),
    (["--scenario", "E", "--modes", "B3"], "ModeUnavailableError"),
])
def test_cli_bad_scenario_flags_exit_2(argv: list[str], error: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert cli.main(["eval", *argv, "--model", "tiny", "--embedder", "hashing", "--json", str(out)]) == 2
    assert error in capsys.readouterr().err and not out.exists()


def test_config_check_names_the_problem() -> None:
    with pytest.raises(EvalConfigError, match="below 50"):
        EvalConfig(scenario="D", n=10, store_sizes=(40,)).check()
    with pytest.raises(ModeUnavailableError, match="scenario A only"):
        EvalConfig(scenario="D", modes=("B2",)).check()
    EvalConfig(scenario="D", n=10, store_sizes=(50, 80)).check()  # a valid request passes
