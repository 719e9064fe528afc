"""Evaluation harness of the adapter stack (issue 6): modes B0-B3 on scenarios, with a JSON + Markdown report.

* :mod:`.metrics` — normalised exact match, token F1, seeded bootstrap 95% CIs;
* :mod:`.items` — the shared item types (:class:`EvalQuestion`, :class:`EvalSet`);
* :mod:`.scenario_a` — scenario A (slot stories with hard negatives) as memories + questions;
* :mod:`.scenario_c` — scenario C (preferences / settings changing over time; versioned or append-only);
* :mod:`.scenario_d` — scenario D (scenario A's questions in stores of growing size);
* :mod:`.scenario_e` — scenario E (a long chat transcript: full context vs retrieval);
* :mod:`.embedders` — the MiniLM default or a deterministic hashing embedder for tests;
* :mod:`.prompting` — prompt formatting (chat template when the model has one) and answer extraction;
* :mod:`.runner` — builds the store and runs B0 (no memory), B1 (retrieve, pack, decode), the
  scenario's comparison systems and, on scenario A, B2/B3 (the same after consolidation; in
  other scenarios, or when the consolidation cannot run, they raise :class:`ModeUnavailableError`);
* :mod:`.consolidated` — consolidates the scenario's target memories into LoRA for B2/B3;
* :mod:`.report` — the JSON document and its Markdown rendering;
* :mod:`.errors` — typed errors.

Importing this package imports numpy and the store, not torch (the runner imports torch when a model runs).
"""

from __future__ import annotations

from t4dm_core.learning.llm.evaluation.errors import EvalConfigError, ModeUnavailableError
from t4dm_core.learning.llm.evaluation.items import EvalQuestion, EvalSet
from t4dm_core.learning.llm.evaluation.metrics import (
    MetricSummary,
    bootstrap_ci,
    exact_match,
    normalize_answer,
    summarize,
    token_f1,
)
from t4dm_core.learning.llm.evaluation.scenario_a import scenario_a
from t4dm_core.learning.llm.evaluation.scenario_c import scenario_c
from t4dm_core.learning.llm.evaluation.scenario_d import scenario_d
from t4dm_core.learning.llm.evaluation.scenario_e import scenario_e

__all__ = [
    "EvalConfigError",
    "EvalQuestion",
    "EvalSet",
    "MetricSummary",
    "ModeUnavailableError",
    "bootstrap_ci",
    "exact_match",
    "normalize_answer",
    "scenario_a",
    "scenario_c",
    "scenario_d",
    "scenario_e",
    "summarize",
    "token_f1",
]
