"""The public surface is pinned, and importing the engine stays light."""

from __future__ import annotations

import subprocess
import sys

import t4dm_core

EXPECTED = {
    "CallableEmbedder", "CompactionPolicy", "CorruptionError", "DimensionMismatchError", "DuplicateIdError",
    "Edge", "Embedder", "EmbedderMismatchError", "FaultInjectingFS", "FileSystem", "FilterError",
    "FormatVersionError", "HistoryUnavailableError", "Hit", "InvalidInputError", "InvalidNamespaceError",
    "InvalidVectorError",
    "LocalFS", "Memory", "MemoryNotFoundError", "MetadataError", "MiniLMEmbedder", "Neighbor", "Options", "Ranking",
    "SleepPolicy", "SleepReport", "WriteGate", "GateDecision",
    "ReadOnlyError", "SizeTieredPolicy", "StorageError", "Store", "StoreClosedError", "StoreFailedError",
    "StoreLockedError", "T4DMError", "__version__", "exists", "open",
}


def test_all_is_pinned() -> None:
    assert set(t4dm_core.__all__) == EXPECTED
    for name in t4dm_core.__all__:
        assert hasattr(t4dm_core, name), name


def test_import_does_not_load_heavy_frameworks() -> None:
    code = ("import sys, t4dm_core; heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', "
            "'langchain_core', 'llama_index') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_errors_are_typed() -> None:
    assert issubclass(t4dm_core.DimensionMismatchError, ValueError)
    assert issubclass(t4dm_core.FilterError, t4dm_core.T4DMError)
    assert issubclass(t4dm_core.StoreFailedError, t4dm_core.StorageError)
    assert issubclass(t4dm_core.MemoryNotFoundError, KeyError)
