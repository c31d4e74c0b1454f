"""Chooses the suite's database before Django loads its settings (`-p tests.database_plugin`
in pyproject.toml's addopts).

tests.servers.test_database_url() starts a throwaway PostgreSQL when its binaries exist and
puts its URL in os.environ["TEST_DATABASE_URL"], which pulselytics/settings/test.py reads
and child processes inherit; without the binaries the suite runs on SQLite (under
REQUIRE_SERVICES=1 it fails instead). tryfirst: before pytest-django imports the settings.
"""

import pytest

from tests import servers


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    servers.test_database_url()
