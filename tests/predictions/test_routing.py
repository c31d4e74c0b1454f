"""Sticky routing (pure)."""

import uuid

from predictions.routing import Challenger, challenger_for


def arms(keys, challengers, model_name="m"):
    return [challenger_for(routing_key=k, model_name=model_name, challengers=challengers)
            for k in keys]


def test_same_key_always_gets_the_same_arm():
    challengers = [Challenger(version_id=7, traffic_percentage=30)]
    keys = [str(uuid.uuid4()) for _ in range(200)]

    assert arms(keys, challengers) == arms(keys, challengers)


def test_split_over_10000_keys_is_within_two_points_of_the_traffic():
    challengers = [Challenger(version_id=7, traffic_percentage=30),
                   Challenger(version_id=9, traffic_percentage=15)]
    keys = [f"user-{n}" for n in range(10_000)]

    routed = arms(keys, challengers)

    assert abs(routed.count(7) / 100 - 30) <= 2
    assert abs(routed.count(9) / 100 - 15) <= 2
    assert abs(routed.count(None) / 100 - 55) <= 2


def test_no_challengers_means_champion():
    assert challenger_for(routing_key="k", model_name="m", challengers=[]) is None


def test_a_new_test_reshuffles_keys():
    keys = [f"user-{n}" for n in range(2_000)]
    before = arms(keys, [Challenger(version_id=7, traffic_percentage=50)])
    after = arms(keys, [Challenger(version_id=8, traffic_percentage=50)])

    moved = sum((b is None) != (a is None) for b, a in zip(before, after, strict=True))
    assert moved > 500  # about half of the keys change sides
