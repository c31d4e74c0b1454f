"""The API clients and the per-test serving cache reset of tests/predictions/conftest.py,
without its module-wide demo models: the security tests build only what each needs."""

from tests.predictions.conftest import (  # noqa: F401 - fixtures, found by name
    _fresh_model_cache,
    anonymous_client,
    api_client,
    api_key,
)
