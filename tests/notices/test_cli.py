"""`register notices status|run` as an operator runs them: what waits, as JSON, then one pass that sends it
through the SMTP server of REGISTER_SMTP_HOST (a real one in this process)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from register.cli import main
from register.main import create_app
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
