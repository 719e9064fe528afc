"""Adapters attached to a frozen base LM, saved by name with a provenance manifest and loaded back.

:func:`attach_adapters` loads a fresh copy of a base model (a spec of :func:`~.models.load_base_model`)
and attaches LoRA (through :func:`~.lora.build_lora`, so the NF4 start-up probe decides the
quantization), a :class:`~.spiking.SpikingAdapter`, or both, as an :class:`Attachment`.

Layout of an adapter store (a directory ``root``)::

    root/<name>/weights.safetensors   the trainable tensors ("lora.<peft key>", "spiking.<layer>.<key>")
    root/<name>/manifest.json         provenance (see below)

The manifest holds ``format``, ``name``, ``kind`` (``"lora"``, ``"spiking"``, ``"both"``),
``base`` (``spec`` and ``fingerprint`` — a SHA-256 over the frozen base tensors, see
:func:`base_fingerprint`), ``quantization`` and its probe detail, the adapter configuration
(LoRA spec, spiking rank and layers), ``created_at`` (POSIX seconds), ``weights_sha256``,
and the caller's ``provenance`` (for a consolidation: store path, store stats, the memories
trained on with their ``recorded_at``, the hygiene summary; see
:meth:`~.consolidation.ConsolidationResult.provenance`).

Crash semantics: :func:`save_adapter` writes into a hidden temporary directory under ``root``
(names starting with ``"."`` are never listed or loaded), fsyncs the files, and renames it to
``root/<name>`` in one step, so a crash leaves either no adapter or a complete one. Names are
immutable: saving an existing name raises :class:`AdapterExistsError`. Not thread-safe with
respect to one model (attaching and loading change it); distinct roots and models are independent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import nn

from t4dm_core import T4DMError
from t4dm_core.learning.llm.errors import AdapterError
from t4dm_core.learning.llm.lora import LoraModel, LoraSpec, QuantRequest, build_lora
from t4dm_core.learning.llm.models import BaseModel, load_base_model
from t4dm_core.learning.llm.spiking import SpikingAdapter

__all__ = [
    "AdapterExistsError",
    "AdapterKind",
    "AdapterNotFoundError",
    "Attachment",
    "BaseMismatchError",
    "CorruptAdapterError",
    "attach_adapters",
    "base_fingerprint",
    "list_adapters",
    "load_adapter",
    "read_manifest",
    "save_adapter",
]

AdapterKind = Literal["lora", "spiking", "both"]
FORMAT = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REQUIRED = ("format", "name", "kind", "base", "quantization", "lora", "spiking", "created_at", "weights_sha256",
             "provenance")


class AdapterNotFoundError(AdapterError):
    """No adapter of that name is saved under the root."""


class AdapterExistsError(AdapterError):
    """An adapter of that name is already saved (names are immutable)."""


class BaseMismatchError(AdapterError):
    """The adapter was trained on a different base model (fingerprint or quantization differ)."""


class CorruptAdapterError(T4DMError):
    """A saved adapter's manifest or weights are unreadable, incomplete or fail their checksum."""


@dataclass
class Attachment:
    """A freshly loaded base model with adapters attached.

    ``model`` is what to call (the peft model when LoRA is attached, else the base model);
    ``quantization`` is what ran ("nf4" or "none") and ``quant_detail`` the NF4 probe's verdict.
    Call :meth:`remove` to detach the spiking hooks when done.
    """

    model: Any
    tokenizer: Any
    base: BaseModel
    kind: AdapterKind
    lora: LoraModel | None
    spiking: SpikingAdapter | None
    fingerprint: str
    quant_detail: str

    @property
    def quantization(self) -> str:
        return self.base.quantization

    def components(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per component (``"lora"``, ``"spiking"``), for gradient-norm logging."""
        out: dict[str, list[nn.Parameter]] = {}
        if self.lora is not None:
            out["lora"] = self.lora.trainable_parameters()
        if self.spiking is not None:
            out["spiking"] = list(self.spiking.parameters())
        return out

    def parameters(self) -> list[nn.Parameter]:
        """All trainable adapter parameters."""
        return [p for params in self.components().values() for p in params]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The adapter tensors under the keys of the weights file (copies, contiguous, on CPU)."""
        out: dict[str, torch.Tensor] = {}
        if self.lora is not None:
            from peft import get_peft_model_state_dict

            for key, value in get_peft_model_state_dict(self.lora.model).items():
                out[f"lora.{key}"] = value.detach().cpu().contiguous().clone()
        for layer, block in self._blocks():
            for key, value in block.state_dict().items():
                out[f"spiking.{layer}.{key}"] = value.detach().cpu().contiguous().clone()
        return out

    def load_state_dict(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Copy ``tensors`` (keys of :meth:`state_dict`) into the adapters; every key must match exactly."""
        expected = set(self.state_dict())
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise CorruptAdapterError(f"adapter tensors do not match the attachment: missing {missing[:5]}, "
                                      f"unexpected {extra[:5]}")
        if self.lora is not None:
            from peft import set_peft_model_state_dict

            lora = {k.removeprefix("lora."): v for k, v in tensors.items() if k.startswith("lora.")}
            set_peft_model_state_dict(self.lora.model, lora)
        for layer, block in self._blocks():
            prefix = f"spiking.{layer}."
            block.load_state_dict({k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)})

    def _blocks(self) -> Iterator[tuple[int, nn.Module]]:
        if self.spiking is not None:
            yield from zip(self.spiking.layers, self.spiking.blocks, strict=True)

    def config(self) -> dict[str, Any]:
        """The adapter configuration recorded in the manifest (enough to re-attach the same shapes)."""
        return {
            "lora": asdict(self.lora.spec) if self.lora is not None else None,
            "spiking": ({"rank": int(self.spiking.blocks[0].down.out_features), "layers": list(self.spiking.layers)}
                        if self.spiking is not None else None),
        }

    def remove(self) -> None:
        """Detach the spiking hooks (the peft model, if any, is simply dropped with this object)."""
        if self.spiking is not None:
            self.spiking.remove()


def _check_kind(kind: object) -> AdapterKind:
    if kind in ("lora", "spiking", "both"):
        return cast(AdapterKind, kind)
    raise AdapterError(f"adapter must be 'lora', 'spiking' or 'both', got {kind!r}")


def base_fingerprint(model: nn.Module, quantization: str) -> str:
    """SHA-256 over the frozen tensors of ``model`` (names normalised so a peft wrapper does not change it).

    Adapter parameters (trainable) and spiking blocks (hooks, not submodules) are excluded;
    the quantization is part of the hash, so an NF4 and an fp32 load of one model differ.
    """
    digest = hashlib.sha256(quantization.encode())
    for name, param in model.named_parameters():
        if param.requires_grad:
            continue
        key = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        data = param.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        digest.update(f"{key}:{tuple(param.shape)}:{param.dtype}".encode())
        digest.update(data.tobytes())
    return digest.hexdigest()


def attach_adapters(base_spec: str, kind: AdapterKind, *, lora_spec: LoraSpec | None = None,
                    quantization: QuantRequest = "auto", spiking_rank: int = 8,
                    spiking_layers: Sequence[int] | None = None, seed: int = 0,
                    cache_dir: str | os.PathLike[str] | None = None) -> Attachment:
    """Load a fresh copy of ``base_spec`` and attach ``kind`` adapters (initialised from ``seed``).

    ``quantization`` applies to the LoRA base (``"auto"``: NF4 if the probe passes, else plain);
    a spiking-only attachment always uses the fp32 base. Raises :class:`~.errors.AdapterError`
    for a bad ``kind`` or shapes, and whatever the model loader raises.
    """
    kind = _check_kind(kind)
    torch.manual_seed(seed)
    lora: LoraModel | None = None
    if kind == "spiking":
        base, detail = load_base_model(base_spec, cache_dir=cache_dir), "spiking only: plain fp32 base"
        model: Any = base.model
    else:
        lora = build_lora(base_spec, lora_spec, quantization=quantization, cache_dir=cache_dir)
        base, model = lora.base, lora.model
        detail = lora.probe.detail if lora.probe is not None else "probe not run (plain LoRA requested)"
    spiking = SpikingAdapter(model, rank=spiking_rank, layers=spiking_layers) if kind != "lora" else None
    return Attachment(model, base.tokenizer, base, kind, lora, spiking, base_fingerprint(model, base.quantization),
                      detail)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AdapterError(f"adapter name must match {_NAME.pattern} (no path separators), got {name!r}")
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_adapter(root: str | os.PathLike[str], name: str, attachment: Attachment,
                 provenance: Mapping[str, Any] | None = None) -> Path:
    """Save ``attachment``'s adapter tensors and manifest as ``root/<name>`` atomically; returns that path.

    ``provenance`` must be JSON-serialisable (it is stored verbatim). Raises
    :class:`AdapterExistsError` if the name is taken, :class:`~.errors.AdapterError` for a bad
    name or a non-JSON provenance; nothing is left behind on error.
    """
    from safetensors.torch import save_file

    name = _check_name(name)
    root_path = Path(root)
    final = root_path / name
    if final.exists():
        raise AdapterExistsError(f"adapter {name!r} already exists under {root_path}")
    manifest: dict[str, Any] = {
        "format": FORMAT, "name": name, "kind": attachment.kind,
        "base": {"spec": attachment.base.spec, "fingerprint": attachment.fingerprint},
        "quantization": {"ran": attachment.quantization, "detail": attachment.quant_detail},
        **attachment.config(), "created_at": time.time(), "weights_sha256": "",
        "provenance": dict(provenance or {}),
    }
    try:
        json.dumps(manifest, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AdapterError(f"provenance is not JSON-serialisable: {exc}") from exc
    root_path.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root_path))
    try:
        save_file(attachment.state_dict(), str(work / WEIGHTS))
        manifest["weights_sha256"] = _sha256(work / WEIGHTS)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        for path in (work / WEIGHTS, work / MANIFEST, work):
            _fsync(path)
        try:
            work.rename(final)
        except OSError as exc:
            raise AdapterExistsError(f"adapter {name!r} was saved concurrently under {root_path}") from exc
        _fsync(root_path)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return final


def read_manifest(root: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """The manifest of adapter ``name``; raises :class:`AdapterNotFoundError` or :class:`CorruptAdapterError`."""
    directory = Path(root) / _check_name(name)
    if not directory.is_dir():
        raise AdapterNotFoundError(f"no adapter named {name!r} under {root}")
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptAdapterError(f"adapter {name!r}: manifest unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or any(key not in manifest for key in _REQUIRED):
        raise CorruptAdapterError(f"adapter {name!r}: manifest lacks required fields {list(_REQUIRED)}")
    if manifest["format"] != FORMAT or manifest["name"] != name:
        raise CorruptAdapterError(f"adapter {name!r}: manifest format {manifest['format']!r} / name "
                                  f"{manifest['name']!r} do not match ({FORMAT}, {name!r})")
    return manifest


def list_adapters(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Manifests of every saved adapter under ``root``, sorted by name (``[]`` if ``root`` does not exist).

    Raises :class:`CorruptAdapterError` naming the first adapter whose manifest is unreadable.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        return []
    names = sorted(p.name for p in root_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [read_manifest(root_path, n) for n in names]


def load_adapter(root: str | os.PathLike[str], name: str, base_spec: str, *,
                 cache_dir: str | os.PathLike[str] | None = None) -> Attachment:
    """Attach a fresh adapter like the saved one to a fresh load of ``base_spec`` and fill in the saved tensors.

    The base is loaded with the quantization the adapter was trained with ("nf4" fails with
    :class:`~.errors.QuantizationUnavailableError` where NF4 is unavailable). Raises
    :class:`BaseMismatchError` if the base's fingerprint differs from the saved one (a different
    model, or the same one with other weights), :class:`AdapterNotFoundError`,
    :class:`CorruptAdapterError` (manifest, checksum or tensor keys).
    """
    from safetensors.torch import load_file

    manifest = read_manifest(root, name)
    weights = Path(root) / name / WEIGHTS
    try:
        if _sha256(weights) != manifest["weights_sha256"]:
            raise CorruptAdapterError(f"adapter {name!r}: weights checksum mismatch")
        tensors = load_file(str(weights))
        lora = LoraSpec(**{**manifest["lora"], "target_modules": tuple(manifest["lora"]["target_modules"])}) \
            if manifest["lora"] else None
        spiking = manifest["spiking"] or {}
        kind = _check_kind(manifest["kind"])
        quant: QuantRequest = "nf4" if manifest["quantization"]["ran"] == "nf4" else "none"
    except (OSError, KeyError, TypeError, AdapterError) as exc:
        raise CorruptAdapterError(f"adapter {name!r}: unreadable: {exc}") from exc
    attachment = attach_adapters(base_spec, kind, lora_spec=lora, quantization=quant,
                                 spiking_rank=int(spiking.get("rank", 8)), spiking_layers=spiking.get("layers"),
                                 cache_dir=cache_dir)
    if attachment.fingerprint != manifest["base"]["fingerprint"]:
        attachment.remove()
        raise BaseMismatchError(f"adapter {name!r} was trained on base {manifest['base']['spec']!r} "
                                f"(fingerprint {manifest['base']['fingerprint'][:12]}…, quantization "
                                f"{manifest['quantization']['ran']}); {base_spec!r} has fingerprint "
                                f"{attachment.fingerprint[:12]}…")
    try:
        attachment.load_state_dict(tensors)
    except CorruptAdapterError:
        attachment.remove()
        raise
    return attachment
