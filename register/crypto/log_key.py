"""The log keys: Ed25519 keys that sign checkpoints, receipts and key handovers. Kept outside the database.

One seam, :class:`LogKeyStore`, holds them; which key is *active* is recorded in the database (table
`log_keys`, written by a rotation), so every server process signs with the same key and picks up a new one
without a restart. Two implementations:

* :class:`FileLogKeyStore` (the default): the first key is `<data_dir>/log-key.pem` (0600, made on first
  start); every key a rotation adds is `<data_dir>/log-keys/<fingerprint>.pem` (0600), where the fingerprint is
  the first 16 hex digits of SHA-256 of the raw public key.
* :class:`EnvLogKeyStore`: REGISTER_LOG_KEY (base64 of the 32-byte seed), or several separated by commas: the
  first is the key the log started with, the others keys a rotation may hand over to. It cannot make keys: add
  the new seed to REGISTER_LOG_KEY on every host first; a rotation then hands over to the first key it holds
  that the log has not used yet (a file store is treated the same way, so a rotation interrupted after making
  its key resumes with that key).

A KMS or HSM implements the same four members: ``initial()``, ``find(public_key)``, ``create()`` and
``public_keys()``. The keys it returns need only ``sign(data) -> bytes`` (Ed25519, RFC 8032) and
``public_key() -> Ed25519PublicKey`` (:class:`register_verifier.note.SigningKey`): the private half never has
to leave the device.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from register.audit.note import SigningKey
from register.config import Settings, write_private_file

__all__ = [
    "LogKeyStore", "LogKeyStoreError", "FileLogKeyStore", "EnvLogKeyStore", "open_log_key_store", "load_log_key",
    "raw_public", "fingerprint",
]


class LogKeyStoreError(ValueError):
    """A key store cannot do what was asked (a read-only store asked for a new key, an unreadable key file)."""


def raw_public(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """The name a key goes by in a store: 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


class LogKeyStore(Protocol):
    """Where the log's private keys live. Documented seam: a KMS/HSM implementation provides the same members."""

    def initial(self) -> SigningKey:
        """The key the log started with (made on first start where the store can make keys)."""
        ...

    def find(self, public_key: bytes) -> SigningKey | None:
        """The key with this raw 32-byte Ed25519 public key, or None if the store does not hold it."""
        ...

    def create(self) -> SigningKey:
        """A new key, stored durably before it is returned. Raises LogKeyStoreError if the store cannot."""
        ...

    def public_keys(self) -> list[bytes]:
        """The raw public keys of every key held, the initial one first."""
        ...


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _read_pem(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise LogKeyStoreError(f"cannot read the log key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LogKeyStoreError(f"{path} is not an Ed25519 private key")
    return key


class FileLogKeyStore:
    """`<data_dir>/log-key.pem` and `<data_dir>/log-keys/*.pem`, each 0600."""

    def __init__(self, data_dir: Path) -> None:
        self.first = data_dir / "log-key.pem"
        self.dir = data_dir / "log-keys"

    def initial(self) -> Ed25519PrivateKey:
        if not self.first.exists():
            self.first.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private_file(self.first, _pem(Ed25519PrivateKey.generate()))
        return _read_pem(self.first)

    def _added(self) -> list[Path]:
        return sorted(self.dir.glob("*.pem")) if self.dir.is_dir() else []

    def find(self, public_key: bytes) -> Ed25519PrivateKey | None:
        for path in [self.first, *self._added()]:
            if path.exists() and (path == self.first or path.stem == fingerprint(public_key)):
                key = _read_pem(path)
                if raw_public(key) == public_key:
                    return key
        return None

    def create(self) -> Ed25519PrivateKey:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        write_private_file(self.dir / f"{fingerprint(raw_public(key))}.pem", _pem(key))
        return key

    def public_keys(self) -> list[bytes]:
        return [raw_public(_read_pem(p)) for p in [self.first, *self._added()] if p.exists()]


class EnvLogKeyStore:
    """Keys from REGISTER_LOG_KEY: base64 seeds separated by commas, the log's first key first. Read-only."""

    def __init__(self, value: str) -> None:
        self.keys: list[Ed25519PrivateKey] = []
        for part in value.split(","):
            try:
                seed = base64.b64decode(part.strip(), validate=True)
                self.keys.append(Ed25519PrivateKey.from_private_bytes(seed))
            except (binascii.Error, ValueError):
                raise LogKeyStoreError("REGISTER_LOG_KEY must be base64 of a 32-byte Ed25519 seed "
                                       "(several separated by commas)") from None

    def initial(self) -> Ed25519PrivateKey:
        return self.keys[0]

    def find(self, public_key: bytes) -> Ed25519PrivateKey | None:
        return next((k for k in self.keys if raw_public(k) == public_key), None)

    def create(self) -> Ed25519PrivateKey:
        raise LogKeyStoreError(
            "the log keys come from REGISTER_LOG_KEY, which the register cannot write: add the new key's seed "
            "to it (after a comma) on every host, then rotate again; the rotation hands over to that key")

    def public_keys(self) -> list[bytes]:
        return [raw_public(k) for k in self.keys]


def open_log_key_store(settings: Settings) -> LogKeyStore:
    if settings.log_key is not None:
        return EnvLogKeyStore(settings.log_key.get_secret_value())
    return FileLogKeyStore(settings.ensure_data_dir())


def load_log_key(settings: Settings) -> Ed25519PrivateKey:
    """The key the log started with (made on first start). Which key signs now is the database's to say:
    :class:`register.services.translog.TransparencyLog` asks it."""
    key = open_log_key_store(settings).initial()
    assert isinstance(key, Ed25519PrivateKey)
    return key
