"""Request bodies and answer compression (docs/api.md#request-bodies): a chunked or gzipped
body is answered as the plain one; a gzip bomb is refused (413) before it is all
decompressed; another Content-Encoding is 415; answers are gzipped for a client that asks.
Over real HTTP against gunicorn, as served, and Django's LiveServer (no chunked bodies)."""

import contextlib
import gzip
import http.client
import json
import os
import subprocess
import sys
import time
import zlib

import pytest
from django.conf import settings

from core import http_encoding
from core.errors import PayloadTooLargeError
from predictions import services as serving
from predictions.models import PredictionLog
from tests.factories import register_deployed_version
from tests.servers import app_server_env, free_port, process_group_stop

MODEL = "engagement-likes"
PREDICT = f"/api/v1/models/{MODEL}/predict"
BODY = {"instances": [{"followers": 12.5, "hashtags": 4}, {"followers": 8.0, "hashtags": 1}],
        "routing_key": "lead-8812"}
START_TIMEOUT = 60


@pytest.fixture
def champion(people):
    return register_deployed_version(**people, slope=1.0)


def values(content: bytes) -> list:
    return [p["value"] for p in json.loads(content)["predictions"]]


def bomb(expanded: int) -> bytes:
    """A gzip body of `expanded` zero bytes (about a thousandth of that compressed)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join([*(compressor.compress(block) for _ in range(expanded // len(block))),
                     compressor.flush()])


# Pure: the capped decompression.

def test_gzip_decompression_gives_back_every_member():
    data = gzip.compress(b'{"a": ') + gzip.compress(b"1}")

    assert http_encoding.gzip_decompress_capped(data, limit=100) == b'{"a": 1}'


def test_a_gzip_bomb_is_refused_having_produced_at_most_the_limit(monkeypatch):
    produced = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(http_encoding.zlib, "decompressobj", Counting)

    with pytest.raises(PayloadTooLargeError):
        http_encoding.gzip_decompress_capped(bomb(64 * 1024 * 1024), limit=1024 * 1024)
    assert sum(produced) == 1024 * 1024 + 1


# Through Django's test client.

def test_gzipped_body_is_answered_as_the_plain_one(champion, api_client):
    plain = api_client.post_json(PREDICT, BODY)

    zipped = api_client.post(PREDICT, data=gzip.compress(json.dumps(BODY).encode()),
                             content_type="application/json", HTTP_CONTENT_ENCODING="gzip")

    assert plain.status_code == zipped.status_code == 200
    assert values(zipped.content) == values(plain.content)
    assert PredictionLog.objects.count() == 4


def test_gzip_bomb_is_413(champion, api_client, settings):
    settings.API_MAX_BODY_BYTES = 1024 * 1024

    response = api_client.post(PREDICT, data=bomb(16 * 1024 * 1024),
                               content_type="application/json", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["details"] == {"limit": 1024 * 1024}
    assert not PredictionLog.objects.exists()


def test_corrupt_gzip_is_malformed(champion, api_client):
    response = api_client.post(PREDICT, data=gzip.compress(b'{"instances": []}')[:-9],
                               content_type="application/json", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("coding", ["br", "deflate", "gzip, gzip", "compress"])
def test_another_content_encoding_is_415(champion, api_client, coding):
    response = api_client.post(PREDICT, data=json.dumps(BODY), content_type="application/json",
                               HTTP_CONTENT_ENCODING=coding)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_content_encoding"
    assert not PredictionLog.objects.exists()


def test_identity_content_encoding_is_a_plain_body(champion, api_client):
    response = api_client.post(PREDICT, data=json.dumps(BODY), content_type="application/json",
                               HTTP_CONTENT_ENCODING="identity")

    assert response.status_code == 200


def test_answer_is_gzipped_for_a_client_that_asks(champion, api_client):
    plain = api_client.post_json(PREDICT, BODY)
    zipped = api_client.post_json(PREDICT, BODY, HTTP_ACCEPT_ENCODING="gzip, deflate")

    assert zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"] and "Accept-Encoding" in plain["Vary"]
    assert not plain.has_header("Content-Encoding")
    assert values(gzip.decompress(zipped.content)) == values(plain.content)


def test_metrics_are_never_gzipped(client):
    response = client.get("/metrics", HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200 and not response.has_header("Content-Encoding")


# Over real HTTP.

def _send(port: int, path: str, body, headers: dict, *, encode_chunked: bool = False
          ) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body, headers, encode_chunked=encode_chunked)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _pieces(data: bytes, size: int = 7):
    return (data[i:i + size] for i in range(0, len(data), size))


@pytest.fixture
def gunicorn(people, artifact_dir, tmp_path):
    """A real gunicorn (one sync worker) serving the test's committed models."""
    register_deployed_version(**people, slope=1.0)
    port, log = free_port(), tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"),
             "pulselytics.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--no-control-socket"],
            cwd=settings.BASE_DIR, start_new_session=True, stdout=log_file,
            stderr=subprocess.STDOUT,
            env=app_server_env(artifact_dir, API_MAX_BODY_BYTES=str(1024 * 1024)))
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, f"gunicorn exited\n{log.read_text()}"
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        yield port
    finally:
        process_group_stop(server)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")
def test_chunked_and_gzipped_bodies_over_http_are_answered_as_plain_ones(gunicorn):
    _, key = serving.api_key_create(name="encodings")
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    raw = json.dumps(BODY).encode()
    zipped = gzip.compress(raw)

    plain = _send(gunicorn, PREDICT, raw, headers)
    chunked = _send(gunicorn, PREDICT, _pieces(raw), headers, encode_chunked=True)
    gzipped = _send(gunicorn, PREDICT, zipped, {**headers, "Content-Encoding": "gzip"})
    both = _send(gunicorn, PREDICT, _pieces(zipped), {**headers, "Content-Encoding": "gzip"},
                 encode_chunked=True)
    compressed = _send(gunicorn, PREDICT, raw, {**headers, "Accept-Encoding": "gzip"})
    too_large = _send(gunicorn, PREDICT, _pieces(b" " * (1024 * 1024 + 1), 64 * 1024), headers,
                      encode_chunked=True)
    exploding = _send(gunicorn, PREDICT, bomb(8 * 1024 * 1024),
                      {**headers, "Content-Encoding": "gzip"})

    assert [plain[0], chunked[0], gzipped[0], both[0], compressed[0]] == [200] * 5
    for answer in (chunked, gzipped, both):
        assert values(answer[2]) == values(plain[2])
    assert compressed[1]["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed[1]["Vary"]
    assert values(gzip.decompress(compressed[2])) == values(plain[2])
    assert too_large[0] == exploding[0] == 413
    assert json.loads(exploding[2])["error"]["code"] == "payload_too_large"
    assert json.loads(too_large[2])["error"]["code"] == "payload_too_large"
    assert PredictionLog.objects.count() == 5 * len(BODY["instances"])


def test_a_chunked_body_to_a_server_that_cannot_read_it_is_411(champion, api_client):
    # As Django's runserver and test server hand it over: chunked, no Content-Length, and
    # no `wsgi.input_terminated` (gunicorn's promise that it undid the chunking). Over a
    # socket the server's early answer races the client's remaining chunks, so the WSGI
    # request is built here rather than sent.
    response = api_client.post_json(PREDICT, BODY, CONTENT_LENGTH="",
                                    HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert not PredictionLog.objects.exists()
