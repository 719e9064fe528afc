"""The in-project tiny causal LM: a small Llama built from a config, trained briefly, cached on disk.

:func:`tiny_lm_path` returns a directory that ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained`` load (safetensors weights, a fast tokenizer, and
``t4dm_tiny_lm.json`` with the config, the losses and probe scores). The directory name
holds a hash of the :class:`TinyLMConfig`, the corpus version and this module's format
version, so a different config never reuses a stale model; a cached model is reused as is.

What is built (all offline, seeded by ``config.seed``):

1. the corpus of :func:`seeds.lm_corpus.lm_corpus` — background sentences, base facts, and
   reading episodes rendered with the memory packer's template followed by
   :func:`~.packer.question_prompt` and the answer;
2. a byte-level BPE tokenizer (``tokenizers``) trained on the training documents, with
   ``<|endoftext|>`` (BOS/EOS) and ``<pad>``;
3. a ``LlamaForCausalLM`` trained for ``config.steps`` AdamW steps (linear warm-up, cosine
   decay) on the documents packed into rows of ``config.seq_len`` tokens.

Bitwise reproducibility of the weights also needs the same torch version and thread
count; the cache makes repeated runs identical regardless. Building writes into a temporary
sibling directory and renames it into place, so a crash never leaves a half-written model
and two concurrent builders do not corrupt each other (the loser's copy is discarded).
Building needs the repository's ``seeds`` package (the corpus lives there).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from t4dm_core.learning.llm.errors import ModelUnavailableError
from t4dm_core.learning.llm.packer import question_prompt, render_memory_block
from t4dm_core.learning.llm.training import IGNORE_INDEX, Batch, answer_exact_match, train_steps

__all__ = ["PROVENANCE_FILE", "TinyLMConfig", "default_cache_dir", "tiny_lm_path"]

FORMAT_VERSION = 1
PROVENANCE_FILE = "t4dm_tiny_lm.json"
EOS_TOKEN = "<|endoftext|>"  # noqa: S105 - a vocabulary entry, not a secret
PAD_TOKEN = "<pad>"  # noqa: S105 - a vocabulary entry, not a secret


@dataclass(frozen=True)
class TinyLMConfig:
    """Architecture, corpus size and training budget of the tiny LM (defaults: about a minute on 2 idle cores)."""

    seed: int = 0
    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 176
    num_layers: int = 5
    num_heads: int = 4
    num_kv_heads: int = 2
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 400
    lr: float = 4e-3
    warmup_steps: int = 20
    n_people: int = 24
    fact_repeats: int = 8
    n_sentences: int = 600
    n_episodes: int = 400

    def key(self) -> str:
        """Hash of the config, the corpus version and the build format (names the cache directory)."""
        from seeds.lm_corpus import CORPUS_VERSION

        payload = json.dumps({**asdict(self), "corpus": CORPUS_VERSION, "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$T4DM_MODEL_CACHE``, else ``$XDG_CACHE_HOME/t4dm/models``, else ``~/.cache/t4dm/models``."""
    if os.environ.get("T4DM_MODEL_CACHE"):
        return Path(os.environ["T4DM_MODEL_CACHE"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "t4dm" / "models"


def tiny_lm_path(config: TinyLMConfig | None = None, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Directory of the trained tiny LM for ``config``; trains and caches it first if missing.

    Raises :class:`~.errors.ModelUnavailableError` when the model must be built but the
    repository's ``seeds`` package is not importable.
    """
    config = config or TinyLMConfig()
    try:
        key = config.key()
    except ImportError as exc:
        raise ModelUnavailableError("the 'tiny' model is built from seeds/lm_corpus.py; run from a T4DM source "
                                    "checkout or pass a local model path") from exc
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"tiny-lm-{key}"
    if (final / PROVENANCE_FILE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tiny-lm-{key}-", dir=root))
    try:
        _build(config, work)
        work.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared like any model cache
        try:
            work.rename(final)
        except OSError:
            if not (final / PROVENANCE_FILE).is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work)
    return final


# ----------------------------------------------------------------------------- building
def _documents(config: TinyLMConfig) -> tuple[Any, list[str], list[str]]:
    from seeds.lm_corpus import ReadingEpisode, lm_corpus

    corpus = lm_corpus(config.seed, n_people=config.n_people, repeats=config.fact_repeats,
                       n_sentences=config.n_sentences, n_episodes=config.n_episodes)

    def render(e: ReadingEpisode) -> str:
        return f"{render_memory_block(e.memories)}{question_prompt(e.question)} {e.answer}"

    train = list(corpus.train_sentences) + [render(e) for e in corpus.train_episodes]
    heldout = list(corpus.heldout_sentences) + [render(e) for e in corpus.heldout_episodes]
    return corpus, train, heldout


def _train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN, PAD_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN,
                                   pad_token=PAD_TOKEN, model_max_length=4 * 1024)


def _pack_rows(tokenizer: Any, docs: list[str], seq_len: int, generator: torch.Generator) -> list[list[int]]:
    """Documents (each + EOS, in a seeded order) packed greedily into rows of at most ``seq_len`` tokens."""
    rows: list[list[int]] = []
    row: list[int] = []
    for i in torch.randperm(len(docs), generator=generator).tolist():
        ids = [*tokenizer.encode(docs[i], add_special_tokens=False), tokenizer.eos_token_id][:seq_len]
        if len(row) + len(ids) > seq_len:
            rows.append(row)
            row = []
        row += ids
    if row:
        rows.append(row)
    return rows


def _rows_to_batch(rows: list[list[int]], pad_id: int) -> Batch:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _model(config: TinyLMConfig, tokenizer: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaConfig(vocab_size=len(tokenizer), hidden_size=config.hidden_size,
                        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
                        num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads,
                        max_position_embeddings=4 * config.seq_len, tie_word_embeddings=True,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(llama)


@torch.no_grad()
def _mean_loss(model: Any, rows: list[list[int]], pad_id: int, batch_size: int) -> float:
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = _rows_to_batch(rows[start:start + batch_size], pad_id)
        n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += float(model(**batch).loss) * n
        count += n
    return total / count


def _build(config: TinyLMConfig, out: Path) -> None:
    with torch.random.fork_rng(devices=[]):  # seed locally; the caller's global RNG state is left as it was
        torch.manual_seed(config.seed)
        _train_and_save(config, out)


def _train_and_save(config: TinyLMConfig, out: Path) -> None:
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    corpus, train_docs, heldout_docs = _documents(config)
    tokenizer = _train_tokenizer(train_docs, config.vocab_size)
    rows = _pack_rows(tokenizer, train_docs, config.seq_len, generator)
    heldout_rows = _pack_rows(tokenizer, heldout_docs, config.seq_len, generator)
    model = _model(config, tokenizer)
    model.train()

    def loss_at(_step: int) -> torch.Tensor:
        pick = torch.randint(len(rows), (config.batch_size,), generator=generator).tolist()
        batch = _rows_to_batch([rows[i] for i in pick], tokenizer.pad_token_id)
        return model(**batch).loss

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    losses = train_steps(loss_at, model.parameters(), config.steps, config.lr, weight_decay=0.01, schedule=schedule)
    train_seconds = time.perf_counter() - started
    model.eval()
    facts = answer_exact_match(model, tokenizer, [f.prompt for f in corpus.facts], [f.value for f in corpus.facts])
    episodes = corpus.heldout_episodes
    reading = answer_exact_match(model, tokenizer,
                                 [render_memory_block(e.memories) + question_prompt(e.question) for e in episodes],
                                 [e.answer for e in episodes])
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    provenance = {
        "config": asdict(config), "key": config.key(), "torch": torch.__version__,
        "train_rows": len(rows), "train_tokens": sum(len(r) for r in rows), "parameters": model.num_parameters(),
        "losses": [round(x, 4) for x in losses], "heldout_loss": round(_mean_loss(model, heldout_rows,
                                                                                   tokenizer.pad_token_id, 32), 4),
        "fact_cloze_em": sum(facts) / len(facts), "heldout_reading_em": sum(reading) / len(reading),
        "train_seconds": round(train_seconds, 2),
    }
    (out / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=1))
