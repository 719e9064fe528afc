"""Time one spiking-bottleneck recurrence: the snntorch ``Leaky`` loop vs the written-out inference loop.

Both paths run :class:`t4dm_core.learning.llm.spiking.SpikingBottleneck`'s 8 time steps for one
token (input shape ``(1, 1, rank)``, SmolLM2's hidden size 576, rank 8) without autograd, and
are checked to give the same spikes first. Reported: mean microseconds per call over
``--calls`` calls, and the ratio (lower is better for the inference path).

Run from the repository root: ``.venv/bin/python benchmarks/run_spiking_recurrence.py``.
"""

from __future__ import annotations

import argparse
import time

import torch

from t4dm_core.learning.llm.spiking import SpikingBottleneck


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rank", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    block = SpikingBottleneck(576, args.rank, init_bias=0.3)
    current = torch.randn(1, 1, args.rank) * 2
    timings: dict[str, float] = {}
    with torch.no_grad():
        if not torch.equal(block._run_autograd(current, None), block._run_inference(current, None)):
            raise SystemExit("the two paths disagree")
        for name, run in (("snntorch", block._run_autograd), ("written_out", block._run_inference)):
            started = time.perf_counter()
            for _ in range(args.calls):
                run(current, None)
            timings[name] = (time.perf_counter() - started) / args.calls * 1e6
    for name, us in timings.items():
        print(f"{name}: {us:.1f} us per call")
    print(f"ratio written_out / snntorch: {timings['written_out'] / timings['snntorch']:.3f}")


if __name__ == "__main__":
    main()
