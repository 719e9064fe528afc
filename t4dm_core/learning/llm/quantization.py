"""Start-up probe of the bitsandbytes 4-bit NF4 path on CPU, and the config that uses it.

:func:`probe_nf4` builds one ``bitsandbytes.nn.Linear4bit`` (NF4) from a seeded fp32 layer,
runs a forward and a backward pass on CPU, and checks that the weight really is packed
4-bit storage, that the output is finite and close to the fp32 layer's (relative error
below :data:`MAX_RELATIVE_ERROR`), and that gradients reach the input. The verdict (and why
it failed) is cached for the process: the probe runs once. Thread-safe (``functools.cache``
may run the probe twice under a race; both runs give the same verdict).

Offline, bitsandbytes uses its pure-PyTorch CPU kernels (the optimised ones are fetched
from the Hugging Face hub), so NF4 is correct but slower than fp32 here; it saves memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["MAX_RELATIVE_ERROR", "QuantProbe", "nf4_config", "probe_nf4"]

MAX_RELATIVE_ERROR = 0.25


@dataclass(frozen=True)
class QuantProbe:
    """Whether 4-bit NF4 works here; ``detail`` says what was measured or why it failed."""

    available: bool
    detail: str
    bitsandbytes_version: str | None = None


@functools.cache
def probe_nf4() -> QuantProbe:
    """Probe the NF4 forward/backward path on CPU once per process (see the module doc)."""
    try:
        import bitsandbytes as bnb
    except Exception as exc:  # ImportError, or a broken native library raising at import
        return QuantProbe(False, f"bitsandbytes is not importable: {type(exc).__name__}: {exc}")
    version = str(getattr(bnb, "__version__", "unknown"))
    try:
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(32, 64, generator=gen) * 0.1
        layer = bnb.nn.Linear4bit(64, 32, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False, quant_type="nf4")
        layer = layer.to("cpu")  # quantizes the weight
        if layer.weight.dtype != torch.uint8 or getattr(layer.weight, "quant_state", None) is None:
            return QuantProbe(False, f"weight was not packed to 4 bits (dtype {layer.weight.dtype})", version)
        x = torch.randn(4, 64, generator=gen, requires_grad=True)
        out = layer(x)
        reference = x.detach() @ weight.T
        rel = float((out.detach() - reference).norm() / reference.norm())
        out.sum().backward()
    except Exception as exc:  # any failure of the native or fallback kernels means "not available"
        return QuantProbe(False, f"NF4 forward/backward failed on CPU: {type(exc).__name__}: {exc}", version)
    if not torch.isfinite(out).all() or x.grad is None or not torch.isfinite(x.grad).all():
        return QuantProbe(False, "NF4 layer produced non-finite outputs or gradients", version)
    if rel > MAX_RELATIVE_ERROR:
        return QuantProbe(False, f"NF4 output relative error {rel:.3f} > {MAX_RELATIVE_ERROR}", version)
    return QuantProbe(True, f"NF4 Linear4bit forward/backward on CPU, relative error {rel:.3f}", version)


def nf4_config() -> Any:
    """``transformers.BitsAndBytesConfig`` for 4-bit NF4 weights with fp32 compute."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
