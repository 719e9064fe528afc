"""HEI-NW episodic adapter: gated cross-attention from a frozen LM's residual stream to memory tokens.

Placement: one :class:`EpisodicCrossAttention` block after decoder layer ``L =
attach_index(n, depth)`` (default depth 0.6: after 3 of 5 layers, 18 of 30), installed as a
forward hook on that layer; the base model's weights are never touched.

Memory tokens: the packed memory prefix (:class:`~.packer.PackedMemories`) is run through
the *frozen model itself* with the adapter idle, and the residual stream at the same
depth (``hidden_states[L + 1]``, i.e. the output of layer ``L``) is the memory's
representation (:meth:`EpisodicAdapter.encode`). Queries and memory therefore live in the
same space, and encoding needs no trainable parameters (it runs under ``no_grad``).

Block (per position ``t`` of the text, over all unmasked memory tokens)::

    q = W_q · rms(h_t),  k_j = W_k · rms(m_j),  v_j = W_v · rms(m_j)
    h_t ← h_t + tanh(g) ⊙ W_o · MHA(q, k, v)

with a per-channel gate ``g`` initialised to **zero**. Hence, exactly (not approximately):
with no memory (``None``, zero tokens, or a row whose mask is all false) the hook returns
the layer output unchanged, and at initialisation the added term is ``0 · finite = 0``, so
the logits equal the base model's bit for bit. Only the block's parameters train.

Not thread-safe: the memory of the current call is held on the adapter (set by
:meth:`EpisodicAdapter.run` or the :meth:`EpisodicAdapter.memory` context manager).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.hooks import attach_index, decoder_layers, with_hidden
from t4dm_core.learning.llm.packer import PackedMemories

__all__ = ["EpisodicAdapter", "EpisodicCrossAttention", "MemoryStates"]


@dataclass(frozen=True)
class MemoryStates:
    """Encoded memory tokens: ``states`` (B, M, H) and ``mask`` (B, M), True = a real token.

    B is 1 (shared by every row of the text batch) or the text batch size; M may be 0.
    """

    states: Tensor
    mask: Tensor

    def __post_init__(self) -> None:
        if self.states.dim() != 3 or self.mask.shape != self.states.shape[:2] or self.mask.dtype != torch.bool:
            raise AdapterError(f"memory states must be (B, M, H) with a bool (B, M) mask, got "
                               f"{tuple(self.states.shape)} and {tuple(self.mask.shape)} {self.mask.dtype}")

    @property
    def empty(self) -> bool:
        return self.states.shape[1] == 0 or not bool(self.mask.any())


class EpisodicCrossAttention(nn.Module):
    """The trainable block: multi-head cross-attention with a zero-initialised tanh output gate."""

    def __init__(self, hidden_size: int, memory_size: int | None = None, num_heads: int = 4,
                 head_dim: int | None = None) -> None:
        super().__init__()
        memory_size = memory_size or hidden_size
        head_dim = head_dim or max(1, hidden_size // num_heads)
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.norm_query = nn.RMSNorm(hidden_size)
        self.norm_memory = nn.RMSNorm(memory_size)
        self.q_proj = nn.Linear(hidden_size, inner, bias=False)
        self.k_proj = nn.Linear(memory_size, inner, bias=False)
        self.v_proj = nn.Linear(memory_size, inner, bias=False)
        self.o_proj = nn.Linear(inner, hidden_size, bias=False)
        self.gate = nn.Parameter(torch.zeros(hidden_size))

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: Tensor, memory: MemoryStates) -> Tensor:
        """``hidden`` (B, T, H) plus the gated read-out of ``memory``; rows without memory are returned as is."""
        if memory.empty:
            return hidden
        states, mask = memory.states.to(hidden.dtype), memory.mask
        if states.shape[0] not in (1, hidden.shape[0]):
            raise AdapterError(f"memory batch {states.shape[0]} must be 1 or the text batch {hidden.shape[0]}")
        has_memory = mask.any(dim=1)  # (Bm,)
        safe_mask = mask | ~has_memory[:, None]  # all-false rows attend to padding; their result is discarded
        q = self._heads(self.q_proj(self.norm_query(hidden)))
        m = self.norm_memory(states)
        k, v = self._heads(self.k_proj(m)), self._heads(self.v_proj(m))
        if k.shape[0] != q.shape[0]:
            k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
            safe_mask, has_memory = safe_mask.expand(q.shape[0], -1), has_memory.expand(q.shape[0])
        read = F.scaled_dot_product_attention(q, k, v, attn_mask=safe_mask[:, None, None, :])
        read = read.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[1], -1)
        updated = hidden + torch.tanh(self.gate) * self.o_proj(read)
        return torch.where(has_memory[:, None, None], updated, hidden)


class EpisodicAdapter:
    """An :class:`EpisodicCrossAttention` hooked after layer ``attach_index(n, depth)`` of a frozen LM.

    ``model`` is a ``transformers`` causal LM (its parameters are not modified or unfrozen).
    Call :meth:`remove` to detach the hook.
    """

    def __init__(self, model: Any, *, depth: float = 0.6, num_heads: int = 4) -> None:
        layers = decoder_layers(model)
        self.model = model
        self.layer_index = attach_index(len(layers), depth)
        hidden = int(model.config.hidden_size)
        self.block = EpisodicCrossAttention(hidden, num_heads=num_heads)
        self._memory: MemoryStates | None = None
        self._handle = layers[self.layer_index].register_forward_hook(self._hook)

    def _hook(self, _module: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        memory = self._memory
        if memory is None or memory.empty:
            return output
        return with_hidden(output, lambda h: self.block(h, memory))

    def parameters(self) -> Iterator[nn.Parameter]:
        """The trainable parameters (the block's only)."""
        return self.block.parameters()

    def remove(self) -> None:
        """Detach the hook; the model behaves exactly as the base model again."""
        self._handle.remove()

    @contextmanager
    def memory(self, memory: MemoryStates | None) -> Iterator[None]:
        """Within the block, forward passes of the model read ``memory`` (``None`` = no memory)."""
        previous, self._memory = self._memory, memory
        try:
            yield
        finally:
            self._memory = previous

    @torch.no_grad()
    def encode(self, packs: Sequence[PackedMemories] | Sequence[Sequence[int]]) -> MemoryStates:
        """Memory states of packed prefixes (or raw token-id lists), one row each, right-padded.

        Runs the frozen model on each prefix with no memory of its own and keeps its residual
        stream after the attachment layer. Empty prefixes give rows with an all-false mask.
        """
        rows = [list(p.input_ids) if isinstance(p, PackedMemories) else list(p) for p in packs]
        if not rows:
            raise AdapterError("encode() needs at least one memory prefix")
        width = max(len(r) for r in rows)
        hidden = int(self.model.config.hidden_size)
        if width == 0:
            return MemoryStates(torch.zeros(len(rows), 0, hidden), torch.zeros(len(rows), 0, dtype=torch.bool))
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
        with self.memory(None):
            out = self.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
        return MemoryStates(out.hidden_states[self.layer_index + 1].float(), mask)

    def run(self, memory: MemoryStates | None, **inputs: Any) -> Any:
        """``model(**inputs)`` reading ``memory`` (e.g. ``input_ids=..., labels=...``)."""
        with self.memory(memory):
            return self.model(**inputs)
