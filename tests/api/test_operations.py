from __future__ import annotations

from fastapi.testclient import TestClient

from register.crypto.keys import StaticKeys
from register.main import create_app
from tests.conftest import make_settings


class TestHealth:
    def test_healthy(self, client):
        r = client.get("/healthz")
        assert r.status_code == 200 and r.json()["database"] == "ok"

    def test_database_down_is_503(self, tmp_path):
        # A PostgreSQL URL on a port where nothing listens: the database does not answer.
        settings = make_settings("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path)
        app = create_app(settings, keys=StaticKeys.generate())
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["database"] == "unreachable"


class TestMetrics:
    def test_requests_by_route_and_status_and_latency(self, client):
        client.get("/healthz")
        client.get("/v1/obligations/abc")  # 401
        text = client.get("/metrics").text
        assert 'register_http_requests_total{method="GET",route="/healthz",status="200"}' in text
        assert 'route="/v1/obligations/{external_ref}",status="401"' in text
        assert "register_http_request_duration_seconds_bucket" in text


class TestRequestId:
    def test_given_id_is_echoed_and_in_problems(self, client):
        r = client.get("/v1/obligations", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123" and r.json()["request_id"] == "abc-123"

    def test_unsafe_id_is_replaced(self, client):
        r = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
        assert r.headers["x-request-id"] != "bad id\nwith newline"
