"""A key source as an operator's KMS module would plug in (REGISTER_KEY_SOURCE=tests.key_source_plugin:source):
here, files in a directory of its own instead of the data dir, for every kind of key at once."""

from __future__ import annotations

from pathlib import Path

from register.config import Settings
from register.crypto.keys import FileKeyProvider, KeySource
from register.crypto.log_key import FileLogKeyStore

CALLS: list[Path] = []


def source(settings: Settings) -> KeySource:
    vault = Path(settings.data_dir) / "vault"
    vault.mkdir(exist_ok=True)
    CALLS.append(vault)
    return KeySource(secrets=FileKeyProvider(vault / "keys.json"), log=FileLogKeyStore(vault))


def not_a_source(settings: Settings) -> object:
    return object()
