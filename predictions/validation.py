"""Checking prediction instances against a version's feature schema (pure: no database).

`instances_validate` either returns the batch ready to serve (the canonical model frame of
core.ml.features.model_frame, and what may be logged) or raises one
`ValidationError` listing every problem of the request (docs/api.md#errors, 422 `validation_error`,
`details: [{"index", "field", "code", "message"}]`), so a client fixes its batch in one
round trip. A request that fails validation reaches no model and logs nothing.

The contract is strict, on purpose: models can impute, but a client sending something
the model was not trained on should hear about it rather than get a quiet guess.

- An instance must be a JSON object; anything else is `wrong_type` with `field: null`
  (the problem is the instance, not one of its fields) and its content is not examined.
- Keys are the schema's features: its inputs and its non-input (protected, audit-only)
  features. Any other key is `unexpected_field`.
- Every input feature is required: absent or `null` is `missing`. A non-input feature is
  optional; `null` there means "not given".
- `float`: a JSON number (integer or not); `int`: a JSON integer, or a number with an
  integral value (`3.0`; `3.5` is `wrong_type`); `bool`: `true`/`false` only (not 0/1,
  not "true"); `category`: a string only. Numbers are refused for a category rather than
  turned into text, because `1` and `1.0` would become different categories. JSON
  booleans are never numbers (Python's `bool` is an `int`, checked apart).
- `not_finite`: NaN, Infinity, -Infinity or a number beyond the float range (`1e400`,
  or a huge integer) for a `float`/`int` feature: what predictions.parsers turns into
  NON_FINITE, and float NaN/inf from any other caller; also a number beyond NUMBER_LIMIT
  (single precision's range, about 3.4e38: tree models compute in float32, where a larger
  number is infinite). For a `bool` or `category`
  feature such a value is `wrong_type`.
- `unknown_category` when the feature declares its categories (a non-empty list);
  without declared categories any string is taken, except one that could not be stored in
  the prediction log (a lone surrogate or a NUL character), which is `wrong_type`.
- `out_of_bounds` outside the schema's `min`/`max` (inclusive) for `float`/`int`.
- At most one error per instance and field, the most basic one (missing, wrong type,
  not finite, then category or bounds). Details are sorted by index, then schema order,
  then unexpected keys in the instance's own order. At most MAX_ERROR_DETAILS are
  listed; the message always gives the total. Unexpected keys are echoed back truncated
  to FIELD_ECHO_LIMIT characters and made UTF-8-safe; values are never echoed.

Speed: each feature is checked as a column. When a column holds only the expected
Python types (one `set(map(type, ...))`), values are not inspected one by one: numpy
does the finiteness, integrality and bounds checks. The per-value scan only runs on a
column that has something wrong (or an optional feature with gaps).
"""

import math
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from operator import itemgetter

import numpy
import pandas

from core.errors import ValidationError
from predictions.parsers import NON_FINITE

MAX_ERROR_DETAILS = 1000
# The largest magnitude a number may have: float32's largest finite value.
NUMBER_LIMIT = float(numpy.finfo(numpy.float32).max)
FIELD_ECHO_LIMIT = 100
CATEGORIES_LISTED_UP_TO = 20

_NUMBER_TYPES = frozenset({int, float})
_BOOL_TYPES = frozenset({bool})
_STR_TYPES = frozenset({str})
_NONE_TYPE = type(None)


@dataclass(frozen=True)
class ValidatedBatch:
    """A valid batch.

    `columns`: the input features in schema order, by name, in canonical form: a float64
    array for float, int and bool, a list of str for a category. What a compiled model
    takes (core.ml.compiled) without the cost of a DataFrame.
    `frame`: the same columns as a DataFrame (float64, object-dtype str for categories,
    index 0..n-1), built on first use: what a pipeline takes.
    `logged`: per instance, the schema features given, PII ones dropped, as JSON values
    (an integral float given for an `int` feature is logged as an integer): what the
    prediction log may store. Non-input (audit-only) features are in it.
    `extra`: per instance, the non-input features given (PII ones dropped). Everything
    in `extra` is also in `logged`; it spares callers from reading the schema to find the
    audit attributes.
    """

    columns: dict[str, numpy.ndarray | list]
    logged: list[dict]
    extra: list[dict]
    rows: int
    dtypes: dict[str, str]  # the schema's dtype per feature name

    @cached_property
    def frame(self) -> pandas.DataFrame:
        index = pandas.RangeIndex(self.rows)
        # Object dtype on purpose, as in model_frame: pandas would infer its own string dtype.
        data = {name: pandas.Series(column, index=index, dtype=object)
                if self.dtypes[name] == "category" else column
                for name, column in self.columns.items()}
        return pandas.DataFrame(data, index=index)


class _Skip:
    """A field of an instance that is not an object: already reported, not checked."""

    __slots__ = ()


_SKIP = _Skip()


class _NotAnObject(dict):
    """Stands in for a non-object instance: has no keys, every feature reads as _SKIP."""

    __slots__ = ()

    def get(self, key, default=None):
        return _SKIP


_PLACEHOLDER = _NotAnObject()


def _number_text(value) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def field_echo(key) -> str:
    text = key if isinstance(key, str) else repr(key)
    if len(text) > FIELD_ECHO_LIMIT:
        text = text[:FIELD_ECHO_LIMIT] + "…"
    # A lone surrogate (legal in JSON escapes) cannot be written as UTF-8.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Checker:
    """Checks one feature's column; errors are (index, order, field, code, message)."""

    def __init__(self, feature: dict, order: int, objects: list, errors: list) -> None:
        self.name = feature["name"]
        self.feature = feature
        self.order = order
        self.objects = objects
        self.errors = errors
        self.required = feature.get("input", True)

    def error(self, index: int, code: str, message: str) -> None:
        self.errors.append((index, self.order, self.name, code, message))

    def missing(self, index: int) -> None:
        if self.name in self.objects[index]:
            self.error(index, "missing", "is null; every input feature needs a value")
        else:
            self.error(index, "missing", "is required")

    def absent(self, index: int, value) -> bool:
        """True for a value that is not to be type-checked (reported if it had to be)."""
        if value is _SKIP:
            return True
        if value is None:
            if self.required:
                self.missing(index)
            return True
        return False


class _NumberChecker(_Checker):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.integral = self.feature["dtype"] == "int"
        self.type_message = "must be an integer" if self.integral else "must be a number"
        self.logged_as_int: list[int] = []  # integral floats of an int feature

    def check(self, values: list, types: set) -> numpy.ndarray:
        array = None
        if types <= _NUMBER_TYPES:
            try:
                array = numpy.array(values, dtype=float)
            except OverflowError:  # an integer beyond the float range
                array = None
        if array is None:
            array = self._scan(values)
        else:
            with numpy.errstate(invalid="ignore"):
                magnitude = numpy.abs(array)
                finite = numpy.isfinite(array) & (magnitude <= NUMBER_LIMIT)
                # An integer just beyond the limit reads as the limit once a float: compared
                # exactly (Python compares an int with a float exactly).
                for index in numpy.flatnonzero(magnitude == NUMBER_LIMIT).tolist():
                    finite[index] = abs(values[index]) <= NUMBER_LIMIT
            if not finite.all():
                for index in numpy.flatnonzero(~finite).tolist():
                    self.error(index, "not_finite", "must be a finite number")
                array[~finite] = numpy.nan
        if self.integral and types != {int}:
            fractional = (numpy.trunc(array) != array) & ~numpy.isnan(array)
            for index in numpy.flatnonzero(fractional).tolist():
                self.error(index, "wrong_type", self.type_message)
            array[fractional] = numpy.nan
            self.logged_as_int = [index for index, value in enumerate(values)
                                  if type(value) is float and not fractional[index]]
        self._bounds(array)
        return array

    def _scan(self, values: list) -> numpy.ndarray:
        array = numpy.full(len(values), numpy.nan)
        for index, value in enumerate(values):
            if self.absent(index, value):
                continue
            if value is NON_FINITE:
                self.error(index, "not_finite", "must be a finite number")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.error(index, "wrong_type", self.type_message)
                continue
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not (math.isfinite(number) and abs(value) <= NUMBER_LIMIT):
                self.error(index, "not_finite", "must be a finite number")
                continue
            array[index] = number
        return array

    def _bounds(self, array: numpy.ndarray) -> None:
        low, high = self.feature.get("min"), self.feature.get("max")
        if low is None and high is None:
            return
        if low is not None and high is not None:
            message = f"must be between {_number_text(low)} and {_number_text(high)}"
        elif low is not None:
            message = f"must be at least {_number_text(low)}"
        else:
            message = f"must be at most {_number_text(high)}"
        outside = numpy.zeros(len(array), dtype=bool)
        if low is not None:
            outside |= array < low
        if high is not None:
            outside |= array > high
        for index in numpy.flatnonzero(outside).tolist():
            self.error(index, "out_of_bounds", message)


class _BoolChecker(_Checker):
    def check(self, values: list, types: set) -> numpy.ndarray:
        if types <= _BOOL_TYPES:
            return numpy.array(values, dtype=float)
        array = numpy.full(len(values), numpy.nan)
        for index, value in enumerate(values):
            if self.absent(index, value):
                continue
            if value is True or value is False:
                array[index] = float(value)
            else:
                self.error(index, "wrong_type", "must be true or false")
        return array


class _CategoryChecker(_Checker):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.declared = frozenset(self.feature.get("categories") or ())
        declared = sorted(self.declared)
        if len(declared) <= CATEGORIES_LISTED_UP_TO:
            self.unknown_message = "must be one of: " + ", ".join(declared)
        else:
            self.unknown_message = f"must be one of the {len(declared)} declared categories"

    def check(self, values: list, types: set) -> list:
        if types <= _STR_TYPES:
            if self.declared:
                if not self.declared.issuperset(values):
                    self._unknown(values)
            elif not storable("".join(values)):
                self._unstorable(values)
            return values
        for index, value in enumerate(values):
            if self.absent(index, value):
                continue
            if not isinstance(value, str):
                self.error(index, "wrong_type", "must be a string")
            elif self.declared:
                if value not in self.declared:
                    self.error(index, "unknown_category", self.unknown_message)
            elif not storable(value):
                self.error(index, "wrong_type", "must be text without NUL or lone surrogates")
        return values

    def _unknown(self, values: list) -> None:
        for index, value in enumerate(values):
            if value not in self.declared:
                self.error(index, "unknown_category", self.unknown_message)

    def _unstorable(self, values: list) -> None:
        for index, value in enumerate(values):
            if not storable(value):
                self.error(index, "wrong_type", "must be text without NUL or lone surrogates")


def storable(text: str) -> bool:
    """Whether JSON/PostgreSQL can store the string (no lone surrogate, no NUL)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CHECKERS = {"float": _NumberChecker, "int": _NumberChecker, "bool": _BoolChecker,
             "category": _CategoryChecker}


def instances_validate(*, schema: dict, instances: list) -> ValidatedBatch:
    """The batch ready for the model and the log, or ValidationError with every problem."""
    if not isinstance(instances, list | tuple):
        raise ValidationError("instances must be a JSON array of objects", details=[{
            "index": None, "field": "instances", "code": "wrong_type",
            "message": "must be a JSON array of objects"}])
    errors: list[tuple] = []
    objects = instances
    if set(map(type, instances)) - {dict} and not all(
            isinstance(instance, dict) for instance in instances):
        objects = list(instances)
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict):
                errors.append((index, -1, None, "wrong_type", "an instance must be a JSON object"))
                objects[index] = _PLACEHOLDER

    features = schema["features"]
    checkers, columns, complete = [], {}, True
    for order, feature in enumerate(features):
        name = feature["name"]
        checker = _CHECKERS[feature["dtype"]](feature, order, objects, errors)
        values = (list(map(dict.get, objects, repeat(name))) if objects is instances
                  else [instance.get(name) for instance in objects])
        types = set(map(type, values))
        complete = complete and _NONE_TYPE not in types
        column = checker.check(values, types)
        checkers.append(checker)
        if checker.required:
            columns[name] = column

    # When no feature was absent (or null) anywhere, every object holds all the features'
    # keys, so a longer one has unexpected keys: one len() per instance instead of a key
    # lookup per field.
    allowed = frozenset(feature["name"] for feature in features)
    if (max(map(len, objects), default=0) > len(features) if complete
            else not all(map(allowed.issuperset, objects))):
        _unexpected(objects, allowed, len(features), errors)

    if errors:
        raise _validation_error(errors)
    return ValidatedBatch(columns=columns, rows=len(objects),
                          dtypes={feature["name"]: feature["dtype"] for feature in features},
                          **_logged(objects, features, checkers))


def _unexpected(objects: list, allowed: frozenset, n_features: int, errors: list) -> None:
    for index, instance in enumerate(objects):
        if allowed.issuperset(instance):
            continue
        for position, key in enumerate(instance):
            if key not in allowed:
                errors.append((index, n_features + position, field_echo(key),
                               "unexpected_field", "is not a feature of this model"))


def _validation_error(errors: list) -> ValidationError:
    errors.sort(key=itemgetter(0, 1))
    total = len(errors)
    instances = len({error[0] for error in errors})
    message = f"{total} invalid field(s) in {instances} instance(s)"
    if total > MAX_ERROR_DETAILS:
        message += f"; the first {MAX_ERROR_DETAILS} are listed"
    details = [{"index": index, "field": field, "code": code, "message": text}
               for index, _, field, code, text in errors[:MAX_ERROR_DETAILS]]
    return ValidationError(message, details=details)



def _logged(objects: list, features: list, checkers: list) -> dict:
    pii = {feature["name"] for feature in features if feature.get("pii")}
    if pii:
        logged = [{key: value for key, value in instance.items() if key not in pii}
                  for instance in objects]
    else:
        logged = list(map(dict.copy, objects))
    for checker in checkers:
        if checker.name not in pii and getattr(checker, "logged_as_int", None):
            for index in checker.logged_as_int:
                logged[index][checker.name] = int(logged[index][checker.name])
    extra_names = [feature["name"] for feature in features
                   if not feature.get("input", True) and feature["name"] not in pii]
    if extra_names:
        extra = [{name: entry[name] for name in extra_names if name in entry} for entry in logged]
    else:
        extra = [{} for _ in logged]
    return {"logged": logged, "extra": extra}
