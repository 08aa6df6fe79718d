"""Sending mail over SMTP (smtplib): the register's only way out to a person. Settings REGISTER_SMTP_*.

`SmtpMailer.send` raises `MailError` for anything that kept a message from being accepted (server down,
refused, timed out, TLS or AUTH failed); the caller keeps the notice and tries again later. The error's
text never carries the address or the message (they are personal data and must not be logged).
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from register.config import Environment, Settings, SmtpTls


class MailError(Exception):
    """The message was not accepted; try again later."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    language: str


class SmtpMailer:
    def __init__(self, *, host: str | None, port: int, sender: str, tls: SmtpTls = SmtpTls.none,
                 user: str | None = None, password: str | None = None, timeout: float = 20.0,
                 ca_file: Path | None = None) -> None:  # fmt: skip
        self.host, self.port, self.sender, self.tls = host, port, sender, tls
        self.user, self.password, self.timeout = user, password, timeout
        self.context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                   tls=settings.smtp_tls, user=settings.smtp_user, password=password)

    @property
    def configured(self) -> bool:
        return bool(self.host)

    def message(self, mail: Mail, *, cte: str | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "register.local")
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a notice
        msg.set_content(mail.text, cte=cte)
        msg["Content-Language"] = mail.language  # after set_content, which replaces the Content-* headers
        return msg

    def send(self, mails: list[Mail]) -> list[bool]:
        """Send these over one connection; for each, whether the server accepted it. Raises MailError if
        no connection could be made (then none was sent)."""
        if not self.host:
            raise MailError("REGISTER_SMTP_HOST is not set")
        try:
            if self.tls is SmtpTls.tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.context)
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.tls is SmtpTls.starttls:
                conn.starttls(context=self.context)
            if self.user and self.password is not None:
                conn.login(self.user, self.password)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}") from None
        results: list[bool] = []
        try:
            for mail in mails:
                try:
                    conn.send_message(self.message(mail))
                    results.append(True)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused):
                    results.append(False)  # this one refused (or a 4xx: busy); the others may go
                except (OSError, smtplib.SMTPException):
                    break  # the connection is gone: the rest are not sent
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
        return results + [False] * (len(mails) - len(results))


class MailFolder(SmtpMailer):
    """Development's mail server: each notice written as a file `<folder>/<time>-<n>.eml` instead of sent, so
    that a developer can read it and follow its confirmation link with no SMTP server. Only with
    REGISTER_ENV=dev and no REGISTER_SMTP_HOST (`mailer_of`); the files hold an address, so only the
    register's user may read them."""

    def __init__(self, folder: Path, *, sender: str) -> None:
        super().__init__(host=None, port=25, sender=sender)
        self.folder = folder

    @property
    def configured(self) -> bool:
        return True

    def send(self, mails: list[Mail]) -> list[bool]:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for n, mail in enumerate(mails):
                path = self.folder / f"{time.time_ns()}-{n}.eml"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(bytes(self.message(mail, cte="8bit")))  # the link on one line, as written
        except OSError as exc:
            raise MailError(f"mail folder {self.folder}: {type(exc).__name__}") from None
        return [True] * len(mails)


def mailer_of(settings: Settings) -> SmtpMailer:
    """The SMTP server of REGISTER_SMTP_*; in development without one, a folder beside the data
    (`<data dir>/mail`); in production without one, none: notices wait, kept, until it is set."""
    if settings.smtp_host or settings.env is not Environment.dev:
        return SmtpMailer.from_settings(settings)
    return MailFolder(Path(settings.data_dir) / "mail", sender=settings.smtp_from)
