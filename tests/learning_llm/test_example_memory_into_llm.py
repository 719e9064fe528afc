"""``examples/memory_into_llm.py`` runs end to end on the tiny model (SmolLM2 is its default outside tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from t4dm_core.learning.llm.models import BaseModel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "memory_into_llm.py"


def test_example_runs_and_its_adapter_reloads_by_name(tmp_path: Path, tiny: BaseModel,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("memory_into_llm_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        report = module.main(["--model", "tiny", "--embedder", "hashing", "--workdir", str(tmp_path)])
    finally:
        sys.modules.pop(spec.name, None)
    assert set(report["B0"]) == set(report["B1"]) == set(report["B3"]) == {"boat", "keys", "piano"}
    assert report["reload_matches"] is True
    assert sorted(report["provenance_memories"]) == ["boat", "keys", "piano"]
    assert (tmp_path / "adapters" / "demo-facts").is_dir()
    out = capsys.readouterr().out
    assert "B0 (no memory) | B1 (memory on)" in out and "reloaded by name, same answers: True" in out
