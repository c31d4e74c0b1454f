"""Reference profiles (pure: no database): what they keep of personal features."""

import numpy
import pandas

from core.ml.profile import reference_profile_build
from core.ml.schema import feature_spec


def test_the_reference_profile_leaves_a_personal_feature_out():
    schema = {"target": "likes", "features": [
        feature_spec(name="email", dtype="category", pii=True),
        feature_spec(name="followers", dtype="float"),
    ]}
    frame = pandas.DataFrame({"email": ["ana@x.test", "bo@x.test"], "followers": [1.0, 2.0]})

    profile = reference_profile_build(frame=frame, schema=schema, outputs=numpy.zeros(2), seed=0)

    assert list(profile["features"]) == ["followers"]
