"""Kill-and-recover loop: run ``writer_proc.py``, SIGKILL it, reopen the store, compare with the model.

After each kill the store is reopened in this process (writer mode, plain LocalFS: recovery
must need no manual step) and must equal the model after some prefix of ``k`` batches:

* ``k`` lies between what must have survived and the last batch the writer started
  (+1 for the batch in flight), so an in-flight batch is all-or-nothing;
* when acknowledgements are durable (any sync mode on a real file system, ``sync="full"``
  under power-loss simulation) every acknowledged batch survives: ``k > max(ACK)``;
* under power-loss simulation with ``sync="normal"`` only a prefix must survive, but at
  least up to the last acknowledged explicit ``flush()`` (no holes either way).

The next writer resumes at the largest matching ``k`` on the same directory, so damage
from earlier crashes accumulates.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from workload import DIM, Model, match_prefix, search_problems, touched

import t4dm_core
from t4dm_core import Options

WRITER = Path(__file__).with_name("writer_proc.py")


@dataclass
class LoopStats:
    kills: int = 0
    early_kills: int = 0  # killed before the writer reported READY (during start-up/recovery)
    batches: int = 0
    acked: int = 0
    in_flight_lost: int = 0  # started but unacknowledged batches that did not survive
    unacked_survived: int = 0
    flushes_seen: int = 0
    killed_in: Counter[str] = field(default_factory=Counter)  # kind of the batch running at the kill


def run_writer(path: Path, *, seed: int, start: int, sync: str, fault_fs: bool, bumps: bool, rng: random.Random,
               log: Path) -> tuple[list[str], bool]:
    """Start the writer, SIGKILL it after a random delay; return its stdout lines and whether
    it was killed before reporting READY."""
    cmd = [sys.executable, str(WRITER), str(path), "--seed", str(seed), "--start", str(start), "--sync", sync]
    if fault_fs:
        cmd.append("--fault-fs")
    if not bumps:
        cmd.append("--no-bumps")
    lines: list[str] = []
    ready = threading.Event()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.endswith("\n"):
                    lines.append(line.strip())
                    if line.startswith("READY"):
                        ready.set()
            ready.set()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        early = rng.random() < 0.15
        if early:
            time.sleep(rng.uniform(0.1, 0.7))
        else:
            ready.wait(timeout=120)
            time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=60)
        reader.join(timeout=60)
    if rc != -signal.SIGKILL or "DONE" in lines:
        raise AssertionError(f"writer exited with {rc} before the kill:\n{log.read_text()[-3000:]}")
    return lines, early and "READY" not in lines


def kill_loop(path: Path, *, seed: int, sync: str, kills: int, fault_fs: bool = False, bumps: bool = True,
              model: Model | None = None, stats: LoopStats | None = None) -> tuple[Model, LoopStats]:
    """Run ``kills`` kill/recover iterations on ``path``; returns the final model and counters."""
    rng = random.Random(seed ^ 0x5EED)
    model = model or Model(seed, bumps=bumps)
    stats = stats or LoopStats()
    durable_acks = sync == "full" or not fault_fs
    for iteration in range(kills):
        lines, early = run_writer(path, seed=seed, start=model.batches, sync=sync, fault_fs=fault_fs,
                                  bumps=model.bumps, rng=rng, log=path.parent / f"writer-{path.name}.log")
        stats.kills += 1
        stats.early_kills += early
        acks = {int(x.split()[1]) for x in lines if x.startswith("ACK ")}
        starts = [int(x.split()[1]) for x in lines if x.startswith("START ")]
        last = max(starts, default=model.batches - 1)

        # The candidate models: after k batches, for k = model.batches .. last + 1.
        walker = model.copy()
        ops = []
        window_ids: set[str] = set()
        while walker.batches <= last:
            op = walker.step()
            ops.append(op)
            window_ids.update(touched(op))
        floor = model.batches
        if durable_acks and acks:
            floor = max(acks) + 1
        elif acks:  # power loss, sync="normal": everything up to an acknowledged flush is durable
            flushed = [b for b in acks if ops[b - model.batches][0] == "flush"]
            floor = max(flushed, default=floor - 1) + 1
        stats.flushes_seen += sum(op[0] == "flush" for op in ops)
        stats.killed_in["startup" if not starts else ops[-1][0] if last not in acks else "between"] += 1

        where = f"iteration {iteration} (seed {seed}, sync={sync}, fault_fs={fault_fs}, dir {path})"
        with t4dm_core.open(path, dim=DIM, options=Options(learn_on_read=False)) as store:  # verify without writing
            sample = set(rng.sample(model.order, min(100, len(model.order))))
            k, recovered = match_prefix(store, model, ops, window_ids | sample, where)
            assert k >= floor, (f"{where}: acknowledged batches lost: state = first {k} batches, "
                                f"but batches < {floor} were acknowledged as durable")
            new_puts = [m for op in ops[: k - model.batches] if op[0] == "put" for m in op[1]]
            probe = rng.sample(new_puts, min(30, len(new_puts))) + sorted(sample)[:10]
            problems = search_problems(store, recovered, probe)
            assert not problems, f"{where}: {problems}"
        stats.batches += k - model.batches
        stats.acked += len(acks)
        stats.in_flight_lost += last + 1 - k
        stats.unacked_survived += sum(1 for b in range(model.batches, k) if b not in acks)
        model = recovered
    return model, stats


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))
