"""Offline benchmark corpus: docstring paragraphs of the Python stdlib and the project's .venv.

The corpus is deterministic for a given interpreter and installed package set:

1. Source files are collected from two roots (the stdlib of the interpreter that created
   ``.venv`` and ``.venv``'s site-packages), sorted by their root-relative path.
2. Every module, class and function docstring (``ast.get_docstring``) is split into
   paragraphs at blank lines; whitespace is collapsed; paragraphs shorter than
   :data:`MIN_CHARS` are dropped and longer than :data:`MAX_CHARS` are cut at a word
   boundary into pieces.
3. Exact duplicates are removed (first occurrence wins), the list is shuffled with a seeded
   generator, and the first ``n_docs`` become the indexed documents while the next
   ``n_queries`` become held-out queries (real texts of the same distribution that are not
   in the index).
4. Everything is embedded once with the store's default embedder (all-MiniLM-L6-v2,
   offline) and cached under ``benchmarks/.cache/``.

Run ``python benchmarks/corpus.py`` (from the project .venv) to build the cache; the
benchmark runner loads it with :func:`load_corpus`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO / "benchmarks" / ".cache"
PY_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
VENV_SITE_PACKAGES = REPO / ".venv" / "lib" / PY_VERSION / "site-packages"
MIN_CHARS = 30
MAX_CHARS = 1000
DEFAULT_DOCS = 100_000
DEFAULT_QUERIES = 2_000
DEFAULT_SEED = 20240601
EMBED_CHUNK = 1024
_WS = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Corpus:
    """An embedded corpus: documents to index and held-out queries (unit-length float32 rows)."""

    texts: list[str]
    sources: list[str]
    vectors: np.ndarray
    query_texts: list[str]
    query_vectors: np.ndarray
    info: dict[str, object]


def stdlib_root() -> Path:
    """Stdlib directory of the base interpreter (the one a venv was created from)."""
    return Path(sysconfig.get_paths(vars={"base": sys.base_prefix, "installed_base": sys.base_prefix})["stdlib"])


def source_files(roots: dict[str, Path]) -> list[tuple[str, Path]]:
    """All ``.py`` files under ``roots`` as (label/relative path, absolute path), sorted by label.

    The stdlib's ``site-packages`` is skipped (it belongs to whichever environment is active).
    """
    found: list[tuple[str, Path]] = []
    for label, root in roots.items():
        if not root.is_dir():
            raise FileNotFoundError(f"corpus root {root} does not exist")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
            for name in filenames:
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    found.append((f"{label}/{path.relative_to(root).as_posix()}", path))
    found.sort(key=lambda item: item[0])
    return found


def docstrings(source: bytes) -> Iterator[str]:
    """Docstrings of a module's module/class/function nodes in ``ast.walk`` order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old sources
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc


def paragraphs(doc: str) -> Iterator[str]:
    """Whitespace-normalised paragraphs of ``doc``, each at most :data:`MAX_CHARS` long."""
    for block in _BLANK_LINE.split(doc):
        text = _WS.sub(" ", block).strip()
        while len(text) > MAX_CHARS:
            cut = text.rfind(" ", MIN_CHARS, MAX_CHARS)
            cut = cut if cut > 0 else MAX_CHARS
            head, text = text[:cut].strip(), text[cut:].strip()
            yield head
        if len(text) >= MIN_CHARS:
            yield text


def collect_texts(roots: dict[str, Path]) -> tuple[list[str], list[str], int]:
    """Deduplicated paragraphs with the label of the file each came from, plus the file count."""
    seen: set[str] = set()
    texts: list[str] = []
    sources: list[str] = []
    files = source_files(roots)
    for label, path in files:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        for doc in docstrings(raw):
            for para in paragraphs(doc):
                if para not in seen:
                    seen.add(para)
                    texts.append(para)
                    sources.append(label)
    return texts, sources, len(files)


def embed(texts: list[str], batch_size: int = 128) -> np.ndarray:
    """Embed with the engine's default embedder, longest-first for tight padding; shows progress."""
    from tqdm import tqdm

    import t4dm_core

    embedder = t4dm_core.MiniLMEmbedder(batch_size=batch_size)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    with tqdm(total=len(texts), unit="text", desc="embedding", mininterval=5.0) as bar:
        for start in range(0, len(texts), EMBED_CHUNK):
            rows = order[start:start + EMBED_CHUNK]
            out[rows] = embedder.embed_documents([texts[i] for i in rows])
            bar.update(len(rows))
    return out


def cache_paths(n_docs: int, n_queries: int, seed: int) -> tuple[Path, Path]:
    """(texts JSON, vectors .npy) cache files of one corpus configuration."""
    stem = f"corpus-{n_docs}-{n_queries}-{seed}"
    return CACHE_DIR / f"{stem}.json", CACHE_DIR / f"{stem}.npy"


def build_corpus(n_docs: int = DEFAULT_DOCS, n_queries: int = DEFAULT_QUERIES, seed: int = DEFAULT_SEED) -> Path:
    """Collect, sample, embed and cache a corpus; returns the texts cache path."""
    texts_path, vectors_path = cache_paths(n_docs, n_queries, seed)
    roots = {"stdlib": stdlib_root(), "site-packages": VENV_SITE_PACKAGES}
    started = time.perf_counter()
    texts, sources, n_files = collect_texts(roots)
    need = n_docs + n_queries
    if len(texts) < need:
        raise SystemExit(f"only {len(texts)} distinct paragraphs found, {need} needed")
    pick = np.random.default_rng(seed).permutation(len(texts))[:need]
    chosen = [texts[i] for i in pick]
    chosen_sources = [sources[i] for i in pick]
    print(f"{len(texts)} distinct paragraphs from {n_files} files; sampled {need} "
          f"({time.perf_counter() - started:.1f}s)", flush=True)
    embed_started = time.perf_counter()
    vectors = embed(chosen)
    embed_seconds = time.perf_counter() - embed_started
    digest = hashlib.sha256("\n".join(chosen).encode()).hexdigest()[:16]
    meta = {
        "n_docs": n_docs, "n_queries": n_queries, "seed": seed, "distinct_paragraphs": len(texts),
        "files_scanned": n_files, "roots": {k: str(v) for k, v in roots.items()},
        "python": sys.version.split()[0], "min_chars": MIN_CHARS, "max_chars": MAX_CHARS,
        "embedder": "sentence-transformers/all-MiniLM-L6-v2", "embed_seconds": round(embed_seconds, 1),
        "texts_sha256_16": digest, "texts": chosen, "sources": chosen_sources,
    }
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(vectors_path.with_suffix(".tmp.npy"), vectors)
    os.replace(vectors_path.with_suffix(".tmp.npy"), vectors_path)
    tmp = texts_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp, texts_path)
    print(f"embedded {need} texts in {embed_seconds:.0f}s -> {vectors_path}", flush=True)
    return texts_path


def load_corpus(n_docs: int = DEFAULT_DOCS, n_queries: int = DEFAULT_QUERIES,
                seed: int = DEFAULT_SEED) -> Corpus:
    """Load a cached corpus (build it first with ``python benchmarks/corpus.py``)."""
    texts_path, vectors_path = cache_paths(n_docs, n_queries, seed)
    if not texts_path.exists() or not vectors_path.exists():
        raise FileNotFoundError(f"no cached corpus at {texts_path}; run: python benchmarks/corpus.py "
                                f"--docs {n_docs} --queries {n_queries} --seed {seed}")
    meta = json.loads(texts_path.read_text(encoding="utf-8"))
    vectors = np.load(vectors_path, mmap_mode="r")
    texts: list[str] = meta.pop("texts")
    sources: list[str] = meta.pop("sources")
    return Corpus(texts[:n_docs], sources[:n_docs], np.ascontiguousarray(vectors[:n_docs]),
                  texts[n_docs:], np.ascontiguousarray(vectors[n_docs:]), meta)


def main() -> None:
    """CLI: build the cache (a no-op when it exists, unless --force)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=DEFAULT_DOCS, help="documents to index")
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="held-out query texts")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts_path, vectors_path = cache_paths(args.docs, args.queries, args.seed)
    if texts_path.exists() and vectors_path.exists() and not args.force:
        print(f"cached: {texts_path}")
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    build_corpus(args.docs, args.queries, args.seed)


if __name__ == "__main__":
    main()
