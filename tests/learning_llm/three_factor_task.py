"""A small seeded regression task for the spiking bottleneck, trained by three-factor rule or backprop.

Shared by ``test_three_factor.py`` and ``measure_foundation.py``. Task: 64 fixed inputs
x ∈ R^16 (seeded), targets y* = 0.5 · tanh(A x) for a seeded random A; the bottleneck
(16 → 32 Leaky neurons, T = 8 → 16) must map x to y*; loss = mean squared error over all 64.

Three-factor training: per update, 32 trials drawn (seeded); a noise-free pass gives the
baseline loss per trial, a noisy :meth:`explore` pass the trial's loss; the modulator is
``M = loss_clean − loss_noisy`` (reward minus baseline). ``shuffle=True`` permutes M across
the trials of each update (the ablation: same rule, same magnitudes, no credit assignment).
A run whose weights blow up (non-finite loss) stops there and reports ``diverged_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t4dm_core.learning.llm.spiking import SpikingBottleneck
from t4dm_core.learning.llm.three_factor import ThreeFactorRule

DIM, RANK, N_INPUTS, BATCH = 16, 32, 64, 32
SIGMA_HIDDEN, SIGMA_OUT = 0.1, 0.1


@dataclass(frozen=True)
class Run:
    initial_loss: float
    final_loss: float
    losses: list[float]
    mean_spike_rate: float
    diverged_at: int | None = None  # update at which the loss stopped being finite (final_loss is then inf)


def task(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N_INPUTS, DIM, generator=gen)
    a = torch.randn(DIM, DIM, generator=gen) / DIM**0.5
    return x, 0.5 * torch.tanh(x @ a.T)


@torch.no_grad()
def _loss(block: SpikingBottleneck, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((block(x) - y) ** 2).mean())


def three_factor_run(seed: int, updates: int, *, shuffle: bool = False, lr: float = 0.02,
                     log_every: int = 50) -> Run:
    x_all, y_all = task(seed)
    torch.manual_seed(seed)
    block = SpikingBottleneck(DIM, RANK)
    gen = torch.Generator().manual_seed(seed + 1000)
    rule = ThreeFactorRule(lr=lr)
    losses, rates = [_loss(block, x_all, y_all)], list[float]()
    for step in range(updates):
        pick = torch.randint(N_INPUTS, (BATCH,), generator=gen)
        x, y = x_all[pick], y_all[pick]
        with torch.no_grad():
            clean = ((block(x) - y) ** 2).sum(dim=-1)
        run = block.explore(x, sigma_hidden=SIGMA_HIDDEN, sigma_out=SIGMA_OUT, generator=gen)
        modulator = clean - ((run.output - y) ** 2).sum(dim=-1)
        if not bool(torch.isfinite(modulator).all()):
            return Run(losses[0], float("inf"), losses, sum(rates) / max(1, len(rates)), step)
        if shuffle:
            modulator = modulator[torch.randperm(BATCH, generator=gen)]
        rule.apply(block, run, modulator)
        rates.append(run.spike_rate)
        if (step + 1) % log_every == 0:
            losses.append(_loss(block, x_all, y_all))
    return Run(losses[0], _loss(block, x_all, y_all), losses, sum(rates) / len(rates))


def backprop_run(seed: int, updates: int, *, lr: float = 1e-2, log_every: int = 50) -> Run:
    """Same task, block and batches, trained by Adam through the surrogate gradient."""
    x_all, y_all = task(seed)
    torch.manual_seed(seed)
    block = SpikingBottleneck(DIM, RANK)
    gen = torch.Generator().manual_seed(seed + 1000)
    opt = torch.optim.Adam(block.parameters(), lr=lr)
    losses = [_loss(block, x_all, y_all)]
    block.reset_stats()
    for step in range(updates):
        pick = torch.randint(N_INPUTS, (BATCH,), generator=gen)
        loss = ((block(x_all[pick]) - y_all[pick]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % log_every == 0:
            losses.append(_loss(block, x_all, y_all))
    return Run(losses[0], _loss(block, x_all, y_all), losses, block.spikes_seen / block.neuron_steps_seen)
