"""Finding a causal LM's decoder layers and changing a layer's output from a forward hook.

Shared by the adapters that sit on the residual stream (episodic cross-attention, spiking
bottleneck). Works for Llama/Qwen/Mistral-style models from ``transformers`` and for the
same models wrapped by ``peft`` (the first ``nn.ModuleList`` whose qualified name ends in
``layers`` is taken as the decoder stack).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from t4dm_core.learning.llm.errors import AdapterError

__all__ = ["attach_index", "decoder_layers", "layer_input", "with_hidden"]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder stack of ``model``; raises :class:`~.errors.AdapterError` if there is none."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] == "layers" and len(module) > 0:
            return module
    raise AdapterError(f"{type(model).__name__} has no decoder layer list ('...layers') to attach an adapter to")


def attach_index(num_layers: int, depth: float) -> int:
    """Index of the layer after whose output an adapter sits: ``round(depth * n)`` layers run before it.

    Clamped so at least one layer runs before and one after (e.g. depth 0.6: layer 2 of 5,
    layer 17 of 30). Raises :class:`~.errors.AdapterError` for fewer than 2 layers or a depth
    outside (0, 1).
    """
    if num_layers < 2:
        raise AdapterError(f"need a model with at least 2 decoder layers, got {num_layers}")
    if not 0.0 < depth < 1.0:
        raise AdapterError(f"depth must be in (0, 1), got {depth!r}")
    return max(0, min(num_layers - 2, round(depth * num_layers) - 1))


def with_hidden(output: Any, change: Callable[[Tensor], Tensor]) -> Any:
    """``output`` of a decoder layer (a tensor, or a tuple whose first item is the hidden states) changed."""
    if isinstance(output, Tensor):
        return change(output)
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return (change(output[0]), *output[1:])
    raise AdapterError(f"unexpected decoder-layer output type {type(output).__name__}")


def layer_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    """The hidden states a decoder layer was called with (positional or ``hidden_states=``)."""
    hidden = args[0] if args else kwargs.get("hidden_states")
    if not isinstance(hidden, Tensor):
        raise AdapterError("could not find the hidden states among the decoder layer's inputs")
    return hidden
