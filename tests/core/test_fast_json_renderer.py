"""core.api.FastJSONRenderer writes the values DRF's JSONRenderer writes."""

import datetime
import decimal
import json
import uuid

from django.db import models
from django.utils.functional import lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from core.api import FastJSONRenderer


class Colour(models.TextChoices):
    RED = "red"


class Level(models.IntegerChoices):
    HIGH = 3


def test_the_fast_renderer_writes_the_values_drfs_json_renderer_writes():
    data = {
        "text": 'é€😀 "quoted" back\\slash \u2028 tab\t',
        "numbers": [0, -1, 2**63 - 1, 1.5, 1e-07, 1e16, -0.0, 0.1],
        "choice": Colour.RED, "level": Level.HIGH, "flag": True, "none": None,
        "aware": datetime.datetime(2026, 12, 7, 14, 5, 3, 120000, tzinfo=datetime.UTC),
        "naive": datetime.datetime(2026, 12, 7, 14, 5), "date": datetime.date(2026, 12, 7),
        "time": datetime.time(14, 5, 3), "duration": datetime.timedelta(hours=1, seconds=2),
        "decimal": decimal.Decimal("1.25"), "id": uuid.UUID(int=7),
        "lazy": lazy(lambda: "later", str)(), 3: "an integer key",
        "serializer": ReturnDict({"a": ReturnList([1, 2], serializer=None)}, serializer=None),
        "tuple": (1, "two"), "set": frozenset({"only"}),
    }

    fast, drf = FastJSONRenderer().render(data), JSONRenderer().render(data)

    assert json.loads(fast) == json.loads(drf)
    assert fast.replace(b"1e-7", b"1e-07") == drf  # the same text but for float spelling


def test_the_fast_renderer_renders_nothing_as_an_empty_body():
    assert FastJSONRenderer().render(None) == b""
