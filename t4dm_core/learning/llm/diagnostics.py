"""Adapter accounting: parameter share of adapters vs the base model, gradient norms per component.

* :func:`parameter_share` — trainable adapter parameters over base-model parameters (the
  issue's "adapter parameters < 5 % of base" figure); parameters are de-duplicated by
  identity, so passing the same tensor twice counts it once.
* :func:`rank_for_budget` — the adapter rank whose parameter count (given by a counting
  function) lies closest to a budget, e.g. the spiking rank that matches a LoRA adapter's
  trainable parameters for an equal-parameter comparison.
* :func:`grad_norms` — the L2 norm of the current ``.grad`` of each named component (e.g.
  ``{"lora": ..., "spiking": ..., "episodic": ...}``), for logging which part of an adapter
  stack is learning; a component whose parameters have no gradient reports 0.0.

Pure functions over the tensors they are given; call them between ``backward()`` and the
optimiser step (or ``zero_grad``) for gradient norms. Not synchronised with training threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from t4dm_core.learning.llm.errors import AdapterError

__all__ = ["ParameterShare", "grad_norms", "parameter_share", "rank_for_budget"]


@dataclass(frozen=True)
class ParameterShare:
    """``adapter`` parameter count, ``base`` parameter count, and ``share = adapter / base``."""

    adapter: int
    base: int

    @property
    def share(self) -> float:
        return self.adapter / self.base


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for p in params:
        seen.setdefault(id(p), p)
    return list(seen.values())


def parameter_share(adapter_params: Iterable[nn.Parameter], base_parameters: int) -> ParameterShare:
    """Count ``adapter_params`` (unique tensors) against ``base_parameters`` (> 0, e.g. ``parameter_count``)."""
    if base_parameters <= 0:
        raise AdapterError(f"base_parameters must be positive, got {base_parameters}")
    return ParameterShare(sum(p.numel() for p in _unique(adapter_params)), base_parameters)


def rank_for_budget(budget: int, count: Callable[[int], int], *, max_rank: int = 4096) -> int:
    """The rank in ``[1, max_rank]`` whose ``count(rank)`` is closest to ``budget`` (ties: the smaller rank).

    ``count`` must be non-decreasing in the rank (parameter counts are). Raises
    :class:`~.errors.AdapterError` for a budget or ``max_rank`` below 1.
    """
    if budget < 1 or max_rank < 1:
        raise AdapterError(f"budget and max_rank must be >= 1, got {budget} and {max_rank}")
    best = 1
    for rank in range(1, max_rank + 1):
        if abs(count(rank) - budget) < abs(count(best) - budget):
            best = rank
        if count(rank) >= budget:
            break
    return best


def grad_norms(components: Mapping[str, Iterable[nn.Parameter]]) -> dict[str, float]:
    """L2 norm of the gradients of each component's (unique) parameters; 0.0 where no gradient exists."""
    out: dict[str, float] = {}
    for name, params in components.items():
        grads = [p.grad.detach().flatten() for p in _unique(params) if p.grad is not None]
        out[name] = float(torch.cat(grads).norm()) if grads else 0.0
    return out
