"""Helpers for driving the person's pages as a browser would: a cookie jar per person, the forms' tokens
read from the HTML, and sign-in through the development sign-in form."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import Person

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclass
class Browser:
    """One person's browser: its own cookies, signed in to the pages."""

    client: TestClient
    person: Person
    csrf: str

    def get(self, url: str, **kw):
        return self.client.get(url, follow_redirects=False, **kw)

    def post(self, url: str, data: dict[str, str] | None = None, *, token: bool = True, **kw):
        form = {"csrf": self.csrf, **(data or {})} if token else dict(data or {})
        return self.client.post(url, data=form, follow_redirects=False, **kw)


def new_client(app: FastAPI, **headers: str) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, headers=headers or None)


def sign_in(app: FastAPI, person: Person, *, client: TestClient | None = None, **headers: str) -> Browser:
    client = client or new_client(app, **headers)
    page = client.get("/app/sign-in")
    assert page.status_code == 200, page.text
    r = client.post("/app/sign-in", data={"csrf": csrf_of(page.text), "person": "typed", "country": person.country,
                                          "national_id": person.nid, "next": "/app/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/app/"
    overview = client.get("/app/", follow_redirects=False)
    assert overview.status_code == 200, overview.text
    return Browser(client=client, person=person, csrf=csrf_of(overview.text))
