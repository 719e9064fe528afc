"""PII redaction for memory text that is about to enter a model prompt.

Built-in kinds, applied in this order (an earlier kind's placeholder is never re-matched):

* ``email`` — ``local@domain.tld`` → ``[EMAIL]``;
* ``ip`` — IPv4 and IPv6 addresses (candidates are checked with :mod:`ipaddress`) → ``[IP]``;
* ``card`` — card-like runs of 13 to 19 digits, optionally grouped by single spaces or
  dashes (no Luhn check: any such run is treated as sensitive) → ``[CARD]``;
* ``phone`` — 7 to 15 digits with an optional ``+`` country code, parentheses, and space /
  dot / dash separators; ISO dates (with an optional hour) are not phones → ``[PHONE]``.
  This errs on the side of privacy: any bare run of 7 to 15 digits (a 10-digit Unix
  timestamp, say) is redacted too.

A :class:`RedactionPolicy` chooses the kinds and may add ``(label, regex)`` patterns of its
own, applied after the built-ins and replaced by ``[LABEL]``. Redaction is deterministic
and pure; policies are immutable and safe to share between threads.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from t4dm_core import InvalidInputError

__all__ = ["DEFAULT_POLICY", "PII_KINDS", "Redaction", "RedactionPolicy", "redact"]

PII_KINDS: tuple[str, ...] = ("email", "ip", "card", "phone")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_IP_CANDIDATE = re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
                           r"(?![\w:]|\.\d)")
_CARD = re.compile(r"(?<![\d+(])\d(?:[ -]?\d){12,18}(?![\d])")
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+\s?)?\(?\d[\d\s().-]{4,}\d(?!\w)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{1,2})?")
_PHONE_MIN_DIGITS, _PHONE_MAX_DIGITS = 7, 15


def _is_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return _PHONE_MIN_DIGITS <= digits <= _PHONE_MAX_DIGITS and not _DATE.fullmatch(candidate.strip())


def _replace_checked(pattern: re.Pattern[str], check: Callable[[str], bool], placeholder: str,
                     text: str) -> tuple[str, int]:
    count = 0

    def substitute(match: re.Match[str]) -> str:
        nonlocal count
        if not check(match.group(0)):
            return match.group(0)
        count += 1
        return placeholder

    return pattern.sub(substitute, text), count


def _always(_candidate: str) -> bool:
    return True


_BUILTIN: dict[str, tuple[re.Pattern[str], Callable[[str], bool]]] = {
    "email": (_EMAIL, _always),
    "ip": (_IP_CANDIDATE, _is_ip),
    "card": (_CARD, _always),
    "phone": (_PHONE_CANDIDATE, _is_phone),
}


@dataclass(frozen=True)
class RedactionPolicy:
    """Which PII kinds to redact, plus extra ``(label, regex)`` patterns (labels: letters, digits, ``_``).

    Raises :class:`~t4dm_core.InvalidInputError` for an unknown kind, a bad label or a regex
    that does not compile.
    """

    kinds: frozenset[str] = frozenset(PII_KINDS)
    extra: tuple[tuple[str, str], ...] = ()
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(PII_KINDS)
        if unknown:
            raise InvalidInputError(f"unknown PII kinds {sorted(unknown)}; known: {list(PII_KINDS)}")
        compiled: list[tuple[str, re.Pattern[str]]] = []
        for label, regex in self.extra:
            if not re.fullmatch(r"\w+", label):
                raise InvalidInputError(f"redaction label must be letters, digits or '_', got {label!r}")
            try:
                compiled.append((label, re.compile(regex)))
            except re.error as exc:
                raise InvalidInputError(f"redaction pattern {label!r} does not compile: {exc}") from exc
        object.__setattr__(self, "_compiled", tuple(compiled))

    def steps(self) -> list[tuple[str, re.Pattern[str], Callable[[str], bool]]]:
        """(label, pattern, check) in application order."""
        builtin = [(kind, *_BUILTIN[kind]) for kind in PII_KINDS if kind in self.kinds]
        return builtin + [(label, pattern, _always) for label, pattern in self._compiled]


DEFAULT_POLICY = RedactionPolicy()


@dataclass(frozen=True)
class Redaction:
    """Redacted text and how many spans of each label were replaced (labels with zero omitted)."""

    text: str
    counts: dict[str, int]


def redact(text: str, policy: RedactionPolicy = DEFAULT_POLICY) -> Redaction:
    """Replace every PII span of ``policy`` in ``text`` by ``[LABEL]`` (upper-case label)."""
    if not isinstance(text, str):
        raise InvalidInputError(f"redact() needs a str, got {type(text).__name__}")
    counts: dict[str, int] = {}
    for label, pattern, check in policy.steps():
        text, n = _replace_checked(pattern, check, f"[{label.upper()}]", text)
        if n:
            counts[label] = n
    return Redaction(text, counts)
