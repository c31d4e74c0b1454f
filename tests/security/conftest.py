"""The API clients and the per-test serving cache reset of tests/predictions/conftest.py,
without its module-wide demo models: the security tests build only what each needs; and
everything logged during a test, as the attacks on disclosure read it."""

import logging

import pytest

from tests.logs import JsonLines
from tests.predictions.conftest import (  # noqa: F401 - fixtures, found by name
    _fresh_model_cache,
    anonymous_client,
    api_client,
    api_key,
)


@pytest.fixture
def log_lines(caplog):
    """(pytest's captured text, the production JSON lines) of everything logged."""
    caplog.set_level(logging.DEBUG)
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: (caplog.text, handler.lines)
    root.removeHandler(handler)
