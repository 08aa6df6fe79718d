"""Nothing needs the internet: the API's documentation (/docs, /redoc) loads every script and style from the
register itself, with a Content-Security-Policy that names no other host; `/` is a landing page and
`/favicon.ico` an icon. (tests/browser/test_docs.py renders both viewers in Chromium.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from register.web.render import SECURITY_HEADERS

ROOT = Path(__file__).resolve().parents[2]
DOCS_PAGES = ("/docs", "/redoc")


class _References(HTMLParser):
    """Every address a page makes the browser load or offers as a link: src, href, and ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if tag == "a" and name == "href":
                self.links.append(value)
            elif name in ("src", "href", "spec-url", "data-openapi"):
                self.loaded.append(value)


def references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


def on_host(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and url.startswith("/")


class TestDocumentationIsServedByTheRegister:
    @pytest.mark.parametrize("page", DOCS_PAGES)
    def test_the_page_and_every_asset_it_loads_come_from_this_host(self, client: TestClient, page: str):
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        loaded = references(r.text).loaded
        assert any(u.endswith(".js") for u in loaded), loaded
        assert [u for u in loaded if not on_host(u)] == [], "an asset from another host"
        assert not re.search(r"https?://", r.text), "the page names another host"
        for url in loaded:
            asset = client.get(url)
            assert asset.status_code == 200, url
            if url.endswith(".js"):
                assert asset.headers["content-type"].startswith("text/javascript"), url
            elif url.endswith(".css"):
                assert asset.headers["content-type"].startswith("text/css"), url

    @pytest.mark.parametrize("page", DOCS_PAGES)
    def test_the_content_security_policy_allows_no_other_host(self, client: TestClient, page: str):
        r = client.get(page)
        policy = r.headers["content-security-policy"]
        sources = {s for directive in policy.split(";") for s in directive.split()[1:]}
        assert sources <= {"'self'", "'none'", "data:", "blob:", "'unsafe-inline'"}, policy
        assert "script-src 'self';" in policy  # no inline or foreign script, on either page
        for name in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
            assert r.headers[name] == SECURITY_HEADERS[name]

    def test_swagger_ui_runs_without_an_inline_script_and_without_the_online_validator(self, client: TestClient):
        html = client.get("/docs").text
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "an inline script"
        init = client.get("/docs/assets/swagger-init.js").text
        assert "validatorUrl: null" in init  # the badge would send the document to another site
        assert "SwaggerUIBundle(" in init

    def test_the_assets_are_the_pinned_packages(self, client: TestClient):
        """The bytes served are fastapi-offline's, at the version requirements.lock pins."""
        pin = re.search(r"^fastapi-offline==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
        assert pin and metadata.version("fastapi-offline") == pin.group(1)
        vendor = resources.files("fastapi_offline") / "static"
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            assert client.get(f"/docs/assets/{name}").content == (vendor / name).read_bytes(), name

    @pytest.mark.parametrize("name", ["nope.js", "..%2F..%2Fconfig.py", "favicon.png", "__init__.py"])
    def test_only_the_named_assets_are_served(self, client: TestClient, name: str):
        assert client.get(f"/docs/assets/{name}").status_code == 404

    @pytest.mark.parametrize("page", [*DOCS_PAGES, "/", "/favicon.ico"])
    def test_head_answers_as_get_does(self, client: TestClient, page: str):
        assert client.head(page).status_code == 200


class TestLandingPage:
    def test_it_points_a_newcomer_to_the_pages_and_the_documentation(self, client: TestClient):
        r = client.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, name
        links = references(r.text).links
        assert {"/app/", "/docs", "/redoc", "/openapi.json"} <= set(links)
        assert "SPEC.md" in r.text

    def test_every_link_and_asset_answers_from_this_host(self, client: TestClient):
        refs = references(client.get("/").text)
        for url in refs.links + refs.loaded:
            assert on_host(url), url
            r = client.get(url, follow_redirects=False)
            assert r.status_code in (200, 303), (url, r.status_code)  # /app/ sends a stranger to sign in


class TestFavicon:
    def test_an_icon_is_served(self, client: TestClient):
        r = client.get("/favicon.ico")
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/x-icon"
        assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
        assert r.headers["x-content-type-options"] == "nosniff"
