"""The per-key window throttles (predictions.api.auth.WindowThrottle): a bounded history,
and never more than the rate in any window."""

from types import SimpleNamespace

import pytest
from django.core.cache import cache

from predictions.api.auth import APIKeyRateThrottle, InstanceRateThrottle, PredictInstanceThrottle
from predictions.models import ClientAPIKey

RATE = 10  # per minute


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(APIKeyRateThrottle, "THROTTLE_RATES", {"api_key": f"{RATE}/min"})
    monkeypatch.setattr(InstanceRateThrottle, "THROTTLE_RATES",
                        {"api_key_instances": f"{RATE}/min"})
    cache.clear()
    clock = Clock()
    yield clock
    cache.clear()


def request(instances: int = 1):
    return SimpleNamespace(auth=ClientAPIKey(prefix="window"), data=[{}] * instances)


def allowed(throttle_class, clock, *, instances: int = 1) -> bool:
    throttle = throttle_class()
    throttle.timer = clock
    return throttle.allow_request(request(instances), view=None)


def test_the_history_holds_a_bucket_per_second_whatever_the_rate(clock, monkeypatch):
    monkeypatch.setattr(APIKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1000000/min"})
    for _ in range(5000):  # 5,000 requests over 100 seconds
        clock.now += 0.02
        assert allowed(APIKeyRateThrottle, clock)

    history = cache.get(APIKeyRateThrottle.cache_format % {"scope": "api_key",
                                                             "ident": "window"})

    assert len(history) <= APIKeyRateThrottle.WINDOW_BUCKETS + 1
    assert sum(units for _, units in history) >= 2999  # the last minute's requests


def test_never_more_than_the_rate_in_any_window_of_the_duration(clock):
    accepted = []
    for _ in range(600):  # one request every 0.7 s for 7 minutes
        clock.now += 0.7
        if allowed(APIKeyRateThrottle, clock):
            accepted.append(clock.now)

    for i, start in enumerate(accepted):
        within = [at for at in accepted[i:] if at < start + 60]
        assert len(within) <= RATE
    assert len(accepted) >= 6 * RATE  # and the budget comes back every minute


def test_a_refused_request_is_told_when_enough_has_aged_out(clock):
    assert allowed(PredictInstanceThrottle, clock, instances=8)
    clock.now += 30
    throttle = PredictInstanceThrottle()
    throttle.timer = clock

    assert not throttle.allow_request(request(3), view=None)
    assert 30 <= throttle.wait() <= 31  # the 8 instances' bucket leaves the window
