"""Key providers: where the register's secrets come from.

Keys never live in the database. The local provider keeps them in a JSON key file in the data dir
(created 0600 on first start) or takes them from the environment; a KMS-backed provider can replace it
behind the same protocol.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from register.config import Settings, write_private_file

KEY_BYTES = 32


class KeyProvider(Protocol):
    def encryption_keys(self) -> dict[int, bytes]: ...
    def current_encryption_version(self) -> int: ...
    def blind_index_key(self) -> bytes: ...


@dataclass(frozen=True)
class StaticKeys:
    """Keys held in memory: the result of every provider, and what tests construct directly."""

    enc: dict[int, bytes]
    blind: bytes

    def __post_init__(self) -> None:
        if not self.enc:
            raise ValueError("at least one encryption key is required")
        for version, key in self.enc.items():
            if not 0 < version < 256 or len(key) != KEY_BYTES:
                raise ValueError("encryption keys are 32 bytes with versions 1..255")
        if len(self.blind) != KEY_BYTES:
            raise ValueError("the blind-index key is 32 bytes")

    def encryption_keys(self) -> dict[int, bytes]:
        return self.enc

    def current_encryption_version(self) -> int:
        return max(self.enc)

    def blind_index_key(self) -> bytes:
        return self.blind

    def __repr__(self) -> str:
        return f"StaticKeys(versions={sorted(self.enc)}, blind=<redacted>)"

    @classmethod
    def generate(cls) -> StaticKeys:
        return cls(enc={1: os.urandom(KEY_BYTES)}, blind=os.urandom(KEY_BYTES))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def load_keys(settings: Settings) -> StaticKeys:
    """Keys from the environment if given, else from `<data_dir>/keys.json`, created on first use."""
    if settings.encryption_keys is not None or settings.blind_index_key is not None:
        if settings.encryption_keys is None or settings.blind_index_key is None:
            raise ValueError("set both REGISTER_ENCRYPTION_KEYS and REGISTER_BLIND_INDEX_KEY, or neither")
        enc = json.loads(settings.encryption_keys.get_secret_value())
        return StaticKeys(
            enc={int(v): _unb64(k) for v, k in enc.items()},
            blind=_unb64(settings.blind_index_key.get_secret_value()),
        )
    path: Path = settings.ensure_data_dir() / "keys.json"
    if not path.exists():
        keys = StaticKeys.generate()
        doc = {"encryption_keys": {str(v): _b64(k) for v, k in keys.enc.items()}, "blind_index_key": _b64(keys.blind)}
        write_private_file(path, json.dumps(doc, indent=2) + "\n")
    doc = json.loads(path.read_text())
    return StaticKeys(
        enc={int(v): _unb64(k) for v, k in doc["encryption_keys"].items()},
        blind=_unb64(doc["blind_index_key"]),
    )
