import copy
import io
import json
import pickle

import orjson
import pytest
from rest_framework.exceptions import ParseError

from predictions import parsers
from predictions.parsers import NON_FINITE, StrictJSONParser

PLAIN_BODY = json.dumps({"instances": [
    {"followers": 1200, "rate": 0.25, "tiny": 1e-7, "big": 1.5e300, "negative": -3,
     "zero": -0.0, "flag": True, "none": None, "text": 'tab\t "quoted" back\\slash é€😀',
     "nested": {"list": [1, 2.5, "x"]}},
    {"followers": 4294967296123, "rate": 1e16},
]}).encode()


def parse(body: bytes, **context):
    return StrictJSONParser().parse(io.BytesIO(body), "application/json", context)


def test_parser_serves_application_json():
    assert StrictJSONParser.media_type == "application/json"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_parse_turns_non_finite_literal_into_sentinel(literal):
    assert parse(f'{{"x": {literal}}}'.encode()) == {"x": NON_FINITE}


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e309"])
def test_parse_turns_number_beyond_float_range_into_sentinel(number):
    assert parse(f"[{number}]".encode())[0] is NON_FINITE


def test_parse_keeps_finite_numbers_and_their_types():
    data = parse(b'[1, -2, 1.5, 3.0, 1e308, 123456789012345678901234567890, true, null]')

    assert data == [1, -2, 1.5, 3.0, 1e308, 123456789012345678901234567890, True, None]
    assert [type(value) for value in data[:4]] == [int, int, float, float]


def test_parse_keeps_integers_just_beyond_64_bits_exact():
    data = parse(b"[-9223372036854775809, 18446744073709551616]")

    assert data == [-9223372036854775809, 18446744073709551616]
    assert [type(value) for value in data] == [int, int]


def test_a_plain_body_is_read_by_orjson(monkeypatch):
    calls, loads = [], orjson.loads
    monkeypatch.setattr(parsers.orjson, "loads", lambda raw: calls.append(raw) or loads(raw))

    parse(PLAIN_BODY)

    assert calls == [PLAIN_BODY]


def test_orjson_reads_a_plain_body_as_the_standard_library_does():
    data = parse(PLAIN_BODY)
    expected = json.loads(PLAIN_BODY)

    assert data == expected
    assert [type(value) for value in data["instances"][0].values()] == [
        type(value) for value in expected["instances"][0].values()]


def test_parse_decodes_utf8():
    assert parse('{"région": "é€😀"}'.encode()) == {"région": "é€😀"}


def test_parse_rejects_malformed_json():
    with pytest.raises(ParseError, match="JSON parse error"):
        parse(b'{"instances": [')


def test_parse_rejects_invalid_utf8():
    with pytest.raises(ParseError, match="invalid UTF-8"):
        parse(b'{"x": "\xff\xfe"}')


def test_parse_rejects_declared_non_utf8_charset():
    with pytest.raises(ParseError, match="UTF-8"):
        parse(b"[]", encoding="latin-1")


def test_parse_accepts_declared_utf8_charset_in_any_spelling():
    assert parse(b"[]", encoding="UTF8") == []


def test_parse_rejects_deep_nesting_without_recursion_error():
    body = b"[" * 10_000 + b"]" * 10_000

    with pytest.raises(ParseError, match="nested too deeply"):
        parse(body)


def test_parse_rejects_integer_with_too_many_digits():
    with pytest.raises(ParseError, match="too many digits"):
        parse(b"[" + b"9" * 5000 + b"]")


def test_sentinel_repr_says_what_it_stands_for():
    assert "NON_FINITE" in repr(NON_FINITE)
    assert "NaN" in repr(NON_FINITE)


def test_sentinel_survives_copy_and_pickle():
    assert copy.copy(NON_FINITE) is NON_FINITE
    assert copy.deepcopy(NON_FINITE) is NON_FINITE
    assert pickle.loads(pickle.dumps(NON_FINITE)) is NON_FINITE
