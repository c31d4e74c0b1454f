"""The throwaway servers the suite runs on (tests/servers.py, tests/conftest.py)."""

import redis
from django.db import connection

from tests import servers


def test_redis_fixture_serves_a_working_server(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping() is True
        client.set("pulselytics:probe", "ok")
        assert client.get("pulselytics:probe") == b"ok"
    finally:
        client.close()


def test_suite_database_is_postgresql_when_its_binaries_exist(db):
    # Under REQUIRE_SERVICES=1 a missing PostgreSQL already stops the settings from loading.
    expected = "postgresql" if servers.postgres_bindir() is not None else "sqlite"
    assert connection.vendor == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
