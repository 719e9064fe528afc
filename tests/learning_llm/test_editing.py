"""Scenario B (hot-patch facts): data, patch semantics, metric definitions, report shape, typed config errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import t4dm_core
from t4dm_core.learning.llm.evaluation.editing import (
    SYSTEMS,
    EditingConfig,
    locality_scores,
    run_editing,
    stale_scores,
    write_edits,
)
from t4dm_core.learning.llm.evaluation.embedders import HashingEmbedder
from t4dm_core.learning.llm.evaluation.errors import EvalConfigError
from t4dm_core.learning.llm.evaluation.scenario_b import (
    GENERAL_PROMPTS,
    RELATIONS,
    Edit,
    EditFact,
    EditScenario,
    scenario_b,
)
from t4dm_core.learning.llm.models import BaseModel


# ----------------------------------------------------------------------------- data
def test_scenario_is_deterministic_and_seeded() -> None:
    assert scenario_b(20, seed=3) == scenario_b(20, seed=3)
    assert scenario_b(20, seed=3).facts != scenario_b(20, seed=4).facts
    assert scenario_b(20, seed=3, patch_fraction=0.5).edits != scenario_b(20, seed=3).edits


def test_patch_semantics_latest_value_is_gold() -> None:
    data = scenario_b(40, seed=1, patch_fraction=0.25)
    assert len(data.facts) == 40 and len(data.patched) == 10
    assert len(data.edits) == 50 and sum(e.is_patch for e in data.edits) == 10
    by_id = {f.id: f for f in data.facts}
    assert len(by_id) == 40
    for fact in data.facts:
        edits = [(i, e) for i, e in enumerate(data.edits) if e.fact_id == fact.id]
        assert [e.is_patch for _, e in edits] == ([False, True] if fact.stale is not None else [False])
        assert fact.value == edits[-1][1].value  # the latest edit wins
        if fact.stale is not None:
            assert fact.stale == edits[0][1].value and fact.stale != fact.value
        assert all(e.question == fact.question and fact.subject in e.statement and e.value in e.statement
                   for _, e in edits)
        assert fact.paraphrase != fact.question and fact.subject in fact.paraphrase


def test_subjects_towns_and_probes_are_distinct() -> None:
    data = scenario_b(30, seed=2)
    subjects = [f.subject for f in data.facts]
    assert len(set(subjects)) == 30
    assert len(set(data.vocabulary)) == len(data.vocabulary) == 30 + len(data.patched)
    assert {f.value for f in data.facts} <= set(data.vocabulary)
    assert len(data.other_subject_probes) == 15 and data.general_probes == GENERAL_PROMPTS
    statements = " ".join(e.statement for e in data.edits)
    for probe in data.other_subject_probes:
        assert not any(s in probe for s in subjects)
        assert " ".join(probe.split()[2:4]).rstrip("?") not in statements  # its subject is never edited
    assert {f.relation.name for f in data.facts} == {r.name for r in RELATIONS}


def test_no_patches_and_all_patched() -> None:
    assert scenario_b(5, patch_fraction=0.0).patched == ()
    assert len(scenario_b(5, patch_fraction=1.0).patched) == 5


@pytest.mark.parametrize(("n", "fraction"), [(0, 0.2), (-1, 0.2), (True, 0.2), (5, -0.1), (5, 1.5), (5, "x")])
def test_scenario_bad_input(n: Any, fraction: Any) -> None:
    with pytest.raises(EvalConfigError):
        scenario_b(n, patch_fraction=fraction)
    with pytest.raises(EvalConfigError):
        scenario_b(3, seed=-1)


# ----------------------------------------------------------------------------- metrics
def test_locality_scores_compare_with_pre_edit_answers() -> None:
    assert locality_scores(["Paris", "6 hours", "", "the Old Quay"], ["paris.", "5 hours", "", "old quay"]) == \
        [1.0, 0.0, 1.0, 1.0]
    with pytest.raises(EvalConfigError):
        locality_scores(["a"], [])


def _hand_scenario() -> EditScenario:
    rel = RELATIONS[0]
    facts = (EditFact("f1", "Ann Vo", rel, "Brask", "Tolm"), EditFact("f2", "Bo Ka", rel, "Quell", None),
             EditFact("f3", "Cy Lu", rel, "Marn Ford", "Dusk"))
    edits = (Edit("f1", facts[0].question, "Tolm", "Ann Vo lives in Tolm.", False),)
    return EditScenario(edits, facts, (), (), ("Brask", "Tolm", "Quell", "Marn Ford", "Dusk"))


def test_stale_scores_count_only_patched_facts() -> None:
    data = _hand_scenario()
    assert stale_scores(data, ["Tolm", "Tolm", "Marn Ford"]) == [1.0, 0.0]  # f2 is not patched: not counted
    assert stale_scores(data, ["Brask", "Quell", "dusk!"]) == [0.0, 1.0]
    with pytest.raises(EvalConfigError):
        stale_scores(data, ["Brask"])


def test_store_returns_only_the_patched_value(tmp_path: Path) -> None:
    data = scenario_b(12, seed=5, patch_fraction=0.5)
    with t4dm_core.open(tmp_path / "s", embedder=HashingEmbedder()) as store:
        write_edits(store, data)
        for fact in data.patched:
            assert fact.stale is not None
            texts = [h.memory.text or "" for h in store.search(fact.question, k=12, learn=False)]
            assert any(fact.value in t for t in texts)
            assert not any(fact.stale in t for t in texts)
            assert len(store.history(fact.id)) == 2


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("change", [
    {"n": 0}, {"k": -1}, {"memory_tokens": 0}, {"max_new_tokens": 1.5}, {"n_boot": True}, {"steps_per_edit": 0},
    {"lora_rank": 0}, {"seed": "1"}, {"seed": -1}, {"model": ""}, {"embedder": "bert"}, {"systems": ()},
    {"systems": ("t4dm_memory", "rome")}, {"systems": ("naive_lora", "naive_lora")}, {"systems": ["naive_lora"]},
    {"lr": 0.0}, {"lr": float("nan")}, {"patch_fraction": 2.0},
])
def test_bad_config_is_a_typed_error(change: dict[str, Any]) -> None:
    with pytest.raises(EvalConfigError):
        EditingConfig(**change)


def test_read_path_carries_the_decoding_settings() -> None:
    read = EditingConfig(k=2, memory_tokens=64, max_new_tokens=8, embedder="hashing").read_path()
    assert (read.k, read.memory_tokens, read.max_new_tokens, read.embedder, read.slot) == (2, 64, 8, "hashing", "where")


# ----------------------------------------------------------------------------- end to end (tiny model)
@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread: the tiny model decodes many times faster than with two on a busy shared machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _check_summary(summary: dict[str, Any]) -> None:
    lo, hi = summary["ci95"]
    assert 0.0 <= lo <= summary["mean"] <= hi <= 1.0


@pytest.mark.usefixtures("one_thread")
def test_report_shape_on_tiny(tiny: BaseModel) -> None:
    config = EditingConfig(model="tiny", n=3, seed=1, embedder="hashing", n_boot=20, max_new_tokens=4,
                           steps_per_edit=2, patch_fraction=0.34)
    report = run_editing(config, base=tiny)
    assert report["scenario"] == "B" and report["n"] == 3 and report["patched"] == 1 and report["edits"] == 4
    assert set(report["modes"]) == {"B0", "B1"}
    for mode in report["modes"].values():
        assert mode["n"] == 3
        _check_summary(mode["em"])
        _check_summary(mode["f1"])
    assert report["modes"]["B1"]["retrieval"]["p@1"] == 1.0  # lexical retrieval finds each subject's own fact
    assert set(report["systems"]) == set(SYSTEMS)
    for name, system in report["systems"].items():
        for key in ("reliability", "generalization", "locality", "locality_other_subjects", "locality_general"):
            _check_summary(system[key])
        assert system["patched"]["n"] == 1
        assert system["latency_ms"]["p50"] > 0
        assert ("write_seconds" if name == "t4dm_memory" else "train_seconds") in system
    assert report["systems"]["t4dm_memory"]["reliability"] == report["modes"]["B1"]["em"]


@pytest.mark.usefixtures("one_thread")
def test_single_system_report(tiny: BaseModel) -> None:
    report = run_editing(EditingConfig(n=1, embedder="hashing", n_boot=10, max_new_tokens=2,
                                       systems=("t4dm_memory",)), base=tiny)
    assert set(report["systems"]) == {"t4dm_memory"} and set(report["modes"]) == {"B0", "B1"}


@pytest.mark.usefixtures("one_thread")
def test_locality_is_one_when_the_edits_change_nothing(tiny: BaseModel) -> None:
    """A LoRA trained with a negligible learning rate answers every probe as the unedited model did."""
    report = run_editing(EditingConfig(n=2, embedder="hashing", n_boot=10, max_new_tokens=4, systems=("naive_lora",),
                                       lr=1e-12, steps_per_edit=1), base=tiny)
    system = report["systems"]["naive_lora"]
    assert system["locality"]["mean"] == 1.0 and system["locality_general"]["mean"] == 1.0
    assert "B1" not in report["modes"]


# ----------------------------------------------------------------------------- t4dm eval --scenario B
@pytest.mark.usefixtures("one_thread")
def test_cli_scenario_b_writes_json_and_markdown(tmp_path: Path, tiny: BaseModel,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from t4dm_core import cli

    out, md = tmp_path / "b.json", tmp_path / "b.md"
    code = cli.main(["eval", "--scenario", "b", "--model", "tiny", "--n", "2", "--embedder", "hashing",
                     "--n-boot", "10", "--max-new-tokens", "2", "--systems", "t4dm_memory", "--patch-fraction", "0.5",
                     "--json", str(out), "--markdown", str(md)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["scenario"] == "B" and report["n"] == 2 and report["patched"] == 1
    assert set(report["systems"]) == {"t4dm_memory"} and set(report["modes"]) == {"B0", "B1"}
    markdown = md.read_text()
    assert "| t4dm_memory |" in markdown and "reliability >= 0.9" in markdown
    assert capsys.readouterr().out == markdown


@pytest.mark.parametrize(("argv", "error"), [
    (["--modes", "B0,B2"], "ModeUnavailableError"),
    (["--store-sizes", "10,20"], "EvalConfigError"),
    (["--systems", "t4dm_memory,rome"], "EvalConfigError"),
    (["--patch-fraction", "1.5"], "EvalConfigError"),
])
def test_cli_scenario_b_bad_flags_are_typed_errors(tmp_path: Path, argv: list[str], error: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from t4dm_core import cli

    out = tmp_path / "b.json"
    assert cli.main(["eval", "--scenario", "B", "--model", "tiny", "--n", "2", *argv, "--json", str(out)]) == 2
    assert error in capsys.readouterr().err and not out.exists()


def test_cli_scenario_b_flags_are_refused_elsewhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from t4dm_core import cli

    out = tmp_path / "a.json"
    assert cli.main(["eval", "--scenario", "A", "--systems", "naive_lora", "--json", str(out)]) == 2
    assert "scenario B only" in capsys.readouterr().err and not out.exists()
