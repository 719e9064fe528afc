"""Generate the golden format-1 store used by test_compat.py.

Run once per released format version; the output directory is committed and must keep
opening in every later release:

    .venv/bin/python tests/compat/make_golden_v1.py tests/compat/data/v1
"""

from __future__ import annotations

import sys

import numpy as np

import t4dm_core
from t4dm_core import Memory, Options

DIM = 8


def expected_vector(i: int) -> np.ndarray:
    v = np.cos(np.arange(DIM, dtype=np.float64) * (i + 1))
    return (v / np.linalg.norm(v)).astype(np.float32)


def build(path: str) -> None:
    with t4dm_core.open(path, dim=DIM, options=Options(auto_compact=False)) as s:
        s.put_many([Memory(text=f"memory {i}", id=f"m{i}", vector=expected_vector(i),
                           metadata={"i": i, "tag": "even" if i % 2 == 0 else "odd", "nested": {"x": [i]}},
                           valid_from=1_000.0 + i) for i in range(20)])
        s.link("m0", "m1", type="next", weight=0.5)
        s.flush()  # segment 1
        s.put(Memory(text="memory 3, revised", id="m3", vector=expected_vector(3), metadata={"i": 3, "tag": "odd"}))
        s.delete(["m4"])
        s.put(Memory(text="other tenant", id="m0", namespace="t2", vector=expected_vector(0)))
        s.bump("m5", "access_count", 2)
        s.strengthen("m0", "m1", 0.25, type="next")
        s.flush()  # segment 2
        s.put(Memory(text="only in the WAL", id="w1", vector=expected_vector(30)))


if __name__ == "__main__":
    build(sys.argv[1])
