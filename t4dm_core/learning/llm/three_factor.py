"""Three-factor learning for the spiking adapter: Δw = η · M · e.

Factors, per synapse ``w_ij`` (post unit ``i``, pre unit ``j``) and per trial ``n`` of
``T`` time steps (``t = 1..T``):

1. **pre** ``x_j(t)`` — presynaptic activity: the normalised layer input for ``down``
   (constant over a trial), the bottleneck spikes ``S_j(t)`` for ``up``. It is low-pass
   filtered into the presynaptic trace ``p_j(t) = λ_pre · p_j(t−1) + (1 − λ_pre) · x_j(t)``,
   ``p_j(0) = 0`` (``λ_pre = 0``: the trace is the activity itself).
2. **post** ``q_i(t) = ξ_i(t) / σ²`` — the postsynaptic unit's exploratory perturbation
   (the part of its drive that its input does not explain; Gaussian, variance σ²), as in
   node-perturbation learning. See :meth:`~.spiking.SpikingBottleneck.explore`.
3. **modulator** ``M_n`` — one scalar per trial, *supplied by the caller* (e.g. reward
   minus a baseline; later the write gate's reward, surprise or novelty).

The eligibility trace accumulates pre × post with decay ``λ_e``::

    e_ij(t) = λ_e · e_ij(t−1) + q_i(t) · p_j(t),   e_ij(0) = 0,   e = e(T)

and at the end of the trials the weight moves by ``Δw_ij = η · mean_n(M_n · e_ij,n)``. With
``M_n = R_n − R̄_n`` (reward of the noisy trial minus that of the noise-free one) the
expected update follows the reward gradient; with ``M`` unrelated to the noise (e.g.
shuffled across trials) its expectation is zero.

Bounds (so that a large modulator or a noisy estimate cannot blow the weights up; both are
applied per weight matrix, ``down`` and ``up`` separately):

* ``max_update_norm`` (default 0.5): a step's ``Δw`` whose Frobenius norm exceeds it is
  rescaled to exactly that norm (its direction is kept);
* ``max_weight_norm`` (default ``None`` = off): after the update, a weight matrix whose
  Frobenius norm exceeds it is rescaled onto that sphere.

:meth:`ThreeFactorRule.updates` returns the clipped changes; :meth:`ThreeFactorRule.apply`
adds them and then applies the weight-norm bound. Stateless functions; thread-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.spiking import Exploration, SpikingBottleneck

__all__ = ["ThreeFactorRule", "eligibility", "presynaptic_trace"]


def presynaptic_trace(pre: Tensor, decay: float) -> Tensor:
    """``p(t) = decay · p(t−1) + (1 − decay) · x(t)`` over the leading time axis of ``pre`` (T, N, n_pre)."""
    trace = torch.zeros_like(pre[0])
    out = []
    for x in pre:
        trace = decay * trace + (1.0 - decay) * x
        out.append(trace)
    return torch.stack(out)


def eligibility(pre: Tensor, post: Tensor, *, pre_decay: float = 0.0, trace_decay: float = 1.0) -> Tensor:
    """Eligibility ``e(T)`` per trial, (N, n_post, n_pre), from ``pre`` (T, N, n_pre) and ``post`` (T, N, n_post)."""
    if pre.dim() != 3 or post.dim() != 3 or pre.shape[:2] != post.shape[:2]:
        raise AdapterError(f"pre and post must be (T, N, n) with the same T and N, got {tuple(pre.shape)} and "
                           f"{tuple(post.shape)}")
    traces = presynaptic_trace(pre, pre_decay)
    e = torch.zeros(pre.shape[1], post.shape[2], pre.shape[2], dtype=pre.dtype)
    for q, p in zip(post, traces, strict=True):
        e = trace_decay * e + q[:, :, None] * p[:, None, :]
    return e


def _bounded(matrix: Tensor, max_norm: float | None) -> Tensor:
    """``matrix`` rescaled to Frobenius norm ``max_norm`` if it is longer (unchanged if ``max_norm`` is None)."""
    if max_norm is None:
        return matrix
    norm = float(matrix.norm())
    return matrix * (max_norm / norm) if norm > max_norm else matrix


@dataclass(frozen=True)
class ThreeFactorRule:
    """``Δw = lr · mean_n(M_n · e_n)`` for the ``down`` and ``up`` weights of a spiking bottleneck, bounded.

    See the module doc for ``max_update_norm`` (per-step clip) and ``max_weight_norm`` (weight bound).
    """

    lr: float = 0.05
    pre_decay: float = 0.0
    trace_decay: float = 1.0
    max_update_norm: float | None = 0.5
    max_weight_norm: float | None = None

    def __post_init__(self) -> None:
        bounds_ok = all(b is None or (b > 0 and math.isfinite(b)) for b in (self.max_update_norm, self.max_weight_norm))
        if not (self.lr > 0 and 0.0 <= self.pre_decay < 1.0 and 0.0 < self.trace_decay <= 1.0 and bounds_ok):
            raise AdapterError(f"invalid three-factor rule {self!r}: need lr > 0, 0 <= pre_decay < 1, "
                               "0 < trace_decay <= 1, and bounds that are None or finite > 0")

    def updates(self, run: Exploration, modulator: Tensor) -> dict[str, Tensor]:
        """Weight changes ``{"down": ΔW_down, "up": ΔW_up}`` for one exploration and its modulators (N,)."""
        n = run.output.shape[0]
        if modulator.shape != (n,):
            raise AdapterError(f"modulator must hold one value per trial ({n}), got shape {tuple(modulator.shape)}")
        if not bool(torch.isfinite(modulator).all()):
            raise AdapterError("modulator holds NaN or infinite values")
        out: dict[str, Tensor] = {}
        for name, pre, post in (("down", run.down_pre, run.down_post), ("up", run.up_pre, run.up_post)):
            e = eligibility(pre, post, pre_decay=self.pre_decay, trace_decay=self.trace_decay)
            out[name] = _bounded(self.lr * torch.einsum("n,noi->oi", modulator.to(e.dtype), e) / n,
                                 self.max_update_norm)
        return out

    @torch.no_grad()
    def apply(self, block: SpikingBottleneck, run: Exploration, modulator: Tensor) -> dict[str, float]:
        """Add the updates to ``block.down.weight`` and ``block.up.weight``; returns their norms."""
        deltas = self.updates(run, modulator)
        for weight, delta in ((block.down.weight, deltas["down"]), (block.up.weight, deltas["up"])):
            weight.copy_(_bounded(weight + delta, self.max_weight_norm))
        return {name: float(d.norm()) for name, d in deltas.items()}
