"""The idle warning in a real browser, on both databases: two minutes before the 15-minute idle session
ends the page warns and offers to stay signed in; staying restarts the server's idle clock, and a page
left alone ends on the sign-in page saying why.

Nobody waits 13 minutes: the page's timers run on Playwright's clock, and the server's idle time is the
session row's last-seen time, set back by as much as the page's clock moved on. The server keeps its
default timeout (`session_idle_seconds` cannot go under 60 s, and a real wait of even that is too long)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import Engine

from register.storage.models import WebSession
from tests.browser.data import Register, story
from tests.browser.pages import focused, invisible_focus, sign_in, t

IDLE, WARNING = timedelta(minutes=15), timedelta(minutes=2)  # the server's defaults


@pytest.fixture(scope="module")
def database(served: Register) -> Iterator[Engine]:
    engine = create_engine(served.database_url)
    yield engine
    engine.dispose()


def session_hash(context: BrowserContext) -> str:
    (cookie,) = [c for c in context.cookies() if c["name"] == "register_session"]
    return hashlib.sha256(cookie["value"].encode()).hexdigest()


def set_idle(database: Engine, token_hash: str, idle: timedelta) -> None:
    """The server's view of the session: last used `idle` ago."""
    with database.begin() as conn:
        done = conn.execute(update(WebSession).where(WebSession.token_hash == token_hash)
                            .values(last_seen_at=datetime.now(UTC) - idle))
        assert done.rowcount == 1


def last_seen(database: Engine, token_hash: str) -> datetime | None:
    with database.connect() as conn:
        return conn.execute(select(WebSession.last_seen_at).where(WebSession.token_hash == token_hash)).scalar()


class TestIdleWarning:
    def test_warned_two_minutes_before_and_staying_keeps_the_session(self, page: Page, context, served, database):
        s = story(served)
        sign_in(page, s.person, lang="en")
        token = session_hash(context)
        page.clock.install()
        page.goto("/app/debts")
        alert = page.get_by_role("alertdialog")
        expect(alert).to_be_hidden()

        page.clock.run_for(int((IDLE - WARNING).total_seconds() * 1000) - 1000)
        expect(alert).to_be_hidden()
        page.clock.run_for(1000)  # 13 minutes without a request: two minutes left
        expect(alert).to_be_visible()
        expect(alert).to_contain_text("You will be signed out in 2 minutes")
        stay = alert.get_by_role("button", name=t("en", "Stay signed in"))
        expect(stay).to_be_focused()  # the warning takes the focus, so a keyboard or screen reader user hears it
        assert not invisible_focus([focused(page)])
        serious = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
        assert not serious, f"the warning: {serious}"

        set_idle(database, token, IDLE - WARNING)  # the server agrees: 13 minutes idle
        page.keyboard.press("Enter")
        expect(alert).to_be_hidden()
        seen = last_seen(database, token)
        assert seen and datetime.now(UTC) - seen < timedelta(minutes=1), "staying restarted the server's clock"
        expect(page).to_have_url(f"{served.url}/app/debts")  # no reload: the person stays where they were

        page.clock.run_for(int((IDLE - WARNING).total_seconds() * 1000))  # and the warning comes again later
        expect(alert).to_be_visible()

    def test_a_page_left_alone_ends_on_the_sign_in_page_saying_why(self, page: Page, context, served, database):
        s = story(served)
        sign_in(page, s.person, lang="en")
        token = session_hash(context)
        page.clock.install()
        page.goto("/app/")
        page.clock.run_for(int((IDLE - WARNING).total_seconds() * 1000))
        expect(page.get_by_role("alertdialog")).to_be_visible()

        set_idle(database, token, IDLE + timedelta(seconds=5))
        with page.expect_navigation():
            page.clock.run_for(int((WARNING + timedelta(seconds=5)).total_seconds() * 1000))  # the page reloads
        expect(page).to_have_url(f"{served.url}/app/sign-in?next=/app/&expired=1")
        expect(page.get_by_role("status")).to_contain_text(t(
            "en", "You were signed out after a while without activity, to keep your data safe. Please sign in again."))
        assert last_seen(database, token) is None, "the idle session is gone from the server"
