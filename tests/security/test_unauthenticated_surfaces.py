"""What an anonymous caller can learn or grow (docs/api.md#endpoints, #metrics): /ready without
a key names no model (the names would list the clients), and no request adds a metric series.
"""

import random
import string

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from tests.factories import artifact_tamper, register_deployed_version

MODEL = "engagement-likes--globex"


@pytest.fixture
def client_model(people):
    return register_deployed_version(**people, name=MODEL)


def method_labels() -> set[str]:
    return {sample.labels["method"] for metric in REGISTRY.collect()
            if metric.name == "pulselytics_api_requests"
            for sample in metric.samples if "method" in sample.labels}


def test_ready_without_a_key_names_no_model(client_model, anonymous_client):
    response = anonymous_client.get("/api/v1/ready")

    assert response.json() == {"status": "ready"}
    assert "globex" not in response.content.decode()


def test_ready_without_a_key_names_no_model_nor_reason_when_one_fails(client_model,
                                                                      anonymous_client):
    artifact_tamper(client_model)

    response = anonymous_client.get("/api/v1/ready")

    assert (response.status_code, response.json()) == (503, {"status": "not_ready"})


def test_random_method_strings_add_at_most_one_metric_label(db):
    client, rng = Client(), random.Random(7)
    before = method_labels()

    for _ in range(20):
        method = "".join(rng.choices(string.ascii_uppercase, k=8))
        client.generic(method, "/api/v1/health")

    assert len(method_labels() - before) <= 1
    assert method_labels() - before <= {"other"}
