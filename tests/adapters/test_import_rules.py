"""The layering rule: adapters use only t4dm_core's public names; the engine never imports adapters."""

from __future__ import annotations

import ast
import pathlib

import t4dm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _imports(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def test_adapters_use_only_public_engine_names() -> None:
    files = sorted((ROOT / "protocol_adapters").rglob("*.py"))
    assert files
    public = set(t4dm_core.__all__)
    for path in files:
        for module, names in _imports(path):
            if module == "t4dm_core":
                assert set(names) <= public, f"{path}: imports private names {set(names) - public}"
            else:
                assert not module.startswith("t4dm_core."), f"{path}: imports engine internals from {module}"


def test_engine_never_imports_adapters_or_integrations() -> None:
    for path in sorted((ROOT / "t4dm_core").rglob("*.py")):
        for module, _ in _imports(path):
            assert not module.startswith(("protocol_adapters", "integrations")), f"{path} imports {module}"
