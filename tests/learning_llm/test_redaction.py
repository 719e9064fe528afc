"""PII redaction: each built-in kind, no false alarms on scenario text, custom patterns, bad input."""

from __future__ import annotations

import pytest

from seeds import scenarios
from t4dm_core import InvalidInputError
from t4dm_core.learning.llm.redaction import PII_KINDS, RedactionPolicy, redact


@pytest.mark.parametrize(("text", "expected", "kind"), [
    ("write to ana.silva+work@mail.example.org today", "write to [EMAIL] today", "email"),
    ("call +44 20 7946 0958 after lunch", "call [PHONE] after lunch", "phone"),
    ("office (555) 123-4567 or 555.123.4567", "office [PHONE] or [PHONE]", "phone"),
    ("card 4111 1111 1111 1111 expires soon", "card [CARD] expires soon", "card"),
    ("card 4111-1111-1111-1111.", "card [CARD].", "card"),
    ("card 4111111111111111", "card [CARD]", "card"),
    ("ssh to 10.0.0.12.", "ssh to [IP].", "ip"),
    ("v6 host 2001:db8::8a2e:370:7334 is up", "v6 host [IP] is up", "ip"),
])
def test_builtin_kinds(text: str, expected: str, kind: str) -> None:
    out = redact(text)
    assert out.text == expected
    assert set(out.counts) == {kind}


def test_things_that_look_numeric_but_are_not_pii_survive() -> None:
    text = ("On 2025-01-01 10:30 the replica count went to 4; rate limit 2000 requests per minute; version 1.2.3; "
            "999.1.1.1 is no address; meeting at 14:30:00 on June 5, 2025; region us-east-1; timeout 30 s.")
    out = redact(text)
    assert out.text == text and out.counts == {}


def test_scenario_texts_have_no_false_positives() -> None:
    texts = [it.text for it in scenarios.slot_stories(0, 40).items]
    texts += [c.text for f in scenarios.changing_facts(0, 30, 30) for c in f.changes]
    texts += [it.text for it in scenarios.near_collisions(0, 200, probe_span=100, n_probes=10).items]
    changed = [t for t in texts if redact(t).text != t]
    assert changed == []


def test_several_kinds_in_one_text_are_counted() -> None:
    out = redact("mail bo@x.io, phone 555 123 4567, ip 192.168.1.7, card 5500 0000 0000 0004, mail cy@y.io")
    assert out.counts == {"email": 2, "ip": 1, "card": 1, "phone": 1}
    assert "@" not in out.text and "192" not in out.text and "5500" not in out.text and "4567" not in out.text


def test_policy_selects_kinds_and_adds_patterns() -> None:
    text = "ticket ABC-1234 from bo@x.io at 10.1.2.3"
    only_tickets = RedactionPolicy(kinds=frozenset(), extra=(("ticket", r"\bABC-\d+\b"),))
    assert redact(text, only_tickets).text == "ticket [TICKET] from bo@x.io at 10.1.2.3"
    no_email = RedactionPolicy(kinds=frozenset(PII_KINDS) - {"email"})
    assert redact(text, no_email).text == "ticket ABC-1234 from bo@x.io at [IP]"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kinds": frozenset({"email", "ssn"})}, "unknown PII kinds"),
    ({"extra": (("bad label", "x"),)}, "label"),
    ({"extra": (("x", "(unclosed"),)}, "does not compile"),
])
def test_bad_policies_raise_typed_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RedactionPolicy(**kwargs)  # type: ignore[arg-type]


def test_non_text_input_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="needs a str"):
        redact(b"bytes@x.io")  # type: ignore[arg-type]
