"""Champion / challenger / shadow assignment (pure: no database access).

A request's routing key (default: its request id) is hashed with the identity of the live
test into a bucket in [0, 100). Challengers own consecutive ranges of buckets as wide as
their traffic percentage; the champion owns the rest. The same key therefore always lands
on the same arm while the test lasts, and a new test (other challengers, other shares)
reshuffles the keys rather than inheriting an old split.

A request that names its version (docs/api.md#version-pinning) is not routed: it is
answered by that version and logged with the arm PINNED_ARM, which no A/B test, SLO,
drift check, live performance, live fairness audit or anomaly rate counts.
"""

import hashlib
from dataclasses import dataclass

PINNED_ARM = "pinned"


@dataclass(frozen=True)
class Challenger:
    version_id: int
    traffic_percentage: int


def routing_key_sha256(routing_key: str) -> str:
    return hashlib.sha256(routing_key.encode("utf-8")).hexdigest()


def bucket(*, routing_key: str, test_identity: str) -> float:
    """A uniform position in [0, 100) with 0.01 resolution, stable for key and test."""
    digest = hashlib.sha256(f"{test_identity}\x00{routing_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def test_identity(model_name: str, challengers: list[Challenger]) -> str:
    return model_name + "|" + ",".join(
        f"{c.version_id}:{c.traffic_percentage}"
        for c in sorted(challengers, key=lambda c: c.version_id)
    )


def challenger_for(*, routing_key: str, model_name: str,
                   challengers: list[Challenger]) -> int | None:
    """The challenger version id this key is routed to, or None for the champion."""
    if not challengers:
        return None
    position = bucket(routing_key=routing_key, test_identity=test_identity(model_name, challengers))
    start = 0
    for challenger in sorted(challengers, key=lambda c: c.version_id):
        if start <= position < start + challenger.traffic_percentage:
            return challenger.version_id
        start += challenger.traffic_percentage
    return None
