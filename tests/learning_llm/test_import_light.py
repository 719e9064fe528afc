"""``import t4dm_core`` and the adapter-stack package stay light: no torch, no transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
import t4dm_core
import t4dm_core.learning.llm as llm
from t4dm_core.learning.llm import MemoryPacker, RedactionPolicy, redact, ModelSpecError
heavy = sorted(m for m in ("torch", "transformers", "peft", "bitsandbytes", "snntorch") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_package_and_packer_do_not_import_torch() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "none"


def test_lazy_names_resolve_and_unknown_names_fail() -> None:
    import t4dm_core.learning.llm as llm

    assert len(set(llm.__all__)) == len(llm.__all__)
    assert set(llm.__all__) == set(llm._MODULE_OF)  # every lazy name is public, and nothing else
    for name in llm.__all__:
        assert getattr(llm, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        llm.nope  # noqa: B018
