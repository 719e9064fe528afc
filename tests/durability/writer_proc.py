"""Writer subprocess for the crash tests: runs the workload until it is killed.

Usage: ``python writer_proc.py DIR --seed S --start K --sync normal|full [--fault-fs] [--no-bumps]``.

Rebuilds the model of batches ``0..K-1`` (the store must already hold exactly that state),
opens the store, prints ``READY``, then for each batch ``b`` prints ``START b``, runs it and,
once it is acknowledged, prints ``ACK b`` for it and for every earlier batch whose
durability it implies (buffered bumps and compactions are acknowledged by the next durable
write). Every line is flushed immediately. ``--fault-fs`` opens the store through
:class:`t4dm_core.FaultInjectingFS`: unsynced bytes then live only in this process, so a
SIGKILL loses them exactly as a power cut would.
"""

from __future__ import annotations

import argparse
import sys

from workload import DIM, execute, replay

import t4dm_core
from t4dm_core import FaultInjectingFS, Options

WRITER_OPTIONS = {"memtable_max_records": 300, "hnsw_m": 12, "hnsw_ef_construction": 64, "num_threads": 1,
                  "learn_on_read": False}  # the crash model checks storage, not learning


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--sync", choices=("normal", "full"), required=True)
    parser.add_argument("--fault-fs", action="store_true")
    parser.add_argument("--no-bumps", action="store_true")
    parser.add_argument("--max-batches", type=int, default=100_000)
    args = parser.parse_args(argv)

    model = replay(args.seed, args.start, bumps=not args.no_bumps)
    fs = FaultInjectingFS() if args.fault_fs else None
    store = t4dm_core.open(args.path, dim=DIM, options=Options(sync=args.sync, **WRITER_OPTIONS), fs=fs)
    print("READY", flush=True)
    unacked: list[int] = []
    for _ in range(args.max_batches):
        b = model.batches
        op = model.plan()
        print(f"START {b}", flush=True)
        durable = execute(store, args.seed, b, op)
        model.apply(op)
        unacked.append(b)
        if durable:
            print("".join(f"ACK {n}\n" for n in unacked), end="", flush=True)
            unacked.clear()
    store.close()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
