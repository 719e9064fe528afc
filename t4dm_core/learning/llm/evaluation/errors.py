"""Typed errors of the evaluation harness (all are :class:`~t4dm_core.T4DMError`)."""

from __future__ import annotations

from t4dm_core import InvalidInputError, T4DMError

__all__ = ["EvalConfigError", "ModeUnavailableError"]


class EvalConfigError(InvalidInputError):
    """An evaluation request names an unknown mode, scenario or embedder, or a bad size."""


class ModeUnavailableError(T4DMError):
    """A known evaluation mode cannot run yet because a component it needs is missing (named in the message)."""
