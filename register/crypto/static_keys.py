"""Keys held in memory (`StaticKeys`), what every key provider (crypto.keys) loads into, and their fingerprints.

Apart from crypto.keys, whose providers need the settings and the log's keys: the field cipher needs only
this, and a report's preparing processes (services.lines) import the cipher without the rest of the register.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from enum import StrEnum

KEY_BYTES = 32


class KeyKind(StrEnum):
    fields = "fields"
    blind_index = "blind-index"


def fingerprint(kind: str, version: int, key: bytes) -> str:
    """What the database records of a key: HMAC-SHA256 keyed by the key over a fixed label, so it identifies
    the key without revealing it (a key check value)."""
    return hmac.digest(key, f"register key fingerprint v1|{kind}|{version}".encode(), "sha256").hex()


@dataclass(frozen=True)
class StaticKeys:
    """Keys held in memory: the result of every provider, and what tests construct directly.

    `enc`: field-encryption keys by version. `blind`: the blind-index key in use; `blind_versions` every
    blind-index key by version (default: `{1: blind}`)."""

    enc: dict[int, bytes]
    blind: bytes
    blind_versions: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.enc:
            raise ValueError("at least one encryption key is required")
        if not self.blind_versions:
            object.__setattr__(self, "blind_versions", {1: self.blind})
        for versions in (self.enc, self.blind_versions):
            for version, key in versions.items():
                if not 0 < version < 256 or len(key) != KEY_BYTES:
                    raise ValueError("keys are 32 bytes with versions 1..255")
        if len(self.blind) != KEY_BYTES:
            raise ValueError("the blind-index key is 32 bytes")

    def encryption_keys(self) -> dict[int, bytes]:
        return self.enc

    def current_encryption_version(self) -> int:
        return max(self.enc)

    def blind_index_key(self) -> bytes:
        return self.blind

    def blind_index_keys(self) -> dict[int, bytes]:
        return self.blind_versions

    def versions(self, kind: str) -> dict[int, bytes]:
        return self.enc if kind == KeyKind.fields else self.blind_versions

    def fingerprints(self) -> dict[tuple[str, int], str]:
        return {(kind.value, v): fingerprint(kind, v, k) for kind in KeyKind for v, k in self.versions(kind).items()}

    def __repr__(self) -> str:
        return f"StaticKeys(versions={sorted(self.enc)}, blind_versions={sorted(self.blind_versions)}, <redacted>)"

    @classmethod
    def generate(cls) -> StaticKeys:
        return cls(enc={1: os.urandom(KEY_BYTES)}, blind=os.urandom(KEY_BYTES))
