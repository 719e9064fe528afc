"""A real, offline text corpus: docstrings of the installed Python standard library.

Deterministic: files are walked in sorted order and parsed with :mod:`ast` (nothing is
imported or executed). Each item is one module, class or function docstring with the
module path, kind and qualified name, plus the module it belongs to, so examples can link
members to their module.
"""

from __future__ import annotations

import ast
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["DocItem", "iter_stdlib_docstrings", "sample_stdlib_docstrings"]

_SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo"}
MAX_CHARS = 600


@dataclass(frozen=True)
class DocItem:
    id: str  # "module:qualname" (stable across runs)
    module: str
    qualname: str
    kind: str  # "module" | "class" | "function"
    text: str


def _module_name(root: str, path: str) -> str:
    rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def _clean(doc: str) -> str:
    text = " ".join(doc.split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _walk_defs(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, str, str]]:
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            qual = f"{prefix}{node.name}"
            doc = ast.get_docstring(node)
            if doc:
                yield qual, "class" if isinstance(node, ast.ClassDef) else "function", doc
            if isinstance(node, ast.ClassDef):
                yield from _walk_defs(node.body, qual + ".")


def iter_stdlib_docstrings(min_chars: int = 40, root: str | None = None) -> Iterator[DocItem]:
    """Yield docstrings of the standard library at ``root`` (default: this interpreter's)."""
    root = root or sysconfig.get_paths()["stdlib"]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith((".", "_")))
        for filename in sorted(filenames):
            if not filename.endswith(".py") or (filename.startswith("_") and filename != "__init__.py"):
                continue
            path = os.path.join(dirpath, filename)
            try:
                with open(path, encoding="utf-8") as fh:
                    tree = ast.parse(fh.read(), filename=path)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            module = _module_name(root, path)
            doc = ast.get_docstring(tree)
            if doc and len(doc) >= min_chars:
                yield DocItem(f"{module}:", module, "", "module", _clean(doc))
            for qual, kind, text in _walk_defs(tree.body, ""):
                if len(text) >= min_chars:
                    yield DocItem(f"{module}:{qual}", module, qual, kind, _clean(text))


def sample_stdlib_docstrings(limit: int, min_chars: int = 40) -> list[DocItem]:
    """An evenly spread, deterministic sample of ``limit`` docstrings (every module's docstring first)."""
    items = list(iter_stdlib_docstrings(min_chars))
    modules = [it for it in items if it.kind == "module"]
    members = [it for it in items if it.kind != "module"]
    if len(modules) >= limit:
        return modules[:: max(1, len(modules) // limit)][:limit]
    room = limit - len(modules)
    step = max(1, len(members) // room)
    return modules + members[::step][:room]
