"""The API's JSON parser: strict UTF-8, no silent non-finite numbers, no stack blow-up.

Python's `json` turns the non-standard literals `NaN`, `Infinity` and `-Infinity` into
floats and a number too large for a float (`1e400`) into `inf`: a model would then see
an infinity the client may not have meant, or the imputer would silently fill it. Here
every such number becomes the sentinel `NON_FINITE` instead, which request validation
(predictions.validation) reports as `not_finite` for the exact instance and field.

Integers are left to Python (they are exact); one beyond the float range is reported as
`not_finite` by validation when it is turned into a float. An integer of more than
4,300 digits is refused here (Python will not convert it), as is anything nested deeper
than the interpreter's recursion limit (about 1,000 levels): both are a ParseError,
which the API renders as 400 `malformed_json`.

Speed: a body is first read by orjson, in C, about twice as fast as `json` with the hook
that catches non-finite numbers. orjson refuses exactly what needs that hook (NaN,
Infinity, numbers beyond the float range) and what `json` reads differently or reports
in its own words (lone surrogates, nesting, invalid UTF-8); it reads integers of more than
64 bits as floats, so a body with a run of 19 digits skips it. Anything orjson does not
read is parsed by the rules above.
"""

import codecs
import contextlib
import json
import math

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# JSON text is UTF-8 (RFC 8259 §8.1); ASCII is a subset of it.
_UTF8_CODECS = frozenset({"utf-8", "ascii"})
# Digits enough for an integer orjson would read as a float (beyond -2**63 .. 2**64 - 1),
# found as a run of 19 nines once every digit is a nine (a regular expression scanning a
# 2,000-row body takes ten times as long).
_DIGITS_AS_NINES = bytes.maketrans(b"0123456789", b"9" * 10)
_LONG_DIGITS = b"9" * 19


class _NonFinite:
    """The one value standing for NaN, +-Infinity or a number beyond the float range."""

    __slots__ = ()
    _instance = None

    def __new__(cls) -> "_NonFinite":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<NON_FINITE: NaN, Infinity, -Infinity or beyond the float range>"

    def __reduce__(self) -> str:
        # copy, deepcopy and pickle give back the module-level singleton.
        return "NON_FINITE"


NON_FINITE = _NonFinite()


def _parse_constant(literal: str) -> _NonFinite:
    # Called by json for exactly NaN, Infinity and -Infinity.
    return NON_FINITE


def _parse_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NON_FINITE


def json_loads_strict(text: str):
    """Parse JSON text with NON_FINITE for non-finite numbers; ParseError if invalid."""
    try:
        return json.loads(text, parse_constant=_parse_constant, parse_float=_parse_float)
    except RecursionError:
        raise ParseError("JSON parse error - the document is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    except ValueError:
        # int() refuses integers of more than sys.get_int_max_str_digits() digits.
        raise ParseError("JSON parse error - a number has too many digits") from None


class StrictJSONParser(JSONParser):
    """application/json, decoded as strict UTF-8, with non-finite numbers as NON_FINITE."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        charset = parser_context.get("encoding") or "utf-8"
        try:
            declared = codecs.lookup(charset).name
        except LookupError:
            declared = None
        if declared not in _UTF8_CODECS:
            raise ParseError(f"JSON must be encoded as UTF-8, not {str(charset)[:40]!r}")
        raw = stream.read() if stream is not None else b""
        if (isinstance(raw, bytes | bytearray)
                and _LONG_DIGITS not in raw.translate(_DIGITS_AS_NINES)):
            # What orjson refuses, the strict parser below answers as it always has.
            with contextlib.suppress(orjson.JSONDecodeError):
                return orjson.loads(raw)
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - invalid UTF-8 at byte {exc.start}") from None
        return json_loads_strict(text)
