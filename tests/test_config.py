"""Settings read secrets from files (REGISTER_<NAME>_FILE), as Docker and Kubernetes mount them."""

from __future__ import annotations

import base64
import json
import os

import pytest
from pydantic import ValidationError

from register.config import SECRET_FILES, Settings
from register.crypto.keys import load_keys


def secret_file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o400)
    return path


class TestSecretFiles:
    def test_every_secret_setting_has_a_file_variant(self):
        for name in SECRET_FILES:
            assert f"{name}_file" in Settings.model_fields

    def test_a_value_is_read_from_the_file_named_in_the_environment(self, tmp_path, monkeypatch):
        monkeypatch.setenv("REGISTER_ADMIN_TOKEN_FILE", str(secret_file(tmp_path, "admin_token", "s3cret-token\n")))
        monkeypatch.delenv("REGISTER_ADMIN_TOKEN", raising=False)
        assert Settings().resolved_admin_token() == "s3cret-token"

    def test_a_database_url_from_a_file_is_normalised_like_one_from_the_environment(self, tmp_path):
        path = secret_file(tmp_path, "database_url", "postgresql://register:pw@db:5432/register\n")
        assert Settings(database_url_file=path).resolved_database_url == "postgresql+psycopg://register:pw@db:5432/register"

    def test_keys_from_files_are_the_keys_in_use(self, tmp_path):
        enc, blind = os.urandom(32), os.urandom(32)
        settings = Settings(
            data_dir=tmp_path / "data",
            encryption_keys_file=secret_file(tmp_path, "enc", json.dumps({"1": base64.b64encode(enc).decode()})),
            blind_index_key_file=secret_file(tmp_path, "blind", base64.b64encode(blind).decode() + "\n"),
        )
        keys = load_keys(settings)
        assert keys.encryption_keys() == {1: enc}
        assert keys.blind_index_key() == blind
        assert not (tmp_path / "data" / "keys.json").exists()  # no key file was generated beside them

    def test_the_value_and_its_file_together_are_refused(self, tmp_path):
        with pytest.raises(ValidationError, match="REGISTER_LOG_KEY or REGISTER_LOG_KEY_FILE"):
            Settings(log_key="a" * 44, log_key_file=secret_file(tmp_path, "log_key", "b" * 44))

    def test_a_missing_file_is_named_and_no_secret_is_printed(self, tmp_path):
        with pytest.raises(ValidationError) as caught:
            Settings(admin_token="do-not-print-me", log_key_file=tmp_path / "missing")
        message = str(caught.value)
        assert "REGISTER_LOG_KEY_FILE" in message and "missing" in message
        assert "do-not-print-me" not in message


class TestIdTokenMaxSeconds:
    def test_default_is_an_hour(self):
        assert Settings().id_token_max_seconds == 3600

    def test_read_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("REGISTER_ID_TOKEN_MAX_SECONDS", "900")
        assert Settings().id_token_max_seconds == 900

    @pytest.mark.parametrize("value", [599, 0, -1, 86_401])
    def test_below_the_development_providers_lifetime_or_over_a_day_is_refused(self, value):
        with pytest.raises(ValidationError):
            Settings(id_token_max_seconds=value)

    def test_the_development_providers_tokens_always_fit(self):
        from register.crypto.dev_idp import TTL_SECONDS

        assert Settings(id_token_max_seconds=600).id_token_max_seconds >= TTL_SECONDS
