"""Adapter accounting: parameter share of adapters vs the base model, gradient norms per component.

* :func:`parameter_share` — trainable adapter parameters over base-model parameters (the
  issue's "adapter parameters < 5 % of base" figure); parameters are de-duplicated by
  identity, so passing the same tensor twice counts it once.
* :func:`grad_norms` — the L2 norm of the current ``.grad`` of each named component (e.g.
  ``{"lora": ..., "spiking": ..., "episodic": ...}``), for logging which part of an adapter
  stack is learning; a component whose parameters have no gradient reports 0.0.

Pure functions over the tensors they are given; call them between ``backward()`` and the
optimiser step (or ``zero_grad``) for gradient norms. Not synchronised with training threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from t4dm_core.learning.llm.errors import AdapterError

__all__ = ["ParameterShare", "grad_norms", "parameter_share"]


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


def grad_norms(components: Mapping[str, Iterable[nn.Parameter]]) -> dict[str, float]:
    """L2 norm of the gradients of each component's (unique) parameters; 0.0 where no gradient exists."""
    out: dict[str, float] = {}
    for name, params in components.items():
        grads = [p.grad.detach().flatten() for p in _unique(params) if p.grad is not None]
        out[name] = float(torch.cat(grads).norm()) if grads else 0.0
    return out
