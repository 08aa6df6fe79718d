"""Key providers and the key source: the one seam every key of the register comes through (`KeySource`:
field-encryption and blind-index keys here, the log's signing keys in crypto.log_key).

Keys never live in the database. A provider holds versioned keys of two kinds (`fields`: AES-256-GCM keys
for encrypted columns; `blind-index`: HMAC-SHA256 keys for lookups by identity number). Which version is
active and which are retiring is recorded in the database (`key_versions`, with each version's
fingerprint, never the key), so every process and host agrees (storage.keys, services.keys).

The interface a provider implements (SPEC.md section 8, "Key lifecycle"):

    load() -> StaticKeys                 every version of both kinds it holds, in memory
    add_version(kind) -> int             make a new version of a kind; return its number
    destroy_version(kind, version)       forget a version for good (a retired key)

Implemented here: `FileKeyProvider` (a JSON key file, 0600, in the data dir; created on first start) and
`EnvKeyProvider` (REGISTER_ENCRYPTION_KEYS / REGISTER_BLIND_INDEX_KEY(S); read-only: the operator adds a
version to the environment and reruns). A KMS or HSM provider implements the same three calls: `load` then
returns data keys unwrapped by the KMS (envelope encryption: the wrapped keys may sit in a file, the
key-encryption key never leaves the KMS), `add_version` asks it for a new data key, `destroy_version`
schedules the wrapped key's deletion.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from register.config import Settings, write_private_file
from register.crypto.log_key import LogKeyStore, open_log_key_store
from register.crypto.static_keys import KEY_BYTES, KeyKind, StaticKeys, fingerprint  # noqa: F401 - their names here too


class KeyState(StrEnum):
    pending = "pending"  # made, not yet used (a blind-index key being computed for every person)
    active = "active"  # encrypts / indexes
    retiring = "retiring"  # still decrypts / still found by lookups, until its rotation ends
    destroyed = "destroyed"  # gone from the provider; its fingerprint stays on record


class KeyProviderError(Exception):
    """The provider cannot do what was asked (e.g. the environment cannot be written)."""


class KeyProvider(Protocol):
    """The seam (see the module docstring)."""

    def load(self) -> StaticKeys: ...
    def add_version(self, kind: str) -> int: ...
    def destroy_version(self, kind: str, version: int) -> None: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _versions(doc: dict[str, str]) -> dict[int, bytes]:
    return {int(v): _unb64(k) for v, k in doc.items()}


class FileKeyProvider:
    """`<data_dir>/keys.json` (0600): {"encryption_keys": {v: b64}, "blind_index_keys": {v: b64}}.
    Files written before versioned blind-index keys hold "blind_index_key" (version 1); both are read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> StaticKeys:
        keys = StaticKeys.generate()
        self._write(keys)
        return keys

    def load(self) -> StaticKeys:
        if not self.path.exists():
            raise KeyProviderError(f"the key file {self.path} does not exist")
        doc = json.loads(self.path.read_text())
        blind = _versions(doc.get("blind_index_keys") or {"1": doc["blind_index_key"]})
        return StaticKeys(enc=_versions(doc["encryption_keys"]), blind=blind[max(blind)], blind_versions=blind)

    def _write(self, keys: StaticKeys) -> None:
        doc = {"encryption_keys": {str(v): _b64(k) for v, k in sorted(keys.enc.items())},
               "blind_index_keys": {str(v): _b64(k) for v, k in sorted(keys.blind_versions.items())},
               "blind_index_key": _b64(keys.blind)}  # read by versions before blind_index_keys
        write_private_file(self.path, json.dumps(doc, indent=2) + "\n")

    def add_version(self, kind: str) -> int:
        keys = self.load()
        enc, blind = dict(keys.enc), dict(keys.blind_versions)
        versions = enc if kind == KeyKind.fields else blind
        version = max(versions) + 1
        if version > 255:
            raise KeyProviderError(f"{kind} key versions are exhausted (255)")
        versions[version] = os.urandom(KEY_BYTES)
        self._write(StaticKeys(enc=enc, blind=blind[max(blind)], blind_versions=blind))
        return version

    def destroy_version(self, kind: str, version: int) -> None:
        keys = self.load()
        enc, blind = dict(keys.enc), dict(keys.blind_versions)
        versions = enc if kind == KeyKind.fields else blind
        if versions.pop(version, None) is None:
            return
        if not versions:
            raise KeyProviderError(f"refusing to destroy the only {kind} key")
        self._write(StaticKeys(enc=enc, blind=blind[max(blind)], blind_versions=blind))


class EnvKeyProvider:
    """REGISTER_ENCRYPTION_KEYS (JSON {version: base64}) with REGISTER_BLIND_INDEX_KEYS (the same shape) or
    REGISTER_BLIND_INDEX_KEY (one key, version 1). Read-only: a new version is added to the environment by
    the operator (`openssl rand -base64 32`), after which the rotation is run again."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return "EnvKeyProvider()"

    def load(self) -> StaticKeys:
        s = self.settings
        many = s.blind_index_keys
        if s.encryption_keys is None or (s.blind_index_key is None and many is None):
            raise ValueError("set REGISTER_ENCRYPTION_KEYS and REGISTER_BLIND_INDEX_KEY(S), or neither")
        enc = _versions(json.loads(s.encryption_keys.get_secret_value()))
        blind = (_versions(json.loads(many.get_secret_value())) if many is not None
                 else {1: _unb64(s.blind_index_key.get_secret_value())})  # type: ignore[union-attr]
        return StaticKeys(enc=enc, blind=blind[max(blind)], blind_versions=blind)

    def add_version(self, kind: str) -> int:
        name = "REGISTER_ENCRYPTION_KEYS" if kind == KeyKind.fields else "REGISTER_BLIND_INDEX_KEYS"
        have = self.load().versions(kind)
        if len(have) > 1:  # the operator already added one: use the newest
            return max(have)
        raise KeyProviderError(
            f"keys come from the environment: add version {max(have) + 1} to {name} "
            f"(JSON {{\"<version>\": \"<base64 of 32 random bytes>\"}}, e.g. from `openssl rand -base64 32`), "
            "restart or reconfigure every process with it, then run the rotation again")

    def destroy_version(self, kind: str, version: int) -> None:
        """Nothing to write: the operator removes the version from the environment (SPEC.md, "Key lifecycle")."""


def default_provider(settings: Settings) -> FileKeyProvider | EnvKeyProvider:
    """The environment if it gives keys, else the key file in the data dir."""
    if (settings.encryption_keys is not None or settings.blind_index_key is not None
            or settings.blind_index_keys is not None):
        return EnvKeyProvider(settings)
    return FileKeyProvider(settings.ensure_data_dir() / "keys.json")


@dataclass(frozen=True)
class KeySource:
    """The one seam every key of the register comes through: the field-encryption and blind-index keys
    (`secrets`, a KeyProvider) and the log's signing keys (`log`, a LogKeyStore: register.crypto.log_key).

    By default both are files in the data dir, or the environment where it gives keys. A KMS or HSM plugs
    in here, for every kind at once: `REGISTER_KEY_SOURCE=package.module:factory` names a callable that
    takes the Settings and returns a KeySource (SPEC.md section 8, "Key lifecycle")."""

    secrets: KeyProvider
    log: LogKeyStore


def open_key_source(settings: Settings) -> KeySource:
    """The key source the settings name (REGISTER_KEY_SOURCE), else the files or the environment."""
    if settings.key_source:
        module, _, name = settings.key_source.partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise KeyProviderError(f"REGISTER_KEY_SOURCE={settings.key_source!r}: cannot load it ({exc}); "
                                   "give package.module:factory") from None
        source = factory(settings)
        if not isinstance(source, KeySource):
            raise KeyProviderError(f"REGISTER_KEY_SOURCE={settings.key_source!r} did not return a KeySource")
        return source
    return KeySource(secrets=default_provider(settings), log=open_log_key_store(settings))


def provider_for(settings: Settings) -> KeyProvider:
    """The field-encryption and blind-index keys of the key source."""
    return open_key_source(settings).secrets


def load_keys(settings: Settings) -> StaticKeys:
    """The key source's keys: from the environment if given, else from `<data_dir>/keys.json`, created on
    first use. (The server checks them against the database's fingerprints before serving: services.keys.)"""
    provider = provider_for(settings)
    if isinstance(provider, FileKeyProvider) and not provider.exists():
        return provider.create()
    return provider.load()
