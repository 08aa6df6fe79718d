"""Signing in with a key pair through the SDK and the CLI (`register_client.keys`, RFC 7523
`private_key_jwt`), against the real app in-process, on both databases: the bank holds a private key and
never handles an access token; the client signs in, refreshes before expiry and once after a 401, and a
revoked key is refused with `InvalidClient`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from register_client import InvalidClient, InvalidRequest, RegisterClient, Unauthenticated
from register_client.keys import PrivateKeyJWT
from sqlalchemy import func, select

from register.storage.models import AccessEvent
from tests.clients.conftest import BASE_URL, AppTransport, async_client
from tests.clients.test_cli import assert_one_line_error, run  # noqa: F401 - the fixture
from tests.factories import Inst, new_ref, obligation_body

METADATA = "/.well-known/oauth-authorization-server"
TOKEN = "/v1/oauth/token"


def private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip


def register_key(client, admin_headers, inst: Inst, key) -> str:
    """The operator registers the public half; returns its kid."""
    r = client.post(f"/v1/institutions/{inst.id}/keys", json={"pem": public_pem(key)}, headers=admin_headers)
    assert r.status_code == 201, r.text
    return r.json()["kid"]


def sign_ins(client, inst: Inst, outcome: str = "ok") -> int:
    """How many access tokens the register issued to (or refused) `inst`: its oauth:token:issue events."""
    with client.app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(AccessEvent).where(
            AccessEvent.actor_id == inst.id, AccessEvent.action == "oauth:token:issue",
            AccessEvent.outcome == outcome)).scalar_one()  # fmt: skip


class Recording(httpx.BaseTransport):
    """The app, with every request's path and answer status written down."""

    def __init__(self, inner: AppTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self.lock:
            self.seen.append((request.url.path, response.status_code))
        return response


@pytest.fixture
def ed25519_key(client, admin_headers, lender) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    register_key(client, admin_headers, lender, key)
    return key


@pytest.fixture
def key_file(tmp_path, ed25519_key) -> str:
    path = tmp_path / "bank.key"
    path.write_bytes(private_pem(ed25519_key))
    return str(path)


@pytest.fixture
def recording(transport) -> Recording:
    return Recording(transport)


@pytest.fixture
def signed_in(recording, lender, key_file) -> Iterator[RegisterClient]:
    with RegisterClient(BASE_URL, auth=PrivateKeyJWT(institution_id=lender.id, key=key_file),
                        transport=recording) as c:
        yield c


def follow(auth: PrivateKeyJWT, clock) -> None:
    """The SDK's clock is the app's hand-moved one: the assertions' iat and exp, and the refresh times."""
    auth._clock = lambda: clock.now.timestamp()


class TestSignIn:
    def test_an_ed25519_key_file_signs_in_and_reports(self, signed_in, client, lender, recording):
        ref = new_ref()
        assert signed_in.put_obligation(ref, obligation_body()).external_ref == ref
        assert [o.external_ref for o in signed_in.list_obligations()] == [ref]  # the lender's own
        assert sign_ins(client, lender) == 1
        # The audience came from the register's metadata: nothing was configured but the key and the id.
        assert [path for path, _ in recording.seen][:2] == [METADATA, TOKEN]

    def test_a_p256_key_as_pem_text(self, client, admin_headers, lender, transport):
        key = ec.generate_private_key(ec.SECP256R1())
        register_key(client, admin_headers, lender, key)
        auth = PrivateKeyJWT(institution_id=lender.id, key=private_pem(key).decode())
        assert auth.algorithm == "ES256"
        with RegisterClient(BASE_URL, auth=auth, transport=transport) as sdk:
            assert sdk.list_consents() == []
        assert sign_ins(client, lender) == 1

    def test_a_named_kid_and_an_encrypted_key(self, client, admin_headers, lender, transport, tmp_path):
        key = ec.generate_private_key(ec.SECP256R1())
        kid = register_key(client, admin_headers, lender, key)
        path = tmp_path / "bank.key"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"s3cret")))  # fmt: skip
        auth = PrivateKeyJWT(institution_id=lender.id, key=path, kid=kid, password="s3cret")
        with RegisterClient(BASE_URL, auth=auth, transport=transport) as sdk:
            assert sdk.list_consents() == []

    def test_one_sign_in_serves_many_calls(self, signed_in, client, lender, recording):
        for _ in range(5):
            signed_in.list_consents()
        assert sign_ins(client, lender) == 1
        assert [path for path, _ in recording.seen].count(METADATA) == 1

    def test_threads_share_one_sign_in(self, signed_in, client, lender):
        errors: list[BaseException] = []

        def call() -> None:
            try:
                signed_in.list_consents()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and sign_ins(client, lender) == 1

    @pytest.mark.anyio
    async def test_the_async_client(self, app, client, lender, key_file):
        async with async_client(app, None, auth=PrivateKeyJWT(institution_id=lender.id, key=key_file)) as sdk:
            ref = new_ref()
            await sdk.put_obligation(ref, obligation_body())
            assert (await sdk.get_obligation(ref)).external_ref == ref
            await sdk.list_consents()
        assert sign_ins(client, lender) == 1

    def test_an_audience_given_by_hand_is_used_and_a_wrong_one_is_named(self, client, lender, key_file, recording):
        auth = PrivateKeyJWT(institution_id=lender.id, key=key_file, audience="https://register.example/token")
        with RegisterClient(BASE_URL, auth=auth, transport=recording) as sdk, pytest.raises(InvalidClient) as caught:
            sdk.list_consents()
        assert METADATA not in [path for path, _ in recording.seen]
        expected = client.app.state.register.settings.resolved_oauth_audience
        assert caught.value.status == 401 and f'aud must be "{expected}"' in caught.value.detail


class TestRefresh:
    def test_a_new_token_shortly_before_the_old_one_expires(self, signed_in, client, lender, clock, recording):
        follow(signed_in._auth, clock)
        signed_in.list_consents()
        clock.advance(seconds=275)  # the token (300 s) has 25 s left: less than the 30 s kept in hand
        signed_in.list_consents()
        assert sign_ins(client, lender) == 2
        assert all(status != 401 for _, status in recording.seen)

    def test_the_token_is_kept_while_it_has_time_left(self, signed_in, client, lender, clock):
        follow(signed_in._auth, clock)
        signed_in.list_consents()
        clock.advance(seconds=260)
        signed_in.list_consents()
        assert sign_ins(client, lender) == 1

    def test_after_expiry(self, signed_in, client, lender, clock, recording):
        follow(signed_in._auth, clock)
        signed_in.list_consents()
        clock.advance(minutes=20)
        assert signed_in.list_consents() == []
        assert sign_ins(client, lender) == 2 and all(status != 401 for _, status in recording.seen)

    def test_a_revoked_access_token_is_replaced_once(self, signed_in, client, admin_headers, lender, recording):
        signed_in.list_consents()
        r = client.delete(f"/v1/institutions/{lender.id}/access-tokens", headers=admin_headers)
        assert r.status_code == 200 and r.json()["access_tokens_revoked"] == 1
        assert signed_in.list_consents() == []  # refused with 401, signed in again, sent again
        assert [s for p, s in recording.seen if p == "/v1/consents"] == [200, 401, 200]
        assert sign_ins(client, lender) == 2

    @pytest.mark.anyio
    async def test_the_async_client_replaces_a_revoked_token(self, app, client, admin_headers, lender, key_file):
        async with async_client(app, None, auth=PrivateKeyJWT(institution_id=lender.id, key=key_file)) as sdk:
            await sdk.list_consents()
            client.delete(f"/v1/institutions/{lender.id}/access-tokens", headers=admin_headers)
            assert await sdk.list_consents() == []
        assert sign_ins(client, lender) == 2


class TestRefused:
    def test_a_revoked_key(self, client, admin_headers, lender, transport, tmp_path):
        key = Ed25519PrivateKey.generate()
        kid = register_key(client, admin_headers, lender, key)
        auth = PrivateKeyJWT(institution_id=lender.id, key=private_pem(key))
        with RegisterClient(BASE_URL, auth=auth, transport=transport) as sdk:
            sdk.list_consents()
            r = client.delete(f"/v1/institutions/{lender.id}/keys/{kid}", headers=admin_headers)
            assert r.status_code == 200, r.text
            with pytest.raises(InvalidClient) as caught:  # its token went with it; signing in again fails
                sdk.list_consents()
        assert isinstance(caught.value, Unauthenticated) and caught.value.code == "invalid_client"
        assert sign_ins(client, lender, "refused") == 1

    def test_a_key_the_register_does_not_know(self, lender, transport):
        auth = PrivateKeyJWT(institution_id=lender.id, key=Ed25519PrivateKey.generate())
        with RegisterClient(BASE_URL, auth=auth, transport=transport) as sdk, pytest.raises(InvalidClient):
            sdk.list_consents()

    def test_another_institutions_id(self, client, admin_headers, lender, key_file, transport):
        from tests.factories import make_institution

        other = make_institution(client, admin_headers, "lender")
        with RegisterClient(BASE_URL, auth=PrivateKeyJWT(institution_id=other.id, key=key_file),
                            transport=transport) as sdk, pytest.raises(InvalidClient):
            sdk.list_consents()
        assert sign_ins(client, other) == 0

    def test_keys_the_register_does_not_take_are_refused_before_sending(self, tmp_path, ed25519_key):
        public = tmp_path / "bank.pub"
        public.write_text(public_pem(ed25519_key))
        cases = {
            "is not a PEM private key": public,  # the public half, by mistake
            "cannot read the key file": tmp_path / "missing.key",
            "this is an EC key on secp384r1": ec.generate_private_key(ec.SECP384R1()),
            "Ed25519 and P-256 keys": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        }
        for message, key in cases.items():
            with pytest.raises(InvalidRequest, match=message):
                PrivateKeyJWT(institution_id="x", key=key)

    def test_the_error_never_quotes_the_key(self, tmp_path):
        garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
        with pytest.raises(InvalidRequest) as caught:
            PrivateKeyJWT(institution_id="x", key=garbage)
        assert "c2VjcmV0" not in str(caught.value)

    def test_a_token_and_a_key_together(self, lender, key_file):
        with pytest.raises(InvalidRequest, match="not both"):
            RegisterClient(BASE_URL, lender.token, auth=PrivateKeyJWT(institution_id=lender.id, key=key_file))

    def test_one_sign_in_is_for_one_register(self, lender, key_file):
        auth = PrivateKeyJWT(institution_id=lender.id, key=key_file)
        RegisterClient(BASE_URL, auth=auth).close()
        with pytest.raises(InvalidRequest, match="make another"):
            RegisterClient("http://another-register.test", auth=auth)


class TestCli:
    def test_key_and_institution_instead_of_a_token(self, run, client, lender, key_file):
        result = run("consents", "list", "--json", env={"REGISTER_KEY": key_file, "REGISTER_INSTITUTION_ID": lender.id})
        assert result.exit_code == 0, result.output
        result = run("--key", key_file, "--institution", lender.id, "obligations", "list")
        assert result.exit_code == 0 and "0 obligations" in result.stdout, result.output
        assert sign_ins(client, lender) == 2  # one per run

    def test_a_revoked_key_exits_1_with_the_reason(self, run, client, admin_headers, lender, tmp_path):
        key = Ed25519PrivateKey.generate()
        kid = register_key(client, admin_headers, lender, key)
        (tmp_path / "k").write_bytes(private_pem(key))
        client.delete(f"/v1/institutions/{lender.id}/keys/{kid}", headers=admin_headers)
        result = run("--key", str(tmp_path / "k"), "--institution", lender.id, "consents", "list")
        assert_one_line_error(result, 1, "invalid_client, HTTP 401")

    def test_usage_errors(self, run, lender, key_file, tmp_path):
        assert_one_line_error(run("--key", key_file, "consents", "list"), 2, "--key needs --institution")
        both = run("--key", key_file, "--institution", lender.id, "consents", "list", token=lender.token)
        assert_one_line_error(both, 2, "not both")
        (tmp_path / "pub").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        wrong = run("--key", str(tmp_path / "pub"), "--institution", lender.id, "consents", "list")
        assert_one_line_error(wrong, 2, "is not a PEM private key")

    def test_audit_verify_signs_in_with_the_key(self, run, client, admin_headers, transport, tmp_path):
        from tests.factories import make_institution

        regulator = make_institution(client, admin_headers, "regulator")
        key = Ed25519PrivateKey.generate()
        register_key(client, admin_headers, regulator, key)
        (tmp_path / "k").write_bytes(private_pem(key))
        with RegisterClient(BASE_URL, regulator.token, transport=transport) as reg:
            reg.make_checkpoint()
            vkey = reg.log_key().vkey
        result = run("--key", str(tmp_path / "k"), "--institution", regulator.id, "audit", "verify",
                     "--state", str(tmp_path / "state"), "--log-key", vkey)
        assert result.exit_code == 0 and result.stdout.startswith("OK: audit log"), result.output


class TestWithoutCryptography:
    """The plain SDK (no `keys` extra) imports and works without `cryptography`; only the key sign-in
    needs it, and says how to get it."""

    SCRIPT = textwrap.dedent("""
        import importlib.abc, sys

        class NoCryptography(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cryptography", "jwt"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoCryptography())
        import register_client, register_client.cli
        from register_client import RegisterClient
        RegisterClient("http://127.0.0.1:1", "rgt_x").close()
        assert not [m for m in sys.modules if m.split(".")[0] in ("cryptography", "jwt")]
        try:
            import register_client.keys
        except ImportError as exc:
            print(exc)
    """)

    def test_the_plain_sdk_imports_without_it(self):
        result = subprocess.run([sys.executable, "-c", self.SCRIPT], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "pip install 'register-client[keys]'" in result.stdout

    def test_the_cli_says_what_to_install(self, run, lender, key_file, monkeypatch):
        monkeypatch.setitem(sys.modules, "register_client.keys", None)  # import fails as if the extra were missing
        result = run("--key", key_file, "--institution", lender.id, "consents", "list")
        assert_one_line_error(result, 2, "pip install 'register-client[cli,keys]'")
