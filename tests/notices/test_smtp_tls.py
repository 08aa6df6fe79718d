"""The SMTP sender's TLS and AUTH against a real server in this process: STARTTLS with a certificate the
sender checks, a password it sends only inside TLS, a wrong password or an untrusted certificate refused
(the message kept for later, never sent in the clear), and TLS from the first byte."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from register.config import SmtpTls
from register.services.mail import Mail, MailError, SmtpMailer
from tests.notices.test_notices import Inbox, free_port

MAIL = Mail(to="anna@example.org", subject="Test", text="Hello", language="en")


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN201
    ok = auth_data.login == b"register" and auth_data.password == b"s3cret"
    return AuthResult(success=ok)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return certificate(tmp_path)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class TestStartTls:
    @pytest.fixture
    def server(self, tls_files):  # noqa: ANN001, ANN201
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_context(*tls_files),
                                require_starttls=True, authenticator=authenticator, auth_required=True,
                                auth_require_tls=True)
        controller.start()
        yield inbox, port
        controller.stop()

    def test_sends_after_starttls_and_auth(self, server, tls_files):  # noqa: ANN001
        inbox, port = server
        mailer = SmtpMailer(host="127.0.0.1", port=port, sender="register@example.org", tls=SmtpTls.starttls,
                            user="register", password="s3cret", ca_file=tls_files[0])
        assert mailer.send([MAIL]) == [True]
        assert len(inbox.to("anna@example.org")) == 1

    def test_a_wrong_password_sends_nothing(self, server, tls_files):  # noqa: ANN001
        inbox, port = server
        mailer = SmtpMailer(host="127.0.0.1", port=port, sender="register@example.org", tls=SmtpTls.starttls,
                            user="register", password="wrong", ca_file=tls_files[0])
        with pytest.raises(MailError):
            mailer.send([MAIL])
        assert inbox.messages == []

    def test_a_certificate_it_does_not_trust_sends_nothing(self, server):  # noqa: ANN001
        inbox, port = server
        mailer = SmtpMailer(host="127.0.0.1", port=port, sender="register@example.org", tls=SmtpTls.starttls,
                            user="register", password="s3cret")  # the system's CAs: the test certificate is not one
        with pytest.raises(MailError):
            mailer.send([MAIL])
        assert inbox.messages == []

    def test_without_tls_the_server_refuses_and_nothing_is_sent(self, server):  # noqa: ANN001
        inbox, port = server
        mailer = SmtpMailer(host="127.0.0.1", port=port, sender="register@example.org", tls=SmtpTls.none)
        assert mailer.send([MAIL]) == [False]
        assert inbox.messages == []


def test_tls_from_the_first_byte(tls_files):  # noqa: ANN001
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=server_context(*tls_files))
    controller.start()
    try:
        mailer = SmtpMailer(host="127.0.0.1", port=port, sender="register@example.org", tls=SmtpTls.tls,
                            ca_file=tls_files[0])
        assert mailer.send([MAIL]) == [True]
        assert len(inbox.to("anna@example.org")) == 1
    finally:
        controller.stop()
