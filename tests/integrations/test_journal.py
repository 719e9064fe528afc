"""The dual-write journal: durability across reopen, torn tails, corruption, compaction, locking."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from integrations.dualwrite.errors import DualWriteError, JournalCorruptionError, JournalLockedError
from integrations.dualwrite.journal import DONE, FAILED, LOG_NAME, PENDING, Journal

OPS = [{"kind": "node_delete", "node": {"labels": ["Fact"], "key_property": "id", "key": "a"}, "detach": True}]


def _log(path: Path) -> Path:
    return path / LOG_NAME


def test_append_mark_and_reopen(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        first = journal.append("neo4j", ["neo4j", "t4dm"], OPS)
        second = journal.append("qdrant", ["qdrant", "t4dm"], OPS)
        journal.mark(first.seq, "neo4j", DONE)
        journal.mark(second.seq, "t4dm", FAILED, "boom")
        journal.set("primary", "t4dm")
        assert [e.seq for e in journal.pending("t4dm")] == [first.seq]
        assert [e.seq for e in journal.pending("qdrant")] == [second.seq]
    with Journal(tmp_path) as reopened:
        assert reopened.setting("primary") == "t4dm"
        entries = {e.seq: e for e in reopened.unfinished()}
        assert entries[first.seq].sides == {"neo4j": DONE, "t4dm": PENDING}
        assert entries[second.seq].sides == {"qdrant": PENDING, "t4dm": FAILED}
        assert entries[second.seq].errors == {"t4dm": "boom"}
        assert entries[first.seq].ops == OPS
        third = reopened.append("neo4j", ["neo4j", "t4dm"], OPS)
        assert third.seq == second.seq + 1  # seqs never repeat


def test_finished_entries_leave_memory_and_file(tmp_path: Path) -> None:
    with Journal(tmp_path, compact_after=3) as journal:
        open_entry = journal.append("neo4j", ["neo4j", "t4dm"], OPS)
        for _ in range(5):
            entry = journal.append("neo4j", ["neo4j", "t4dm"], OPS)
            journal.mark(entry.seq, "neo4j", DONE)
            journal.mark(entry.seq, "t4dm", DONE)
        assert journal.entry(entry.seq) is None
        assert [e.seq for e in journal.unfinished()] == [open_entry.seq]
        journal.compact()
        size_after = journal.stats()["file_bytes"]
        next_seq = journal.stats()["next_seq"]
    with Journal(tmp_path) as reopened:
        assert [e.seq for e in reopened.unfinished()] == [open_entry.seq]
        assert reopened.stats()["next_seq"] == next_seq
        assert reopened.stats()["file_bytes"] == size_after


def test_automatic_compaction_bounds_the_file(tmp_path: Path) -> None:
    def finish_one(journal: Journal) -> None:
        entry = journal.append("qdrant", ["qdrant", "t4dm"], OPS)
        journal.mark(entry.seq, "qdrant", DONE)
        journal.mark(entry.seq, "t4dm", DONE)

    with Journal(tmp_path / "one", compact_after=1000) as single:
        finish_one(single)
        per_entry = single.stats()["file_bytes"]
    with Journal(tmp_path / "many", compact_after=10) as journal:
        for _ in range(200):
            finish_one(journal)
        assert journal.stats()["file_bytes"] <= 11 * per_entry  # about compact_after entries, not 200
        assert journal.stats()["next_seq"] == 201


@pytest.mark.parametrize("cut", [1, 5, 11, -1])
def test_torn_tail_is_cut_off(tmp_path: Path, cut: int) -> None:
    with Journal(tmp_path) as journal:
        kept = journal.append("neo4j", ["neo4j", "t4dm"], OPS)
        size = journal.stats()["file_bytes"]
        journal.append("neo4j", ["neo4j", "t4dm"], OPS)
    data = _log(tmp_path).read_bytes()
    torn = data[:size + cut] if cut > 0 else data[:-1]  # a partial header, a partial body, one byte short
    _log(tmp_path).write_bytes(torn)
    with Journal(tmp_path) as reopened:
        assert [e.seq for e in reopened.unfinished()] == [kept.seq]
        assert reopened.stats()["truncated_bytes"] == len(torn) - size
        again = reopened.append("neo4j", ["neo4j", "t4dm"], OPS)
    with Journal(tmp_path) as third:
        assert [e.seq for e in third.unfinished()] == [kept.seq, again.seq]


def test_flipped_byte_in_the_last_record_is_treated_as_torn(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append("neo4j", ["neo4j", "t4dm"], OPS)
        journal.append("neo4j", ["neo4j", "t4dm"], OPS)
    data = bytearray(_log(tmp_path).read_bytes())
    data[-3] ^= 0xFF
    _log(tmp_path).write_bytes(bytes(data))
    with Journal(tmp_path) as reopened:
        assert len(reopened.unfinished()) == 1
        assert reopened.stats()["truncated_bytes"] > 0


def test_damage_before_valid_records_is_corruption(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        journal.append("neo4j", ["neo4j", "t4dm"], OPS)
        first_size = journal.stats()["file_bytes"]
        for _ in range(2):
            journal.append("neo4j", ["neo4j", "t4dm"], OPS)
    data = bytearray(_log(tmp_path).read_bytes())
    data[first_size // 2] ^= 0xFF  # inside the first record's body
    _log(tmp_path).write_bytes(bytes(data))
    with pytest.raises(JournalCorruptionError, match="byte 0"):
        Journal(tmp_path)
    assert _log(tmp_path).read_bytes() == bytes(data)  # nothing was cut


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    with Journal(tmp_path):
        with pytest.raises(JournalLockedError, match=str(tmp_path)):
            Journal(tmp_path)
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                from integrations.dualwrite.journal import Journal
                from integrations.dualwrite.errors import JournalLockedError
                try:
                    Journal({str(tmp_path)!r})
                except JournalLockedError:
                    raise SystemExit(7)
                """)],
            cwd=Path(__file__).resolve().parents[2], capture_output=True, timeout=60, check=False)
        assert child.returncode == 7, child.stderr
    with Journal(tmp_path):  # released on close
        pass


def test_lock_dies_with_the_process(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from integrations.dualwrite.journal import Journal
        j = Journal({str(tmp_path)!r})
        j.append("neo4j", ["neo4j", "t4dm"], {OPS!r})
        os.kill(os.getpid(), signal.SIGKILL)
        """)
    child = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2],
                           capture_output=True, timeout=60, check=False)
    assert child.returncode == -9
    with Journal(tmp_path) as journal:
        assert [e.sides for e in journal.unfinished()] == [{"neo4j": PENDING, "t4dm": PENDING}]


def test_misuse_is_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    entry = journal.append("neo4j", ["neo4j", "t4dm"], OPS)
    with pytest.raises(ValueError, match="state"):
        journal.mark(entry.seq, "neo4j", PENDING)
    with pytest.raises(DualWriteError, match="no open entry 99"):
        journal.mark(99, "neo4j", DONE)
    with pytest.raises(DualWriteError, match="side 'qdrant'"):
        journal.mark(entry.seq, "qdrant", DONE)
    journal.close()
    assert journal.closed
    with pytest.raises(DualWriteError, match="closed"):
        journal.append("neo4j", ["neo4j"], OPS)
    assert os.path.exists(tmp_path / "LOCK")
