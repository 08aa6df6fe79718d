"""Field encryption bound to its place, and keyed blind indexes for lookups.

Ciphertext layout (version 1):  0x01 || key_version (1 byte) || nonce (12 bytes) || AES-256-GCM(ct || tag)
Associated data: b"register/v1|" + table + b"|" + column + b"|" + row_id, so a ciphertext copied to
another row, column or table fails to decrypt.

The blind index is HMAC-SHA256(blind_key, b"SE:198803200016"). National identities have only ~30-34
bits of possible values, so whoever holds the blind-index key can enumerate them: it is kept outside
the database, like the encryption keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from register.crypto.static_keys import StaticKeys

if TYPE_CHECKING:
    from register.crypto.keys import KeyProvider

FORMAT_V1 = 0x01
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext failed to authenticate: tampered, moved to another row, or an unknown key."""


def _aad(table: str, column: str, row_id: str) -> bytes:
    return b"|".join((b"register/v1", table.encode(), column.encode(), row_id.encode()))


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, its two padded-key states hashed once: each message then costs two
    copies of them, not `hmac.digest`'s lookup of the algorithm in OpenSSL 3 on every call (0.47 against 1.32 us
    a blind index, one or more for every line of a batch file: BENCHMARKS.md, ingest, eleventh round). Equal to
    `hmac.digest(key, data, "sha256")` for every key and message (tests/crypto/test_fields.py)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, data: bytes) -> bytes:
        inner = self._inner.copy()  # the states are never updated themselves: safe to copy from any thread
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class _Ring:
    """One consistent set of keys and the versions in use: replaced whole, never edited (readers take one
    reference, so a request never mixes two rings)."""

    __slots__ = ("keys", "aeads", "current", "blind_active", "blind_keys", "blind_macs")

    def __init__(self, keys: StaticKeys, current: int, blind_active: int, blind_live: tuple[int, ...]) -> None:
        self.keys = keys
        self.aeads = {v: AESGCM(k) for v, k in keys.enc.items()}
        self.current = current
        self.blind_active = blind_active
        # the active blind-index key first, then any other live one (pending or retiring): dual lookups
        order = dict.fromkeys(v for v in (blind_active, *blind_live) if v in keys.blind_versions)
        self.blind_keys = tuple(keys.blind_versions[v] for v in order)
        self.blind_macs = tuple(_HmacSha256(k) for k in self.blind_keys)


class FieldCipher:
    """Encrypts with the active field key, decrypts with any version it holds; indexes with the active
    blind-index key and, while a blind-index rotation runs, also with the other live one (`blind_indexes`).
    `use()` swaps in new keys while the process runs (services.keys.KeyWatcher)."""

    def __init__(self, keys: KeyProvider | StaticKeys, *, current: int | None = None, blind_active: int | None = None,
                 blind_live: tuple[int, ...] = ()) -> None:
        self._ring = self._make(keys, current, blind_active, blind_live)

    @staticmethod
    def _make(keys: KeyProvider | StaticKeys, current: int | None, blind_active: int | None,
              blind_live: tuple[int, ...]) -> _Ring:
        static = keys if isinstance(keys, StaticKeys) else StaticKeys(
            enc=dict(keys.encryption_keys()), blind=keys.blind_index_key())  # type: ignore[attr-defined]
        current = current if current is not None else static.current_encryption_version()
        if current not in static.enc:
            raise ValueError(f"no field key for version {current}")
        if blind_active is None:
            blind_active = next(v for v, k in static.blind_versions.items() if k == static.blind)
        if blind_active not in static.blind_versions:
            raise ValueError(f"no blind-index key for version {blind_active}")
        return _Ring(static, current, blind_active, blind_live)

    def use(self, keys: StaticKeys, *, current: int, blind_active: int, blind_live: tuple[int, ...] = ()) -> None:
        self._ring = self._make(keys, current, blind_active, blind_live)

    @property
    def keys(self) -> StaticKeys:
        return self._ring.keys

    @property
    def current_version(self) -> int:
        return self._ring.current

    @property
    def blind_version(self) -> int:
        return self._ring.blind_active

    def __hash__(self) -> int:
        """Changes when keys are swapped in, so a cache keyed by the cipher (services.bulk) starts afresh."""
        return hash((id(self), id(self._ring)))

    def __eq__(self, other: object) -> bool:
        return other is self

    def __repr__(self) -> str:
        return f"FieldCipher(current_version={self._ring.current}, blind_version={self._ring.blind_active})"

    def __reduce__(self) -> tuple:
        """Pickled as its keys, held in memory: for the processes a server starts to prepare a batch file's
        lines (services.reports), which receive it over a pipe from their parent, never through storage."""
        r = self._ring
        live = tuple(v for v, k in r.keys.blind_versions.items() if k in r.blind_keys)
        return _rebuild, (r.keys, r.current, r.blind_active, live)

    def encrypt(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        ring = self._ring
        nonce = os.urandom(NONCE_BYTES)
        ct = ring.aeads[ring.current].encrypt(nonce, plaintext, _aad(table, column, row_id))
        return bytes((FORMAT_V1, ring.current)) + nonce + ct

    def decrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
        if len(blob) < 2 + NONCE_BYTES + 16 or blob[0] != FORMAT_V1:
            raise DecryptionError("unknown ciphertext format")
        aead = self._ring.aeads.get(blob[1])
        if aead is None:
            raise DecryptionError(f"no key for version {blob[1]}")
        nonce, ct = blob[2 : 2 + NONCE_BYTES], blob[2 + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, ct, _aad(table, column, row_id))
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate for this row") from exc

    def blind_index(self, data: bytes) -> bytes:
        return self._ring.blind_macs[0].digest(data)

    def blind_indexes(self, data: bytes) -> list[bytes]:
        """Every value this identity may be indexed under now: the active key's first, then the other live
        key's while a blind-index rotation runs (dual lookup)."""
        return [m.digest(data) for m in self._ring.blind_macs]

    def blind_index_with(self, version: int, data: bytes) -> bytes:
        return hmac.digest(self._ring.keys.blind_versions[version], data, "sha256")


def _rebuild(keys: StaticKeys, current: int, blind_active: int, live: tuple[int, ...]) -> FieldCipher:
    return FieldCipher(keys, current=current, blind_active=blind_active, blind_live=live)
