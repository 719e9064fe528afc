"""Stores written by earlier format versions keep opening with identical contents.

``data/v1`` was produced by ``make_golden_v1.py`` with format 1 and is committed; this
test must keep passing in every later release (add ``data/v2`` … when the format changes).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import t4dm_core
from tests.compat.make_golden_v1 import expected_vector

GOLDEN = Path(__file__).parent / "data" / "v1"


@pytest.fixture(params=[False, True], ids=["writer", "read_only"])
def golden(request, tmp_path):
    copy = tmp_path / "v1"
    shutil.copytree(GOLDEN, copy)
    with t4dm_core.open(copy, read_only=request.param) as store:
        yield store


def test_v1_contents(golden) -> None:
    s = golden
    assert s.dim == 8
    assert sorted(s.ids()) == sorted([f"m{i}" for i in range(20) if i != 4] + ["w1"])
    m7 = s.get("m7")
    assert m7.text == "memory 7" and m7.metadata == {"i": 7, "tag": "odd", "nested": {"x": [7]}}
    assert m7.valid_from == 1007.0
    np.testing.assert_allclose(m7.vector, expected_vector(7), rtol=1e-6)
    assert s.get("m3").text == "memory 3, revised"
    assert [v.text for v in s.history("m3")] == ["memory 3", "memory 3, revised"]
    assert s.get("m4") is None and s.history("m4")[-1].deleted
    assert s.get("m4", as_of=s.history("m4")[0].recorded_at).text == "memory 4"
    assert s.get("m5").access_count == 2
    assert s.get("m0", namespace="t2").text == "other tenant"
    assert s.get("w1").text == "only in the WAL"
    (edge,) = s.edges("m0")
    assert (edge.dst, edge.type, edge.weight) == ("m1", "next", pytest.approx(0.75))
    hits = s.search(expected_vector(12), k=3)
    assert hits[0].memory.id == "m12" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.memory.id for h in s.search(expected_vector(0), k=30, filter={"tag": "even"})} == \
        {f"m{i}" for i in range(0, 20, 2) if i != 4}
    # v1 segments carry no lexicon file: lexical search builds it from the stored texts
    assert [h.id for h in s.search("revised", mode="lexical")] == ["m3"]
    assert [h.id for h in s.search("WAL", mode="lexical")] == ["w1"]


def test_golden_is_format_1() -> None:
    newest = max(GOLDEN.glob("MANIFEST-*.json"))
    assert json.loads(newest.read_text())["body"]["format"] == 1


def test_newer_format_is_refused(tmp_path) -> None:
    copy = tmp_path / "v1"
    shutil.copytree(GOLDEN, copy)
    for manifest in copy.glob("MANIFEST-*.json"):
        doc = json.loads(manifest.read_text())
        body = {**doc["body"], "format": 99}
        import xxhash

        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        manifest.write_text(json.dumps({"body": body, "xxh3_128": xxhash.xxh3_128_hexdigest(canonical)}))
    with pytest.raises(t4dm_core.FormatVersionError, match="newer"):
        t4dm_core.open(copy)
