"""Shared training mechanics: causal-LM batches, a plain optimisation loop, answer scoring.

* :func:`lm_batch` — right-padded ``input_ids`` / ``attention_mask`` / ``labels`` (``-100``
  on padding) for a list of texts.
* :func:`answer_batch` — prompt + answer rows whose labels cover only the answer tokens
  (the loss of "complete this prompt with this answer").
* :func:`train_steps` — AdamW over the given parameters for a number of steps, returning the
  loss of every step; used for the tiny LM's pre-training and for adapter training.
* :func:`answer_exact_match` — whether greedy decoding reproduces each answer (teacher-forced:
  every answer token is the argmax given the gold prefix, which is exactly when greedy
  decoding emits the answer).

Nothing here is thread-safe against concurrent use of the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from t4dm_core import InvalidInputError

__all__ = ["IGNORE_INDEX", "Batch", "answer_batch", "answer_exact_match", "lm_batch", "optimizer_step", "train_steps"]

IGNORE_INDEX = -100
Batch = dict[str, Tensor]


def _pad_rows(rows: Sequence[list[int]], label_rows: Sequence[list[int]], pad_id: int) -> Batch:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, lab) in enumerate(zip(rows, label_rows, strict=True)):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        labels[i, : len(lab)] = torch.tensor(lab, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise InvalidInputError("the tokenizer has neither a pad token nor an end-of-sequence token")
    return int(pad)


def lm_batch(tokenizer: Any, texts: Sequence[str], max_len: int) -> Batch:
    """Language-model rows for ``texts`` (each truncated to ``max_len`` tokens, no special tokens)."""
    if not texts:
        raise InvalidInputError("lm_batch needs at least one text")
    rows = [list(tokenizer.encode(t, add_special_tokens=False))[:max_len] for t in texts]
    return _pad_rows(rows, rows, _pad_id(tokenizer))


def answer_batch(tokenizer: Any, prompts: Sequence[str], answers: Sequence[str]) -> Batch:
    """Rows ``prompt + " " + answer`` with labels only on the answer tokens."""
    if not prompts or len(prompts) != len(answers):
        raise InvalidInputError(f"need as many answers as prompts (>= 1), got {len(prompts)} and {len(answers)}")
    rows: list[list[int]] = []
    labels: list[list[int]] = []
    for prompt, answer in zip(prompts, answers, strict=True):
        p = list(tokenizer.encode(prompt, add_special_tokens=False))
        a = list(tokenizer.encode(" " + answer, add_special_tokens=False))
        rows.append(p + a)
        labels.append([IGNORE_INDEX] * len(p) + a)
    return _pad_rows(rows, labels, _pad_id(tokenizer))


def train_steps(loss_fn: Callable[[int], Tensor], params: Iterable[torch.nn.Parameter], steps: int, lr: float, *,
                weight_decay: float = 0.0, clip: float | None = 1.0,
                schedule: Callable[[int], float] | None = None) -> list[float]:
    """Run ``steps`` AdamW steps of ``loss_fn(step)``; returns each step's loss (before its update).

    ``schedule(step)`` multiplies ``lr`` (default 1). Gradients are clipped to norm ``clip``.
    Raises :class:`~t4dm_core.InvalidInputError` if there is nothing to train.
    """
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise InvalidInputError("train_steps: no trainable parameters")
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    for step in range(steps):
        if schedule is not None:
            for group in opt.param_groups:
                group["lr"] = lr * schedule(step)
        losses.append(optimizer_step(opt, trainable, loss_fn(step), clip))
    return losses


def optimizer_step(opt: torch.optim.Optimizer, trainable: Sequence[torch.nn.Parameter], loss: Tensor,
                   clip: float | None, before_clip: Callable[[], None] | None = None) -> float:
    """Backpropagate ``loss``, call ``before_clip`` (e.g. to read raw gradient norms), clip the
    gradients of ``trainable`` to norm ``clip``, update; returns the loss (before the update)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if before_clip is not None:
        before_clip()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(trainable, clip)
    opt.step()
    return float(loss.detach())


@torch.no_grad()
def answer_exact_match(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[str],
                       batch_size: int = 32) -> list[bool]:
    """Per prompt: does greedy decoding after ``prompt`` produce ``" " + answer`` (token-exact)?"""
    out: list[bool] = []
    for start in range(0, len(prompts), batch_size):
        batch = answer_batch(tokenizer, prompts[start:start + batch_size], answers[start:start + batch_size])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        predicted = logits[:, :-1].argmax(-1)
        gold = batch["labels"][:, 1:]
        scored = gold != IGNORE_INDEX
        out.extend(bool(((predicted == gold) | ~scored)[i].all()) for i in range(gold.shape[0]))
    return out
