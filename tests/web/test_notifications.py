"""The notices page: the same service as /v1/me/notifications, through a signed-in browser's forms."""

from __future__ import annotations

from tests.factories import make_person
from tests.web.pages import sign_in


class TestNoticesPage:
    def test_saving_turns_notices_on_in_the_pages_language_and_off_again(self, app, client, data_dir):
        person = make_person(client, data_dir, "SE")
        browser = sign_in(app, person)
        page = browser.get("/app/notifications?lang=fi")
        assert page.status_code == 200 and "Ilmoitukset sähköpostilla" in page.text
        r = browser.post("/app/notifications", {"email": "sivu@example.org", "event-lookup": "1",
                                                "event-dispute": "1", "digest": "daily"})
        assert r.status_code == 303 and r.headers["location"] == "/app/notifications?saved=1"
        state = client.get("/v1/me/notifications", headers=person.headers).json()
        assert state["email"] == "sivu@example.org" and state["events"] == ["lookup", "dispute"]
        assert state["digest"] == "daily" and state["language"] == "fi" and state["confirmed"] is False
        shown = browser.get("/app/notifications")
        assert "sivu@example.org" in shown.text and 'id="event-dispute" value="1" checked' in shown.text
        assert browser.post("/app/notifications/off").status_code == 303
        assert client.get("/v1/me/notifications", headers=person.headers).json()["email"] is None

    def test_what_is_not_an_address_is_shown_again_with_a_message(self, app, client, data_dir):
        person = make_person(client, data_dir)
        browser = sign_in(app, person)
        r = browser.post("/app/notifications?lang=en", {"email": "not an address", "event-lookup": "1"})
        assert r.status_code == 422 and 'role="alert"' in r.text and 'value="not an address"' in r.text
        assert client.get("/v1/me/notifications", headers=person.headers).json()["email"] is None

    def test_a_form_without_the_sessions_token_is_refused(self, app, client, data_dir):
        person = make_person(client, data_dir)
        browser = sign_in(app, person)
        r = browser.post("/app/notifications", {"email": "x@example.org"}, token=False)
        assert r.status_code == 403
        assert client.get("/v1/me/notifications", headers=person.headers).json()["email"] is None
