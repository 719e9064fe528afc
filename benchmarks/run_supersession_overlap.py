"""Can similarity alone tell an update from a different fact? (issue 4, scenario C "appended").

Scenario C stored as one memory per statement leaves nothing but similarity to say that "Ingrid
prefers Deezer" replaces "Ingrid prefers Spotify". This prints, with MiniLM, the cosine of
each (old value, new value) statement pair of C next to the cosine of scenario A's target
stories and their hard negatives (different facts that differ in one slot) and of each C
statement and its nearest statement about another key, then how many of each a threshold
tau would take for an update. Run: ``.venv/bin/python benchmarks/run_supersession_overlap.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import run_memory_eval as ev  # noqa: E402

from seeds import scenarios as sc  # noqa: E402


def main() -> None:
    emb = ev.QueryVectors(HERE / ".cache" / "memory-eval")
    facts = sc.changing_facts(0, 80, 80, 4)
    statements = [(f.key, c.text) for f in facts for c in f.changes]
    vec = dict(zip([t for _, t in statements], emb.matrix([t for _, t in statements]), strict=True))
    updates = np.array([float(vec[a.text] @ vec[b.text]) for f in facts
                        for a, b in zip(f.changes, f.changes[1:], strict=False)])
    stories = sc.slot_stories(0, 300)
    a_vec = dict(zip([it.id for it in stories.items], emb.matrix([it.text for it in stories.items]), strict=True))
    negatives = np.array([float(a_vec[f"a-{g:04d}-t"] @ a_vec[f"a-{g:04d}-n{j}"]) for g in range(300)
                          for j in range(1, 5)])
    matrix = np.stack([vec[t] for _, t in statements])
    sims = matrix @ matrix.T
    keys = np.array([k for k, _ in statements])
    sims[keys[:, None] == keys[None, :]] = -1.0
    other = sims.max(axis=1)
    print("| pairs | n | p10 | median | p90 | max |\n|---|---|---|---|---|---|")
    for name, x in [("C: old vs new value of one key", updates), ("A: target vs hard negative", negatives),
                    ("C: statement vs nearest statement of another key", other)]:
        print(f"| {name} | {len(x)} | {np.percentile(x, 10):.3f} | {np.median(x):.3f} | {np.percentile(x, 90):.3f} "
              f"| {x.max():.3f} |")
    print("\n| tau | updates caught | A hard negatives taken for updates | other C keys taken for updates |"
          "\n|---|---|---|---|")
    for tau in (0.8, 0.85, 0.9, 0.95):
        caught = [np.mean(x >= tau) for x in (updates, negatives, other)]
        print(f"| {tau} | " + " | ".join(f"{c:.3f}" for c in caught) + " |")


if __name__ == "__main__":
    main()
