"""`register notices status|run` as an operator runs them: what waits, as JSON, then one pass that sends it
through the SMTP server of REGISTER_SMTP_HOST (a real one in this process)."""

from __future__ import annotations

import json
import re
import stat
from email import policy
from email.parser import BytesParser

from fastapi.testclient import TestClient

from register.cli import main
from register.main import create_app
from register.services.mail import MailFolder, mailer_of
from register.storage.migrate import upgrade
from tests.conftest import make_settings
from tests.factories import make_person
from tests.notices.test_notices import smtp  # noqa: F401 - fixture
from tests.test_retention_cli import url  # noqa: F401 - fixture


def cli(capsys, *args: str) -> tuple[int, dict]:  # noqa: ANN001
    code = main(["notices", *args])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads("\n".join(out)) if out else {}


def test_status_then_one_pass_sends_the_confirmation(url, tmp_path, smtp, capsys, monkeypatch):  # noqa: F811
    upgrade(url)
    for name, value in {"DATABASE_URL": url, "DATA_DIR": str(tmp_path), "SMTP_HOST": "127.0.0.1",
                        "SMTP_PORT": str(smtp.port), "SMTP_FROM": "register@example.org",
                        "PUBLIC_URL": "https://register.example"}.items():
        monkeypatch.setenv(f"REGISTER_{name}", value)
    app = create_app(make_settings(url, tmp_path))  # the key files of the data dir, as the command reads them
    with TestClient(app) as client:
        person = make_person(client, tmp_path)
        r = client.put("/v1/me/notifications", json={"email": "cli@example.org"}, headers=person.headers)
        assert r.status_code == 200, r.text
    app.state.register.engine.dispose()

    assert cli(capsys, "status") == (0, {"waiting": 1, "due": 1, "failed_at_least_once": 0})
    assert cli(capsys, "run", "--once") == (0, {"queued": 0, "sent": 1, "kept_for_retry": 0})
    [mail] = smtp.inbox.to("cli@example.org")
    assert mail["From"] == "register@example.org"
    assert "https://register.example/app/notifications/confirm?token=" in mail.get_content()
    assert cli(capsys, "status")[1]["waiting"] == 0


def test_in_development_without_smtp_the_mail_lands_in_a_folder(url, tmp_path, capsys, monkeypatch):  # noqa: F811
    """`make run` has no mail server: a newcomer who asks for notices finds the confirmation mail, with its
    link, as a file in the data dir's mail/ folder, readable only by the register's user."""
    upgrade(url)
    for name, value in {"DATABASE_URL": url, "DATA_DIR": str(tmp_path), "ENV": "dev",
                        "PUBLIC_URL": "http://127.0.0.1:8000"}.items():
        monkeypatch.setenv(f"REGISTER_{name}", value)
    monkeypatch.delenv("REGISTER_SMTP_HOST", raising=False)
    app = create_app(make_settings(url, tmp_path))
    with TestClient(app) as client:
        person = make_person(client, tmp_path)
        assert client.put("/v1/me/notifications", json={"email": "dev@example.org"},
                          headers=person.headers).status_code == 200
    app.state.register.engine.dispose()

    assert cli(capsys, "run", "--once") == (0, {"queued": 0, "sent": 1, "kept_for_retry": 0})
    [path] = (tmp_path / "mail").glob("*.eml")
    mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert mail["To"] == "dev@example.org"
    assert "http://127.0.0.1:8000/app/notifications/confirm?token=" in mail.get_content()
    link = re.search(rb"http://\S*confirm\?token=\S*", path.read_bytes())  # one line, as a developer greps it
    assert link and link.group().decode() in mail.get_content()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "mail").stat().st_mode) == 0o700


def test_in_production_without_smtp_nothing_is_written_and_notices_wait(tmp_path):
    """Outside development no folder stands in for the mail server: notices wait, kept, until one is set."""
    from register.config import Environment, Settings

    prod = Settings.model_construct(**{**make_settings("sqlite://", tmp_path).model_dump(), "env": Environment.prod})
    assert not mailer_of(prod).configured
    assert mailer_of(prod.model_copy(update={"smtp_host": "mail.example"})).configured
    assert isinstance(mailer_of(make_settings("sqlite://", tmp_path)), MailFolder)
