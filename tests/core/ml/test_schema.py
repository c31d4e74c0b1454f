"""Semantic versions and schema signatures (pure: no database)."""

import pandas
import pytest

from core.ml.schema import feature_spec, next_version, schema_from_frame, schema_signature


def schema(*features: dict, target: str = "likes") -> dict:
    return {"target": target, "features": list(features)}


FOLLOWERS = feature_spec(name="followers", dtype="float")
HASHTAGS = feature_spec(name="hashtags", dtype="int")
BASE = schema(FOLLOWERS, HASHTAGS)


def existing(*pairs: tuple[str, dict]) -> list[dict]:
    return [{"version": version, "feature_schema": value} for version, value in pairs]


def test_next_version_is_1_0_0_for_first_version():
    assert next_version([], BASE) == "1.0.0"


def test_next_version_bumps_minor_when_schema_unchanged():
    assert next_version(existing(("1.0.0", BASE), ("1.1.0", BASE)), BASE) == "1.2.0"


def test_next_version_resets_patch_on_minor_bump():
    assert next_version(existing(("1.2.3", BASE)), BASE) == "1.3.0"


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(schema(FOLLOWERS), id="feature-removed"),
        pytest.param(schema(FOLLOWERS, HASHTAGS, feature_spec(name="shares", dtype="int")),
                     id="feature-added"),
        pytest.param(schema(HASHTAGS, FOLLOWERS), id="features-reordered"),
        pytest.param(schema(FOLLOWERS, feature_spec(name="hashtags", dtype="float")),
                     id="dtype-changed"),
        pytest.param(schema(FOLLOWERS, feature_spec(name="tags", dtype="int")), id="renamed"),
    ],
)
def test_next_version_bumps_major_when_schema_changed(changed):
    assert next_version(existing(("1.4.0", BASE)), changed) == "2.0.0"


def test_next_version_bumps_major_when_categories_changed():
    before = schema(feature_spec(name="channel", dtype="category", categories=["a", "b"]))
    after = schema(feature_spec(name="channel", dtype="category", categories=["a", "b", "c"]))

    assert next_version(existing(("3.1.0", before)), after) == "4.0.0"


def test_next_version_orders_versions_numerically_not_lexically():
    # As strings "1.9.0" > "1.10.0"; the latest version is 1.10.0.
    assert next_version(existing(("1.10.0", BASE), ("1.9.0", BASE)), BASE) == "1.11.0"


def test_next_version_compares_with_latest_version_schema_only():
    old = schema(FOLLOWERS)
    versions = existing(("1.0.0", old), ("2.0.0", BASE))

    assert next_version(versions, BASE) == "2.1.0"
    assert next_version(versions, old) == "3.0.0"


def test_next_version_bumps_minor_when_only_non_input_protected_column_added():
    with_protected = schema(
        FOLLOWERS, HASHTAGS,
        feature_spec(name="gender", dtype="category", categories=["f", "m"], protected=True,
                     input=False),
    )

    assert next_version(existing(("1.0.0", BASE)), with_protected) == "1.1.0"


def test_next_version_bumps_minor_when_only_bounds_or_pii_changed():
    relaxed = schema(
        feature_spec(name="followers", dtype="float", minimum=0, maximum=1e9, pii=True), HASHTAGS
    )

    assert next_version(existing(("1.0.0", BASE)), relaxed) == "1.1.0"


def test_schema_signature_lists_inputs_in_order_with_types_and_categories():
    value = schema(
        feature_spec(name="channel", dtype="category", categories=["web", "app"]),
        FOLLOWERS,
        feature_spec(name="age_band", dtype="category", categories=["18-24"], protected=True,
                     input=False),
    )

    assert schema_signature(value) == [
        ("channel", "category", ("app", "web")),
        ("followers", "float", ()),
    ]


def test_schema_signature_is_empty_for_schema_without_features():
    assert schema_signature({}) == []


# --- personal data and high-cardinality categories (docs/registry.md#personal-data) ------


def test_a_personal_feature_lists_none_of_its_categories():
    email = feature_spec(name="email", dtype="category", categories=["ana@x.test"], pii=True)

    assert (email["pii"], email["categories"]) == (True, None)


@pytest.mark.parametrize(("distinct", "enumerated"), [(3, True), (4, False)])
def test_schema_from_frame_enumerates_a_category_up_to_the_maximum(distinct, enumerated):
    frame = pandas.DataFrame({"city": [f"c{i}" for i in range(distinct)] * 2,
                              "likes": range(2 * distinct)})

    city = schema_from_frame(frame, target="likes", category_enum_max=3)["features"][0]

    assert city["categories"] == ([f"c{i}" for i in range(distinct)] if enumerated else None)
