"""Throttles that count instances, not requests (docs/api.md#authentication): a client cannot
buy 2,000 predictions or hundreds of explanations for the price of one request."""

import pytest
from django.core.cache import cache

from predictions import services as serving
from predictions.api.auth import InstanceRateThrottle
from predictions.models import PredictionLog
from tests.factories import register_deployed_version
from tests.predictions.conftest import JSONClient

MODEL = "engagement-likes"
ROW = {"followers": 10.0, "hashtags": 2}
PREDICT, EXPLAIN = f"/api/v1/models/{MODEL}/predict", f"/api/v1/models/{MODEL}/explain"


# Samples of both features, so that the explainer has background rows.
PROFILE = {"seed": 0, "rows": 10, "features": {
    name: {"kind": "numeric", "n": 10, "missing": 0, "sample": [float(i) for i in range(10)]}
    for name in ("followers", "hashtags")}}


@pytest.fixture
def champion(people):
    return register_deployed_version(**people, name=MODEL, reference_profile=PROFILE)


@pytest.fixture
def small_instance_rates(monkeypatch):
    # DRF reads the rates when the throttle class is defined: patch the class.
    monkeypatch.setattr(InstanceRateThrottle, "THROTTLE_RATES",
                        {"api_key_instances": "10/min", "api_key_explain": "4/min"})
    cache.clear()
    yield
    cache.clear()


def test_a_batch_counts_each_instance(champion, api_client, small_instance_rates):
    assert api_client.post_json(PREDICT, [ROW] * 8).status_code == 200

    refused = api_client.post_json(PREDICT, [ROW] * 3)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert PredictionLog.objects.count() == 8
    assert api_client.post_json(PREDICT, [ROW] * 2).status_code == 200  # what is left


def test_explanations_have_their_own_smaller_budget(champion, api_client,
                                                    small_instance_rates):
    assert api_client.post_json(EXPLAIN, {"instances": [ROW] * 3}).status_code == 200

    refused = api_client.post_json(EXPLAIN, {"instances": [ROW] * 2})

    assert refused.status_code == 429
    assert api_client.post_json(PREDICT, [ROW] * 5).status_code == 200  # predict's own budget


def test_instance_budgets_are_per_key(champion, api_client, small_instance_rates):
    _, other_key = serving.api_key_create(name="another client")
    assert api_client.post_json(PREDICT, [ROW] * 10).status_code == 200

    other = JSONClient(HTTP_AUTHORIZATION=f"Api-Key {other_key}")

    assert other.post_json(PREDICT, [ROW] * 10).status_code == 200
