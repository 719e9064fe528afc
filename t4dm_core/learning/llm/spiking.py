"""Spiking adapter: a parallel bottleneck of leaky integrate-and-fire neurons next to decoder layers.

One :class:`SpikingBottleneck` per adapted layer ``ℓ`` adds to that layer's output a term
computed from the layer's *input* ``h`` (a parallel adapter)::

    I   = W_down · rms(h) + b_down                        (constant input current, rank r)
    U_t = β · U_{t-1} + I − θ · S_{t-1},  S_t = H(U_t − θ)   (snntorch ``Leaky``, t = 1..T, U_0 = 0)
    ρ   = (1/T) · Σ_t S_t                                  (spike rate per bottleneck neuron)
    out_ℓ(h) = layer_ℓ(h) + W_up · ρ

``H`` is a hard threshold forward and a fast-sigmoid surrogate ``∂S/∂U ≈ 1 / (1 + k|U − θ|)²``
backward (snntorch ``surrogate.fast_sigmoid``), so the adapter trains by backprop. ``W_up``
starts at zero: an untrained adapter adds exactly 0 and the model's logits equal the base
model's. The base weights are never touched; only the bottlenecks' parameters train.

Spike statistics: every forward pass adds its spike count and neuron-step count to the
block's counters; :meth:`SpikingAdapter.spike_rate` is the fraction of neuron-steps that
spiked since the last :meth:`SpikingAdapter.reset_stats`.

Spike-rate regulariser: each pass also keeps the block's mean firing rate ``ρ_b`` of that
pass as a tensor *with its autograd graph* (:attr:`SpikingBottleneck.last_rate`; padding
positions count like any token). :meth:`SpikeRateBand.penalty` turns the rates of the last
pass into the loss term ``weight · Σ_b (max(0, low − ρ_b) + max(0, ρ_b − high))²`` — zero
inside the band ``[low, high]`` (default 5–20 %), quadratic outside — whose surrogate
gradient pushes the thresholds' drive (``W_down``, ``b_down``) until each block fires inside
the band. It is added to the training loss only; it never changes the forward output.

:meth:`SpikingBottleneck.explore` runs the same dynamics with exploratory noise and
records the pre/post factors that the three-factor rule (:mod:`.three_factor`) needs.
Without autograd (inference, :meth:`SpikingBottleneck.explore`) the ``Leaky`` recurrence runs
written out in a few tensor operations per step; it gives the same spikes as the snntorch
module bit for bit (tested), which runs whenever gradients are on. Not thread-safe (forward
passes update counters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.hooks import decoder_layers, layer_input, with_hidden

__all__ = ["DEFAULT_RATE_BAND", "Exploration", "SpikeRateBand", "SpikingAdapter", "SpikingBottleneck",
           "block_parameter_count"]


@dataclass(frozen=True)
class Exploration:
    """A noisy pass of a bottleneck over N trials (T steps): output and the factors of each layer.

    ``output`` (N, H) is the noisy output. ``down_pre`` (T, N, D) / ``down_post`` (T, N, r) and
    ``up_pre`` (T, N, r) / ``up_post`` (T, N, H) are the presynaptic activity and the
    normalised perturbation (noise / σ²) of the postsynaptic units of ``down`` and ``up``.
    """

    output: Tensor
    down_pre: Tensor
    down_post: Tensor
    up_pre: Tensor
    up_post: Tensor
    spike_rate: float


def block_parameter_count(hidden_size: int, rank: int) -> int:
    """Trainable parameters of one :class:`SpikingBottleneck`: norm ``H`` + down ``H·r + r`` + up ``r·H``."""
    return hidden_size + 2 * hidden_size * rank + rank


class SpikingBottleneck(nn.Module):
    """down-projection → T steps of ``Leaky`` neurons (rate read-out) → zero-initialised up-projection."""

    def __init__(self, hidden_size: int, rank: int = 8, *, num_steps: int = 8, beta: float = 0.9,
                 threshold: float = 1.0, surrogate_slope: float = 25.0, init_bias: float = -0.1) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        if rank < 1 or num_steps < 1 or not 0.0 <= beta < 1.0 or threshold <= 0:
            raise AdapterError(f"invalid spiking bottleneck: rank {rank}, steps {num_steps}, beta {beta}, "
                               f"threshold {threshold}")
        self.num_steps = num_steps
        self.norm = nn.RMSNorm(hidden_size)
        self.down = nn.Linear(hidden_size, rank)
        self.up = nn.Linear(rank, hidden_size, bias=False)
        nn.init.constant_(self.down.bias, init_bias)
        nn.init.zeros_(self.up.weight)
        self.lif = snn.Leaky(beta=beta, threshold=threshold, spike_grad=surrogate.fast_sigmoid(slope=surrogate_slope))
        self.spikes_seen = 0.0
        self.neuron_steps_seen = 0
        self.last_rate: Tensor | None = None

    def reset_stats(self) -> None:
        """Zero the spike counters."""
        self.spikes_seen, self.neuron_steps_seen = 0.0, 0

    def _run(self, current: Tensor, noise: Tensor | None = None) -> Tensor:
        """Spike trains (T, ..., r) for a constant input ``current``, plus optional per-step ``noise``."""
        spikes = self._run_autograd(current, noise) if torch.is_grad_enabled() else self._run_inference(current, noise)
        self.last_rate = spikes.mean()
        self.spikes_seen += float(spikes.detach().sum())
        self.neuron_steps_seen += spikes.numel()
        return spikes

    def _run_autograd(self, current: Tensor, noise: Tensor | None) -> Tensor:
        mem = torch.zeros_like(current)
        trains = []
        for t in range(self.num_steps):
            drive = current if noise is None else current + noise[t]
            spk, mem = self.lif(drive, mem)
            trains.append(spk)
        return torch.stack(trains)

    def _run_inference(self, current: Tensor, noise: Tensor | None) -> Tensor:
        """The ``Leaky`` recurrence written out (no autograd): the same spikes, a fraction of the calls.

        Per step, as snntorch computes it with reset-by-subtraction and delayed reset:
        ``mem = beta·mem + drive − spk_prev·threshold`` (``spk_prev`` is the reset signal of the
        old ``mem``), then ``spk = [mem − threshold > 0]``.
        """
        beta = self.lif.beta.clamp(0, 1)
        threshold = self.lif.threshold
        mem = torch.zeros_like(current)
        spk = torch.zeros_like(current)
        trains = torch.empty((self.num_steps, *current.shape), dtype=current.dtype, device=current.device)
        for t in range(self.num_steps):
            drive = current if noise is None else current + noise[t]
            mem = beta * mem + drive - spk * threshold
            spk = (mem - threshold > 0).to(current.dtype)
            trains[t] = spk
        return trains

    def rates(self, hidden: Tensor) -> Tensor:
        """Spike rate of each bottleneck neuron, shape (..., r)."""
        return self._run(self.down(self.norm(hidden))).mean(dim=0)

    def forward(self, hidden: Tensor) -> Tensor:
        """The adapter's additive output (..., H) for layer input ``hidden``."""
        return self.up(self.rates(hidden))

    @torch.no_grad()
    def explore(self, hidden: Tensor, *, sigma_hidden: float, sigma_out: float,
                generator: torch.Generator | None = None) -> Exploration:
        """A noisy pass over N trials ``hidden`` (N, H): Gaussian noise on every neuron's drive at every step.

        ``sigma_hidden`` perturbs the bottleneck currents, ``sigma_out`` the up-projection's
        per-step output; either may be 0 (that layer then gets a zero post factor).
        """
        if hidden.dim() != 2:
            raise AdapterError(f"explore() takes trials as rows (N, H), got shape {tuple(hidden.shape)}")
        steps, n = self.num_steps, hidden.shape[0]
        x = self.norm(hidden)
        current = self.down(x)
        eta = torch.randn((steps, *current.shape), generator=generator) * sigma_hidden
        spikes = self._run(current, eta)
        zeta = torch.randn((steps, n, self.up.out_features), generator=generator) * sigma_out
        output = (spikes @ self.up.weight.T + zeta).mean(dim=0)
        return Exploration(
            output=output,
            down_pre=x.expand(steps, -1, -1),
            down_post=eta / sigma_hidden**2 if sigma_hidden > 0 else torch.zeros_like(eta),
            up_pre=spikes,
            up_post=zeta / sigma_out**2 if sigma_out > 0 else torch.zeros_like(zeta),
            spike_rate=float(spikes.mean()),
        )


@dataclass(frozen=True)
class SpikeRateBand:
    """Target firing-rate band ``[low, high]`` of every block and the weight of its penalty (see the module doc)."""

    low: float = 0.05
    high: float = 0.20
    weight: float = 10.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.low < self.high <= 1.0 and self.weight > 0 and math.isfinite(self.weight)):
            raise AdapterError(f"invalid spike-rate band {self!r}: need 0 <= low < high <= 1 and a finite weight > 0")

    def penalty(self, blocks: Sequence[SpikingBottleneck]) -> Tensor:
        """The regulariser over the rates of each block's last forward pass (differentiable; 0 inside the band).

        Raises :class:`~.errors.AdapterError` if a block has not run yet.
        """
        if any(b.last_rate is None for b in blocks):
            raise AdapterError("spike-rate penalty needs a forward pass of every block first")
        rates = torch.stack([b.last_rate for b in blocks if b.last_rate is not None])
        outside = torch.relu(self.low - rates) + torch.relu(rates - self.high)
        return self.weight * (outside**2).sum()


DEFAULT_RATE_BAND = SpikeRateBand()


class SpikingAdapter:
    """:class:`SpikingBottleneck` blocks added in parallel to decoder layers of a frozen LM.

    ``layers``: indices of the adapted decoder layers (default: every layer, like LoRA on
    every attention block). Extra keyword arguments go to every :class:`SpikingBottleneck`.
    Call :meth:`remove` to detach the hooks.
    """

    def __init__(self, model: Any, *, layers: Sequence[int] | None = None, rank: int = 8,
                 **block_options: Any) -> None:
        stack = decoder_layers(model)
        indices = list(layers) if layers is not None else list(range(len(stack)))
        if not indices or any(not 0 <= i < len(stack) for i in indices) or len(set(indices)) != len(indices):
            raise AdapterError(f"layers must be distinct indices in [0, {len(stack)}), got {indices}")
        hidden = int(model.config.hidden_size)
        self.layers = indices
        self.blocks = [SpikingBottleneck(hidden, rank, **block_options) for _ in indices]
        self._handles = [stack[i].register_forward_hook(self._hook_for(block), with_kwargs=True)
                         for i, block in zip(indices, self.blocks, strict=True)]

    @staticmethod
    def _hook_for(block: SpikingBottleneck) -> Any:
        def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            delta = block(layer_input(args, kwargs))
            return with_hidden(output, lambda h: h + delta.to(h.dtype))
        return hook

    def parameters(self) -> Iterator[nn.Parameter]:
        """The trainable parameters (all bottlenecks')."""
        for block in self.blocks:
            yield from block.parameters()

    def block_rates(self) -> list[float]:
        """Each block's mean firing rate over its last forward pass (NaN for a block that has not run)."""
        return [float(b.last_rate) if b.last_rate is not None else math.nan for b in self.blocks]

    def spike_rate(self) -> float:
        """Fraction of neuron-steps that spiked since the last reset (0.0 if nothing ran)."""
        steps = sum(b.neuron_steps_seen for b in self.blocks)
        return sum(b.spikes_seen for b in self.blocks) / steps if steps else 0.0

    def reset_stats(self) -> None:
        """Zero the spike counters of every block."""
        for block in self.blocks:
            block.reset_stats()

    def remove(self) -> None:
        """Detach the hooks; the model behaves exactly as the base model again."""
        for handle in self._handles:
            handle.remove()
