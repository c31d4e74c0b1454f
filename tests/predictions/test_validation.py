import dataclasses
import io
import math

import pandas
import pytest
from pandas.testing import assert_frame_equal

from core.errors import ValidationError
from core.ml.features import model_frame
from core.ml.recipes.engagement import EngagementLikes
from core.ml.recipes.lead_conversion import LeadConversion
from core.ml.schema import feature_spec
from predictions import validation
from predictions.parsers import NON_FINITE, StrictJSONParser
from predictions.validation import ValidatedBatch, instances_validate

SCHEMA = {"target": "y", "features": [
    feature_spec(name="amount", dtype="float", minimum=0, maximum=100),
    feature_spec(name="count", dtype="int", minimum=0),
    feature_spec(name="active", dtype="bool"),
    feature_spec(name="color", dtype="category", categories=["blue", "red"]),
    feature_spec(name="email", dtype="category", categories=[], pii=True),
    feature_spec(name="region", dtype="category", categories=["apac", "emea"], protected=True,
                 input=False),
]}


def instance(**changes):
    values = {"amount": 12.5, "count": 3, "active": True, "color": "red", "email": "a@b.c"}
    values.update(changes)
    return {key: value for key, value in values.items() if value is not ...}


def errors_of(instances, schema=SCHEMA):
    with pytest.raises(ValidationError) as caught:
        instances_validate(schema=schema, instances=instances)
    return caught.value


def entries(error):
    return [(d["index"], d["field"], d["code"]) for d in error.details]


def parsed(body: str):
    return StrictJSONParser().parse(io.BytesIO(body.encode()), "application/json", {})


# Success: the canonical frame --------------------------------------------------------------

def test_validate_valid_batch_gives_model_frame():
    instances = [instance(), instance(amount=0, count=0, active=False, color="blue", region="emea")]

    batch = instances_validate(schema=SCHEMA, instances=instances)

    expected, _ = model_frame(pandas.DataFrame(instances), SCHEMA)
    assert_frame_equal(batch.frame, expected)
    assert list(batch.frame.columns) == ["amount", "count", "active", "color", "email"]
    assert batch.frame.dtypes.to_dict() == {"amount": float, "count": float, "active": float,
                                            "color": object, "email": object}


def engagement_instance(i):
    return {"platform": ["facebook", "instagram", "linkedin", "tiktok", "x"][i % 5],
            "media_type": ["carousel", "image", "text", "video"][i % 4],
            "followers": 1000 * i, "hour": i % 24, "weekday": i % 7, "caption_length": 10 + i,
            "hashtags": i % 5, "mentions": float(i % 3), "has_link": i % 2 == 0,
            "sentiment": -1 + (i % 20) / 10, "recent_posting_rate": i % 4,
            "avg_engagement_30d": 12.25 * i}


def lead_instance(i):
    return {"source": ["event", "referral", "webinar"][i % 3],
            "industry": ["finance", "saas", "retail", "media"][i % 4],
            "company_size": ["1-10", "11-50", "51-200", "201-1000", "1000+"][i % 5],
            "region": ["americas", "apac", "emea"][i % 3], "pages_viewed": i,
            "emails_opened": i % 7, "days_since_first_touch": 3 * i, "demo_requested": i % 3 == 0}


@pytest.mark.parametrize(("recipe", "make"), [(EngagementLikes(), engagement_instance),
                                            (LeadConversion(), lead_instance)])
def test_validate_real_schema_frame_equals_model_frame(recipe, make):
    schema = recipe.feature_schema()
    instances = [make(i) for i in range(50)]

    batch = instances_validate(schema=schema, instances=instances)

    expected, report = model_frame(pandas.DataFrame(instances), schema)
    assert_frame_equal(batch.frame, expected)
    assert report.as_dict()["imputed"] == {}
    assert list(batch.frame.index) == list(range(50))


def test_validate_batch_is_frozen():
    batch = instances_validate(schema=SCHEMA, instances=[instance()])

    assert isinstance(batch, ValidatedBatch)
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.frame = None


def test_validate_empty_batch_gives_empty_frame_with_canonical_dtypes():
    batch = instances_validate(schema=SCHEMA, instances=[])

    assert batch.frame.shape == (0, 5)
    assert batch.frame.dtypes.to_dict() == {"amount": float, "count": float, "active": float,
                                            "color": object, "email": object}
    assert batch.logged == [] and batch.extra == []


# One test per error code ---------------------------------------------------------------------

def test_validate_absent_input_is_missing():
    error = errors_of([instance(count=...)])

    assert error.code == "validation_error" and error.http_status == 422
    assert error.details == [{"index": 0, "field": "count", "code": "missing",
                              "message": "is required"}]


def test_validate_null_input_is_missing():
    assert entries(errors_of([instance(color=None)])) == [(0, "color", "missing")]


def test_validate_string_for_number_is_wrong_type():
    assert entries(errors_of([instance(amount="12.5")])) == [(0, "amount", "wrong_type")]


def test_validate_non_finite_float_is_not_finite():
    error = errors_of([instance(amount=math.inf)])

    assert error.details == [{"index": 0, "field": "amount", "code": "not_finite",
                              "message": "must be a finite number"}]


def test_validate_undeclared_category_is_unknown_category():
    error = errors_of([instance(color="green")])

    assert error.details == [{"index": 0, "field": "color", "code": "unknown_category",
                              "message": "must be one of: blue, red"}]


def test_validate_value_outside_bounds_is_out_of_bounds():
    error = errors_of([instance(amount=100.5), instance(count=-1), instance(amount=100)])

    assert entries(error) == [(0, "amount", "out_of_bounds"), (1, "count", "out_of_bounds")]
    assert error.details[0]["message"] == "must be between 0 and 100"
    assert error.details[1]["message"] == "must be at least 0"


def test_validate_key_outside_schema_is_unexpected_field():
    error = errors_of([instance(colour="red")])

    assert error.details == [{"index": 0, "field": "colour", "code": "unexpected_field",
                              "message": "is not a feature of this model"}]


def test_validate_non_object_instance_is_wrong_type_without_field():
    error = errors_of([instance(), ["a", "list"], "text", None])

    assert entries(error) == [(1, None, "wrong_type"), (2, None, "wrong_type"),
                              (3, None, "wrong_type")]


def test_validate_instances_not_a_list_is_wrong_type():
    error = errors_of({"amount": 1})

    assert entries(error) == [(None, "instances", "wrong_type")]


# Types ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["amount", "count"])
def test_validate_bool_for_number_is_wrong_type(field):
    assert entries(errors_of([instance(**{field: True})])) == [(0, field, "wrong_type")]


@pytest.mark.parametrize("value", [1, 0, "true", 1.0])
def test_validate_non_bool_for_bool_is_wrong_type(value):
    assert entries(errors_of([instance(active=value)])) == [(0, "active", "wrong_type")]


@pytest.mark.parametrize("value", [1, 1.5, True, ["red"], {"v": "red"}])
def test_validate_non_string_for_category_is_wrong_type(value):
    assert entries(errors_of([instance(color=value)])) == [(0, "color", "wrong_type")]


def test_validate_integral_float_for_int_is_accepted_and_logged_as_int():
    batch = instances_validate(schema=SCHEMA, instances=[instance(count=3.0), instance(count=4)])

    assert batch.frame["count"].tolist() == [3.0, 4.0]
    assert [entry["count"] for entry in batch.logged] == [3, 4]
    assert type(batch.logged[0]["count"]) is int


def test_validate_fractional_float_for_int_is_wrong_type():
    error = errors_of([instance(count=3.5)])

    assert error.details == [{"index": 0, "field": "count", "code": "wrong_type",
                              "message": "must be an integer"}]


def test_validate_int_for_float_is_accepted():
    batch = instances_validate(schema=SCHEMA, instances=[instance(amount=12)])

    assert batch.frame["amount"].tolist() == [12.0]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_validate_parsed_non_finite_number_is_not_finite(literal):
    instances = parsed(f'[{{"amount": {literal}, "count": {literal}, "active": true, '
                       f'"color": "red", "email": "x"}}]')

    assert entries(errors_of(instances)) == [(0, "amount", "not_finite"),
                                             (0, "count", "not_finite")]


def test_validate_integer_beyond_float_range_is_not_finite():
    assert entries(errors_of([instance(count=10**400)])) == [(0, "count", "not_finite")]


@pytest.mark.parametrize("field", ["active", "color"])
def test_validate_non_finite_for_bool_or_category_is_wrong_type(field):
    assert entries(errors_of([instance(**{field: NON_FINITE})])) == [(0, field, "wrong_type")]


@pytest.mark.parametrize("text", ["nul\x00byte", "lone \ud800 surrogate"])
def test_validate_unstorable_free_text_is_wrong_type(text):
    assert entries(errors_of([instance(email=text)])) == [(0, "email", "wrong_type")]


# Several errors at once -----------------------------------------------------------------------

def test_validate_reports_every_error_sorted_by_index_then_schema_order():
    instances = [
        instance(),
        instance(color="green", amount="x", extra_a=1, count=...),
        instance(),
        {"zzz": 1, "active": 1, "amount": -5, "count": 2, "color": "red", "email": "e",
         "region": "mars"},
    ]

    error = errors_of(instances)

    assert entries(error) == [
        (1, "amount", "wrong_type"), (1, "count", "missing"), (1, "color", "unknown_category"),
        (1, "extra_a", "unexpected_field"),
        (3, "amount", "out_of_bounds"), (3, "active", "wrong_type"),
        (3, "region", "unknown_category"), (3, "zzz", "unexpected_field"),
    ]
    assert error.message == "8 invalid field(s) in 2 instance(s)"


def test_validate_reports_one_error_per_field():
    # Fractional and out of bounds: the type error only.
    assert entries(errors_of([instance(count=-1.5)])) == [(0, "count", "wrong_type")]


def test_validate_caps_details_and_gives_the_total(monkeypatch):
    monkeypatch.setattr(validation, "MAX_ERROR_DETAILS", 3)

    error = errors_of([{} for _ in range(2)])

    assert entries(error) == [(0, "amount", "missing"), (0, "count", "missing"),
                              (0, "active", "missing")]
    assert error.message == "10 invalid field(s) in 2 instance(s); the first 3 are listed"


def test_validate_default_cap_is_1000_details():
    error = errors_of([{} for _ in range(300)])

    assert len(error.details) == 1000
    assert error.message.startswith("1500 invalid field(s) in 300 instance(s)")


# Unexpected keys ------------------------------------------------------------------------------

def test_validate_unicode_key_is_unexpected_field():
    error = errors_of([instance(**{"montant_€": 1, "金额": 2})])

    assert entries(error) == [(0, "montant_€", "unexpected_field"), (0, "金额", "unexpected_field")]


def test_validate_echoes_unexpected_key_utf8_safe_and_truncated():
    body = '{"\\ud800": 1, "' + "k" * 500 + '": 2}'
    error = errors_of([{**instance(), **parsed(body)}])

    fields = [d["field"] for d in error.details]
    assert [d["code"] for d in error.details] == ["unexpected_field"] * 2
    assert fields[0] == "\\ud800"
    assert fields[1] == "k" * validation.FIELD_ECHO_LIMIT + "…"
    for field in fields:
        field.encode("utf-8")


# Logged and extra -----------------------------------------------------------------------------

def test_validate_logged_drops_pii_and_keeps_audit_features():
    batch = instances_validate(schema=SCHEMA, instances=[instance(region="apac"), instance()])

    assert batch.logged == [
        {"amount": 12.5, "count": 3, "active": True, "color": "red", "region": "apac"},
        {"amount": 12.5, "count": 3, "active": True, "color": "red"},
    ]
    assert batch.extra == [{"region": "apac"}, {}]
    assert "region" not in batch.frame.columns


def test_validate_non_input_feature_is_optional_and_may_be_null():
    batch = instances_validate(schema=SCHEMA, instances=[instance(region=None), instance()])

    assert len(batch.frame) == 2


def test_validate_logged_is_a_copy_of_the_request():
    instances = [instance()]

    batch = instances_validate(schema=SCHEMA, instances=instances)
    batch.logged[0]["amount"] = 99

    assert instances[0]["amount"] == 12.5


def test_validate_excludes_pii_non_input_feature_from_logged_and_extra():
    schema = {"target": "y", "features": [
        feature_spec(name="amount", dtype="float"),
        feature_spec(name="birth_year", dtype="int", pii=True, protected=True, input=False),
    ]}

    batch = instances_validate(schema=schema, instances=[{"amount": 1.0, "birth_year": 1980}])

    assert batch.logged == [{"amount": 1.0}]
    assert batch.extra == [{}]
