"""Typed errors of the adapter stack (all are :class:`~t4dm_core.T4DMError`).

Input mistakes derive from :class:`~t4dm_core.InvalidInputError` (so also ``ValueError``).
"""

from __future__ import annotations

from t4dm_core import InvalidInputError, T4DMError

__all__ = ["AdapterError", "ModelSpecError", "ModelUnavailableError", "QuantizationUnavailableError"]


class ModelSpecError(InvalidInputError):
    """A model spec is neither a known name nor a directory holding a model."""


class ModelUnavailableError(T4DMError):
    """A named model cannot be provided here (its package or its source data is missing)."""


class QuantizationUnavailableError(T4DMError):
    """4-bit quantization was required but the start-up probe of bitsandbytes failed (the reason is given)."""


class AdapterError(InvalidInputError):
    """An adapter cannot be attached to this model or was given inputs of the wrong shape."""
