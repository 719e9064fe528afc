"""Engine prefilters for LangGraph item filters: supersets the engine can evaluate.

A LangGraph filter (see :mod:`protocol_adapters.langgraph._semantics`) has three outcomes
per item: it holds, it fails, or it raises (``float()`` of a missing or non-numeric field).
The engine's Mongo-style dialect differs (it never coerces; ``True`` never equals ``1``),
so it cannot evaluate the filter itself. Instead :func:`compile_pushdown` derives two sets
of engine conditions:

* ``raises`` — OR-ed; kept by every item on which evaluating the filter may raise, and by
  every item a comparison may hold for in a way the engine cannot check (``unbounded``
  when no such bound can be written);
* ``holds`` — AND-ed; kept by every other item the filter holds for.

So ``holds OR raises`` (:meth:`Pushdown.candidates`) keeps every item that matters, and
the adapter then evaluates the exact LangGraph filter in Python, in listing order, on the
kept items only: the results are those of a full scan, and so is the first exception (a
failing item neither raises nor matches). How each condition is bounded, for a field
path ``p``:

* equality (plain value or ``$eq``) with ``x``: strings by engine ``$eq``; numbers by
  ``$in [x]`` plus ``True``/``False`` when ``x`` is 1/0 (Python's ``True == 1``); bools by
  ``$in [x, int(x)]``; ``None`` by "``p`` is null or missing" (``value.get`` gives None
  for a missing key); never raises. Other operands (lists, dicts) are not bounded.
* ``$ne x`` (scalar ``x``): the engine's ``$ne`` (JSON inequality is implied by Python
  inequality); never raises.
* ``$gt $gte $lt $lte x``: ``float(x)`` is fixed, so ``holds`` is the engine comparison
  with ``float(x)``, exact for numbers within ±2**53, and ``raises`` is "``p`` is not such
  a number" (missing and non-numeric values raise, strings may parse, bools are 0/1,
  beyond 2**53 ``float()`` rounds). An operand ``float()`` rejects, or a non-finite one,
  makes the filter ``unbounded``.
* a nested dict (no ``$`` keys) bounds each of its keys at ``p.key``; a list, a key that
  is not a non-empty string without ``"."``, or an operand of a non-JSON type is not
  bounded (and is ``unbounded`` for ``raises`` when it holds a comparison or such an
  operand).

:func:`compile_pushdown` with ``nested=False`` and a string limit describes the copy of
the value kept on vector records (top-level scalar fields, short strings): a field absent
from the copy reads as missing, which every ``holds`` bound above already admits except
equality/inequality with a longer string, which is then not bounded. Its ``raises`` is
not used: those items are found on the item records. Pure; thread-safe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Pushdown", "compile_pushdown"]

_ORDERING = frozenset({"$gt", "$gte", "$lt", "$lte"})
_EXACT_FLOAT_INT = 2**53
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Pushdown:
    """Engine conditions bounding a LangGraph filter (see the module docstring)."""

    holds: list[dict[str, Any]] = field(default_factory=list)
    raises: list[dict[str, Any]] = field(default_factory=list)
    unbounded: bool = False

    def holds_filter(self) -> dict[str, Any] | None:
        """One engine filter for ``holds`` (None = no restriction); a bound only together
        with ``raises``."""
        if not self.holds:
            return None
        return self.holds[0] if len(self.holds) == 1 else {"$and": list(self.holds)}

    def candidates(self) -> dict[str, Any] | None:
        """An engine filter kept by every item the filter holds for or raises on (None = every item)."""
        holds = self.holds_filter()
        if self.unbounded or holds is None:
            return None
        return {"$or": [holds, *self.raises]} if self.raises else holds


def compile_pushdown(flt: Mapping[Any, Any] | None, root: str, *, nested: bool = True,
                     max_string: int | None = None) -> Pushdown:
    """Bound a checked LangGraph filter over the value stored at metadata key ``root``.

    ``nested=False`` bounds top-level keys only; ``max_string`` is the longest string the
    stored copy keeps (longer ones read as missing).
    """
    out = Pushdown()
    for key, expected in (flt or {}).items():
        if _addressable(key):
            _expected(f"{root}.{key}", expected, out, nested, max_string)
        else:
            _unbounded(expected, out)
    out.raises = list({json.dumps(r, sort_keys=True): r for r in out.raises}.values())  # one per field
    return out


def _addressable(key: object) -> bool:
    return isinstance(key, str) and bool(key) and "." not in key


def _expected(path: str, expected: Any, out: Pushdown, nested: bool, max_string: int | None) -> None:
    if isinstance(expected, dict):
        if any(k.startswith("$") for k in expected):
            for operator, operand in expected.items():
                _operator(path, operator, operand, out, max_string)
            return
        for key, inner in expected.items():
            if nested and _addressable(key):
                _expected(f"{path}.{key}", inner, out, nested, max_string)
            else:
                _unbounded(inner, out)
        return
    if isinstance(expected, (list, tuple)):
        _unbounded(expected, out)
        return
    _equal(path, expected, out, max_string)


def _operator(path: str, operator: str, operand: Any, out: Pushdown, max_string: int | None) -> None:
    if operator == "$eq":
        _equal(path, operand, out, max_string)
    elif operator == "$ne":
        if _bounded_scalar(operand, max_string):
            out.holds.append({path: {"$ne": operand}})
        elif not _plain(operand):
            out.unbounded = True
    else:
        _ordering(path, operator, operand, out)


def _equal(path: str, operand: Any, out: Pushdown, max_string: int | None) -> None:
    if not _bounded_scalar(operand, max_string):
        if not _plain(operand):
            out.unbounded = True  # a foreign object's __eq__ may do anything
        return
    if operand is None:
        out.holds.append({"$or": [{path: {"$eq": None}}, {path: {"$exists": False}}]})
    elif isinstance(operand, bool):
        out.holds.append({path: {"$in": [operand, int(operand)]}})
    elif isinstance(operand, (int, float)) and operand in (0, 1):
        out.holds.append({path: {"$in": [operand, bool(operand)]}})
    else:
        out.holds.append({path: {"$eq": operand}})


def _ordering(path: str, operator: str, operand: Any, out: Pushdown) -> None:
    bound: float | None = None
    if type(operand) in (int, float, bool, str):
        try:
            bound = float(operand)
        except (ValueError, OverflowError):
            bound = None
    if bound is None or not math.isfinite(bound):
        out.unbounded = True  # every item reaching this operator raises (or compares with NaN/inf)
        return
    out.holds.append({path: {operator: bound}})
    out.raises.append({"$not": {path: {"$between": [-_EXACT_FLOAT_INT, _EXACT_FLOAT_INT]}}})


def _bounded_scalar(value: Any, max_string: int | None) -> bool:
    """A JSON scalar of an exact builtin type the engine compares like Python does."""
    kind = type(value)
    if kind is str:
        return max_string is None or len(value) <= max_string
    if kind is float:
        return math.isfinite(value)
    return kind in (int, bool, type(None))


def _plain(value: Any) -> bool:
    """JSON-shaped data of builtin types: comparing it with a stored value cannot raise."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return type(value) in _JSON_SCALARS


def _could_raise(expected: Any) -> bool:
    if isinstance(expected, dict):
        if any(isinstance(k, str) and k.startswith("$") for k in expected):
            return any(op in _ORDERING or not _plain(v) for op, v in expected.items())
        return any(_could_raise(v) for v in expected.values())
    if isinstance(expected, (list, tuple)):
        return any(_could_raise(v) for v in expected)
    return not _plain(expected)


def _unbounded(expected: Any, out: Pushdown) -> None:
    """An unbounded condition: no ``holds`` term; ``raises`` unbounded if it may raise."""
    if _could_raise(expected):
        out.unbounded = True
