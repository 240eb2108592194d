"""The edge's strict JSON: what Python's json module takes but no database can store, refused by name."""

from __future__ import annotations

import json

import pytest

from shared.edge import HostileInput, strict_json_loads, unstorable_text


def _refusal(body: str, depth: int = 16) -> HostileInput:
    """The refusal of ``body``, the same whether it comes as text or as the bytes a request carries (bytes
    may skip the walk over the parsed value when nothing in them could be refused: it must not skip one)."""
    refusals = []
    for given in (body, body.encode()):
        with pytest.raises(HostileInput) as refused:
            strict_json_loads(given, depth)
        refusals.append(refused.value)
    text, raw = refusals
    assert (raw.detail, raw.errors, raw.status) == (text.detail, text.errors, text.status)
    return raw


@pytest.mark.parametrize(
    "body",
    [
        '{"a": [1, 2.5, "Ayşe", null, true], "b": {"c": -3}}',
        '{"a": "\\\\u0000 is written, not a NUL", "b": "\\\\"}',
        "[" + ", ".join(["{}"] * 40) + "]",  # more containers than the depth limit, none deeper than it
    ],
)
def test_plain_json_is_loaded_as_json_loads_would(body):
    assert strict_json_loads(body, 16) == strict_json_loads(body.encode(), 16) == json.loads(body)


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9223372036854775808"]
)
def test_numbers_that_are_not_finite_or_overflow_are_refused_naming_the_field(literal):
    refused = _refusal(f'{{"properties": {{"amount": [1, {literal}]}}}}')

    assert refused.status == 400
    assert list(refused.errors["properties"]["amount"]) == ["1"]


def test_a_64_bit_integer_is_accepted():
    assert strict_json_loads('{"n": -9223372036854775808}', 4) == {"n": -(2**63)}


@pytest.mark.parametrize(
    ("body", "reason"), [('{"a": "x\\u0000"}', "NUL"), ('{"a": "\\ud800"}', "surrogate")]
)
def test_unstorable_text_is_refused_with_422(body, reason):
    refused = _refusal(body)

    assert refused.status == 422 and reason in refused.errors["a"][0]


def test_an_unstorable_name_is_refused_too():
    refused = _refusal('{"ok": {"bad\\u0000name": 1}}')

    assert refused.status == 422 and "bad\\x00name" in refused.errors["ok"]


@pytest.mark.parametrize("depth", [17, 5_000, 200_000])
def test_nesting_past_the_limit_is_refused_at_its_path(depth):
    refused = _refusal('{"text": ' + "[" * depth + "]" * depth + "}")

    assert refused.status == 400 and "Nested deeper than 16 levels" in refused.detail
    # The root object is the first level; the refused container sits at text.0.0... (15 indices).
    errors = refused.errors["text"]
    for _ in range(14):
        errors = errors["0"]
    assert errors == {"0": ["Nested deeper than 16 levels."]}


def test_nesting_at_the_limit_is_accepted():
    assert strict_json_loads("[" * 16 + "]" * 16, 16) == [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]
    assert strict_json_loads(b"[" * 16 + b"]" * 16, 16) == [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]


@pytest.mark.parametrize("body", ["{", "[1,]", "", "\ufeff{}"])
def test_malformed_json_is_a_400_without_fields(body):
    refused = _refusal(body)

    assert refused.status == 400 and refused.errors is None


def test_unstorable_text_says_why():
    assert unstorable_text("fine") is None
    assert unstorable_text("a\x00b") == "Contains a NUL character."
    assert unstorable_text("\udfff") == "Contains a lone surrogate."


def test_a_body_starting_with_a_byte_order_mark_is_refused_as_json_loads_refuses_it():
    with pytest.raises(HostileInput, match="Invalid JSON body"):
        strict_json_loads(b"\xef\xbb\xbf{}", 32)
    # The decoder kept between bodies forgets what it refused in the last one.
    with pytest.raises(HostileInput):
        strict_json_loads(b'{"a": NaN}', 32)
    assert strict_json_loads(b'{"a": 1.5}', 32) == {"a": 1.5}
