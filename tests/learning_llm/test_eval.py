"""Evaluation harness (issue 6): metrics, scenario A items, modes, the ``t4dm eval`` command end to end."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from t4dm_core import InvalidInputError, cli
from t4dm_core.embedding import DEFAULT_EMBEDDER_NAME
from t4dm_core.learning.llm.evaluation import (
    EvalConfigError,
    ModeUnavailableError,
    bootstrap_ci,
    exact_match,
    normalize_answer,
    scenario_a,
    summarize,
    token_f1,
)
from t4dm_core.learning.llm.evaluation.embedders import HashingEmbedder
from t4dm_core.learning.llm.evaluation.prompting import build_prompt, extract_answer, system_instruction
from t4dm_core.learning.llm.evaluation.report import latency_summary, report_dict
from t4dm_core.learning.llm.evaluation.runner import EvalConfig, parse_modes, run_eval
from t4dm_core.learning.llm.models import BaseModel
from t4dm_core.learning.llm.packer import question_prompt


# ----------------------------------------------------------------------------- metrics
def test_normalisation_and_exact_match() -> None:
    assert normalize_answer("The  Cafe, Lumen!") == "cafe lumen"
    assert normalize_answer("the dentist's waiting-room") == "dentist s waiting room"
    assert exact_match("the Old Train Station.", "old train station") == 1.0
    assert exact_match("old train", "old train station") == 0.0


@pytest.mark.parametrize(("prediction", "gold", "expected"), [
    ("the old station", "the old train station", 0.8),  # P = 2/2, R = 2/3
    ("cafe cafe", "cafe", 2 / 3),  # multiset: P = 1/2, R = 1
    ("ski lodge", "the ski lodge", 1.0),
    ("town hall", "ferry terminal", 0.0),
    ("", "", 1.0),
    ("the", "a", 1.0),  # both empty after normalisation
    ("something", "", 0.0),
])
def test_token_f1_hand_values(prediction: str, gold: str, expected: float) -> None:
    assert token_f1(prediction, gold) == pytest.approx(expected)


def test_bootstrap_ci_contains_mean_and_is_seeded() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    lo, hi = bootstrap_ci(values, n_boot=500, seed=3)
    assert lo <= 0.7 <= hi and lo < hi
    assert bootstrap_ci(values, n_boot=500, seed=3) == (lo, hi)
    assert bootstrap_ci(values, n_boot=500, seed=4) != (lo, hi)
    assert bootstrap_ci([1.0] * 5, n_boot=50) == (1.0, 1.0)
    summary = summarize(values, n_boot=200, seed=1)
    assert summary.mean == pytest.approx(0.7)
    assert summary.to_json() == {"mean": summary.mean, "ci95": [summary.ci95[0], summary.ci95[1]]}


def test_bootstrap_ci_narrows_with_more_data() -> None:
    rng = np.random.default_rng(0)
    small = list(rng.integers(0, 2, 20).astype(float))
    large = list(rng.integers(0, 2, 2000).astype(float))
    (slo, shi), (llo, lhi) = bootstrap_ci(small, seed=0), bootstrap_ci(large, seed=0)
    assert lhi - llo < (shi - slo) / 3


@pytest.mark.parametrize("kwargs", [{"values": []}, {"values": [1.0], "n_boot": 0}, {"values": [1.0], "level": 1.0}])
def test_bootstrap_ci_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        bootstrap_ci(**kwargs)  # type: ignore[arg-type]


def test_latency_summary_hand_values() -> None:
    assert latency_summary([4.0, 1.0, 3.0, 2.0]) == {"mean": 2.5, "p50": 2.5, "p95": 4.0}
    assert latency_summary(list(map(float, range(1, 101))))["p95"] == 95.0


# ----------------------------------------------------------------------------- scenario A
def test_scenario_a_items_are_well_formed() -> None:
    data = scenario_a(10, seed=2)
    texts = {mid: text for mid, text, _meta in data.memories}
    assert len(data.memories) == 50 and len(texts) == 50 and len(data.questions) == 10
    for i, q in enumerate(data.questions):
        meta = next(m for mid, _t, m in data.memories if mid == q.evidence_id)
        assert meta["role"] == "target"
        assert q.question.startswith(f"Where did {meta['who']} ") and q.question.endswith(f" the {meta['object']}?")
        assert f" at {q.answer}" in texts[q.evidence_id]
        assert q.cue == ("direct" if i % 2 == 0 else "paraphrase")
        assert (q.direct_question == q.question) == (q.cue == "direct")
        assert f" {meta['verb']} the {meta['object']}" in texts[q.evidence_id]  # the own verb's past form
        # the hard negatives of the group share the person but are not the evidence
        group = [mid for mid, _t, m in data.memories if m["group"] == meta["group"]]
        assert len(group) == 5 and q.evidence_id in group
    assert scenario_a(10, seed=2) == data


def test_scenario_a_when_slot_and_bad_input() -> None:
    data = scenario_a(6, slot="when")
    texts = {mid: text for mid, text, _m in data.memories}
    for q in data.questions:
        assert q.question.startswith("When did ")
        assert re.fullmatch(r"[A-Z][a-z]+day (morning|afternoon|evening)", q.answer)
        assert q.answer in texts[q.evidence_id]
    with pytest.raises(EvalConfigError):
        scenario_a(0)
    with pytest.raises(EvalConfigError):
        scenario_a(3, slot="who")  # type: ignore[arg-type]


def test_scenario_a_vocabulary_holds_every_answer_and_is_question_independent() -> None:
    for slot in ("where", "when"):
        data = scenario_a(20, seed=5, slot=slot)  # type: ignore[arg-type]
        assert all(q.answer in data.vocabulary for q in data.questions)
        assert data.vocabulary == scenario_a(3, seed=9, slot=slot).vocabulary  # type: ignore[arg-type]
    assert len(scenario_a(2, slot="when").vocabulary) == 21


# ----------------------------------------------------------------------------- prompts and answer extraction
_PLACES = ("the old train station", "the train station", "Cafe Lumen", "the dentist's waiting room")


@pytest.mark.parametrize(("reply", "vocabulary", "expected"), [
    ("Kenji dropped off the thermos at the old train station.", _PLACES, "the old train station"),
    ("The answer is:\n- Cafe Lumen on Monday evening.", _PLACES, "Cafe Lumen"),
    ("  \n* the Dentist's waiting-room!", _PLACES, "the dentist's waiting room"),
    ("At cafe lumen, not the old train station.", _PLACES, "Cafe Lumen"),  # earliest entry wins
    ("at the train station", ("the train", "the train station"), "the train station"),  # tie: longest entry
    ("at the old train station", _PLACES, "the old train station"),  # 'train station' starts later
    ("Cafe Lumen.\nThe old train station.", _PLACES, "Cafe Lumen"),  # only the first sentence counts
    ("It was left at the ferry. Then Cafe Lumen.", _PLACES, "It was left at the ferry"),  # no entry: sentence kept
    ("the night market\nQuestion: next", (), "the night market"),
    ("The answer is:", (), "The answer is:"),
    ("", _PLACES, ""),
    ("stationery at cafelumen", _PLACES, "stationery at cafelumen"),  # token boundaries only
])
def test_extract_answer_hand_values(reply: str, vocabulary: tuple[str, ...], expected: str) -> None:
    assert extract_answer(reply, vocabulary) == expected


def _with_chat_template(tiny: BaseModel) -> object:
    tokenizer = copy.deepcopy(tiny.tokenizer)
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>\n"
                               "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    return tokenizer


def test_raw_prompt_without_chat_template(tiny: BaseModel) -> None:
    block = "Memories:\n- Ana left the pen at Cafe Lumen.\n\n"
    assert build_prompt(tiny.tokenizer, "Where did Ana leave the pen?", "", "where") == \
        question_prompt("Where did Ana leave the pen?")
    assert build_prompt(tiny.tokenizer, "Where did Ana leave the pen?", block, "where") == \
        block + question_prompt("Where did Ana leave the pen?")


def test_chat_prompt_uses_template_and_differs_only_by_memory_block(tiny: BaseModel) -> None:
    tokenizer = _with_chat_template(tiny)
    block = "Memories:\n- Ana left the pen at Cafe Lumen.\n\n"
    b0 = build_prompt(tokenizer, "When did Ana leave the pen?", "", "when")
    b1 = build_prompt(tokenizer, "When did Ana leave the pen?", block, "when")
    assert b0 == (f"<system>{system_instruction('when')}</system>\n"
                  "<user>Question: When did Ana leave the pen?</user>\n<assistant>")
    assert b1 == b0.replace("<user>", "<user>" + block, 1)
    assert "the day and the time of day" in system_instruction("when")
    assert "only the place" in system_instruction("where")


def test_hashing_embedder_is_deterministic_and_lexical() -> None:
    emb = HashingEmbedder(64)
    a, b = emb.embed_documents(["The blue umbrella", "blue umbrella!"])
    assert np.array_equal(a, b) and a.shape == (64,)
    assert np.array_equal(emb.embed_query("blue umbrella"), a)
    with pytest.raises(EvalConfigError):
        HashingEmbedder(1)


# ----------------------------------------------------------------------------- modes
def test_parse_modes() -> None:
    assert parse_modes("b0, B1,B0") == ("B0", "B1")
    with pytest.raises(EvalConfigError, match="B9"):
        parse_modes("B0,B9")


@pytest.mark.parametrize("mode", ["B2", "B3"])
@pytest.mark.parametrize("scenario", ["C", "D", "E"])
def test_modes_after_replay_need_scenario_a(mode: str, scenario: str) -> None:
    with pytest.raises(ModeUnavailableError, match="scenario A only"):
        run_eval(EvalConfig(modes=("B0", mode), scenario=scenario, model="smollm2", n=2))


def test_cli_b2_with_an_unloadable_model_gives_typed_error_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = cli.main(["eval", "--scenario", "A", "--modes", "B0,B2", "--model", str(tmp_path / "no-model"), "--n", "4",
                     "--json", str(out)])
    assert code == 2
    assert "ModelSpecError" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_unknown_scenario_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert cli.main(["eval", "--scenario", "Z", "--json", str(out)]) == 2
    assert "EvalConfigError" in capsys.readouterr().err and not out.exists()


def _check_mode(mode: dict[str, object], n: int) -> None:
    assert mode["n"] == n
    for metric in ("em", "f1"):
        summary = mode[metric]
        assert isinstance(summary, dict)
        lo, hi = summary["ci95"]
        assert 0.0 <= lo <= summary["mean"] <= hi <= 1.0
    latency = mode["latency_ms"]
    assert isinstance(latency, dict) and 0 < latency["p50"] <= latency["p95"]


def test_cli_end_to_end_on_tiny_with_consolidation(tmp_path: Path, tiny: BaseModel) -> None:
    out, md = tmp_path / "eval.json", tmp_path / "eval.md"
    code = cli.main(["eval", "--scenario", "A", "--modes", "B0,B1,B2,B3", "--model", "tiny", "--n", "12",
                     "--json", str(out), "--markdown", str(md), "--embedder", "hashing", "--seed", "1"])
    assert code == 0
    report = json.loads(out.read_text())
    assert {k: report[k] for k in ("scenario", "model", "n", "seed", "k")} == \
        {"scenario": "A", "model": "tiny", "n": 12, "seed": 1, "k": 3}
    assert list(report["modes"]) == ["B0", "B1", "B2", "B3"]
    for mode in report["modes"].values():
        _check_mode(mode, 12)
    assert "retrieval" not in report["modes"]["B0"] and "retrieval" not in report["modes"]["B3"]
    retrieval = report["modes"]["B1"]["retrieval"]
    assert 0.0 <= retrieval["p@1"] <= retrieval["mrr"] <= 1.0
    # the consolidation copies live in their own namespace: B2 retrieves exactly what B1 did
    assert report["modes"]["B2"]["retrieval"] == retrieval
    assert 0 < report["modes"]["B1"]["memory_tokens"]["max"] <= 256
    consolidation = report["consolidation"]
    assert consolidation["memories"] == 12 and consolidation["adapter"] == "lora"
    assert consolidation["quantization"] == "none" and consolidation["steps"] >= 1
    assert consolidation["objective"]["final"] <= consolidation["objective"]["initial"]
    params = consolidation["adapter_parameters"]
    assert params["base"] == tiny.parameter_count and 0 < params["trainable"] < params["base"]
    assert params["share"] == pytest.approx(params["trainable"] / params["base"])
    assert consolidation["spike_rate"] is None  # LoRA only: no spiking adapter
    table = md.read_text()
    assert all(f"| {mode} |" in table for mode in ("B0", "B1", "B2", "B3"))
    assert "after consolidating 12 target memories into lora" in table


def test_b0_b1_report_has_no_consolidation(tiny: BaseModel) -> None:
    result = run_eval(EvalConfig(modes=("B0",), n=2, embedder="hashing", n_boot=10), base=tiny)
    assert result.consolidation is None and "consolidation" not in report_dict(result)


def test_minilm_default_path_on_tiny(tiny: BaseModel) -> None:
    result = run_eval(EvalConfig(modes=("B1",), n=4, k=2, n_boot=50), base=tiny)
    assert result.embedder_name == DEFAULT_EMBEDDER_NAME
    b1 = result.modes["B1"]
    assert len(b1.em) == len(b1.evidence_ranks) == 4
    assert all(r is None or 1 <= r <= 2 for r in b1.evidence_ranks)
    # the packed prefix holds the retrieved memories, so it is never empty here
    assert min(b1.memory_tokens) > 0
    # every scored prediction is the documented extraction of the model's own reply
    vocabulary = scenario_a(4).vocabulary
    assert b1.predictions == [extract_answer(reply, vocabulary) for reply in b1.replies]


def test_cli_unwritable_report_path_fails_cleanly(tmp_path: Path, tiny: BaseModel,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = cli.main(["eval", "--modes", "B0", "--n", "2", "--embedder", "hashing", "--n-boot", "10",
                     "--json", str(blocker / "report.json")])
    assert code == 1
    assert "cannot write the report" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


def test_progress_bars_go_to_stderr_and_change_no_result(tiny: BaseModel, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = run_eval(EvalConfig(modes=("B0", "B1"), n=3, embedder="hashing", n_boot=10, max_new_tokens=4), base=tiny)
    assert capsys.readouterr().err == ""
    shown = run_eval(EvalConfig(modes=("B0", "B1"), n=3, embedder="hashing", n_boot=10, max_new_tokens=4,
                                progress=True), base=tiny)
    err = capsys.readouterr().err
    assert "A no memory" in err and "A memory on" in err and "0/3" in err  # the first render always shows
    for mode in ("B0", "B1"):
        assert shown.modes[mode].predictions == quiet.modes[mode].predictions
