"""SIGKILL loop: acknowledged batches survive a process kill at any moment, atomically.

A writer subprocess (``writer_proc.py``) runs a random workload (puts of 1-20 memories,
deletes, links, buffered bumps, flushes, compactions; memtable of 300 so flushes happen
constantly) and is SIGKILLed after a random delay, sometimes before it finished opening.
Each recovery must equal a prefix of the workload that contains every acknowledged batch
(see ``crashloop.py``); the next writer continues on the same directory.
"""

from __future__ import annotations

import pytest
from crashloop import kill_loop

KILLS_PER_MODE = 30  # x 2 sync modes = 60 kills in the default run
SLOW_KILLS_PER_MODE = 250  # x 2 = 500
KILLS_PER_DIR = 50  # the slow loop starts a fresh store every 50 kills to bound replay time


@pytest.mark.timeout(600)
@pytest.mark.parametrize("sync", ["normal", "full"])
def test_sigkill_loop(tmp_path, sync):
    model, stats = kill_loop(tmp_path / "store", seed=11 if sync == "normal" else 12, sync=sync,
                             kills=KILLS_PER_MODE)
    assert stats.kills == KILLS_PER_MODE
    assert stats.acked > 0 and stats.batches > 0
    assert stats.flushes_seen > 0, "the workload should flush during the run"
    print(f"sync={sync}: {stats}, {len(model.live)} live memories")


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("sync", ["normal", "full"])
def test_sigkill_loop_long(tmp_path, sync):
    total = 0
    for round_no in range(SLOW_KILLS_PER_MODE // KILLS_PER_DIR):
        _, stats = kill_loop(tmp_path / f"store{round_no}", seed=100 + round_no * 2 + (sync == "full"),
                             sync=sync, kills=KILLS_PER_DIR)
        total += stats.kills
    assert total == SLOW_KILLS_PER_MODE
