"""A model-based gradient-overlap proxy for the replay scheduler (:mod:`.replay`).

:class:`GradientOverlap` scores each candidate memory by how much its training update would
share with the update of what is already consolidated::

    overlap_i = (1 + cos(g_i, ḡ_ref)) / 2        in [0, 1], higher = more overlap

where ``g_i`` is the gradient of the memory text's mean next-token loss with respect to the
given ``parameters`` (normally the freshly attached adapter that the consolidation is about
to train, so the proxy measures the very update directions that will interfere), and
``ḡ_ref`` is the mean of the reference memories' gradients (the consolidated set the
scheduler passes in). With no reference memories every score is 0.0 — the same convention as
:func:`~.replay.vector_centroid_overlap`. A zero gradient (e.g. a text of one token) gives
cosine 0, i.e. 0.5.

Each text costs one forward and one backward pass (truncated to ``max_len`` tokens); the
gradients are kept as float32 vectors, so memory is ``(candidates + references) ×
parameter count × 4`` bytes — attach a small adapter, not the whole model. The model is left as
it was: the parameters' ``requires_grad`` flags and ``.grad`` tensors are restored and the
model's train/eval mode is kept. Deterministic for a deterministic model; not thread-safe (it
drives one model).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from t4dm_core import InvalidInputError, Memory
from t4dm_core.learning.llm.replay import MemoryOverlap
from t4dm_core.learning.llm.training import IGNORE_INDEX, lm_batch

__all__ = ["GradientOverlap"]


@contextmanager
def _grad_enabled(params: Sequence[nn.Parameter]) -> Iterator[None]:
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        yield
    finally:
        for p, flag, grad in zip(params, flags, grads, strict=True):
            p.requires_grad_(flag)
            p.grad = grad


class GradientOverlap(MemoryOverlap):
    """``(1 + cos(gradient of the memory, mean gradient of the reference)) / 2`` (see the module doc).

    Args:
        model: a causal LM (``model(input_ids=, attention_mask=).logits``), e.g. an adapter
            :class:`~.adapter_store.Attachment`'s ``model``.
        tokenizer: its tokenizer.
        parameters: the tensors the gradient is taken over (at least one; de-duplicated).
        max_len: tokens of each memory text used (>= 2).
    """

    def __init__(self, model: Any, tokenizer: Any, parameters: Sequence[nn.Parameter], *, max_len: int = 64) -> None:
        unique = list({id(p): p for p in parameters}.values())
        if not unique:
            raise InvalidInputError("GradientOverlap needs at least one parameter to take gradients over")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
            raise InvalidInputError(f"max_len must be an integer >= 2, got {max_len!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.parameters = unique
        self.max_len = max_len

    def gradient(self, text: str) -> np.ndarray:
        """The flattened float32 gradient of ``text``'s mean next-token loss over the parameters."""
        batch = lm_batch(self.tokenizer, [text], self.max_len)
        grads: tuple[torch.Tensor | None, ...] = tuple(None for _ in self.parameters)
        with _grad_enabled(self.parameters):
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            if bool((labels != IGNORE_INDEX).any()):
                loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX)
                grads = torch.autograd.grad(loss, self.parameters, allow_unused=True)
            # else: a single-token text predicts nothing, so it has no update direction (zeros)
        flat = [torch.zeros(p.numel()) if g is None else g.detach().reshape(-1).float()
                for p, g in zip(self.parameters, grads, strict=True)]
        return torch.cat(flat).numpy()

    def __call__(self, candidates: Sequence[Memory], reference: Sequence[Memory]) -> np.ndarray:
        if not candidates or not reference:
            return np.zeros(len(candidates))
        ref = np.mean([self.gradient(m.text or "") for m in reference], axis=0)
        ref_norm = float(np.linalg.norm(ref))
        out = np.empty(len(candidates))
        for i, memory in enumerate(candidates):
            g = self.gradient(memory.text or "")
            norm = float(np.linalg.norm(g))
            cos = float(g @ ref) / (norm * ref_norm) if norm > 0 and ref_norm > 0 else 0.0
            out[i] = (1.0 + min(1.0, max(-1.0, cos))) / 2.0
        return out
