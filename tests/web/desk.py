"""Helpers for driving the regulator's desk as a browser would: a staff member's cookie jar, signed in
through the development stand-in, and the forms' tokens read from the HTML."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import Inst
from tests.web.pages import csrf_of, new_client


@dataclass
class Desk:
    """One staff member's browser, signed in to the desk for `regulator`."""

    client: TestClient
    regulator: Inst
    csrf: str

    def get(self, url: str, **kw):
        return self.client.get(url, follow_redirects=False, **kw)

    def post(self, url: str, data: dict[str, str] | None = None, *, token: bool = True, **kw):
        form = {"csrf": self.csrf, **(data or {})} if token else dict(data or {})
        return self.client.post(url, data=form, follow_redirects=False, **kw)


def try_staff_sign_in(client: TestClient, institution_id: str):
    """The development stand-in's form, posted for `institution_id` (whatever its role)."""
    page = client.get("/regulator/sign-in")
    assert page.status_code == 200, page.text
    return client.post("/regulator/sign-in", data={"csrf": csrf_of(page.text), "institution": institution_id,
                                                   "next": "/regulator/"}, follow_redirects=False)


def staff_sign_in(app: FastAPI, regulator: Inst, *, client: TestClient | None = None, **headers: str) -> Desk:
    client = client or new_client(app, **headers)
    r = try_staff_sign_in(client, regulator.id)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/regulator/"
    overview = client.get("/regulator/", follow_redirects=False)
    assert overview.status_code == 200, overview.text
    return Desk(client=client, regulator=regulator, csrf=csrf_of(overview.text))
