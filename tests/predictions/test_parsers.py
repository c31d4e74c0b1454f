import copy
import io
import pickle

import pytest
from rest_framework.exceptions import ParseError

from predictions.parsers import NON_FINITE, StrictJSONParser


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
