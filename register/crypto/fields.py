"""Field encryption bound to its place, and keyed blind indexes for lookups.

Ciphertext layout (version 1):  0x01 || key_version (1 byte) || nonce (12 bytes) || AES-256-GCM(ct || tag)
Associated data: b"register/v1|" + table + b"|" + column + b"|" + row_id, so a ciphertext copied to
another row, column or table fails to decrypt.

The blind index is HMAC-SHA256(blind_key, b"SE:198803200016"). National identities have only ~30-34
bits of possible values, so whoever holds the blind-index key can enumerate them: it is kept outside
the database, like the encryption keys.
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from register.crypto.keys import KeyProvider, StaticKeys

FORMAT_V1 = 0x01
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext failed to authenticate: tampered, moved to another row, or an unknown key."""


def _aad(table: str, column: str, row_id: str) -> bytes:
    return b"|".join((b"register/v1", table.encode(), column.encode(), row_id.encode()))


class FieldCipher:
    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys
        self._aeads = {v: AESGCM(k) for v, k in keys.encryption_keys().items()}
        self._current = keys.current_encryption_version()
        self._blind_key = keys.blind_index_key()

    def __repr__(self) -> str:
        return f"FieldCipher(current_version={self._current})"

    def __reduce__(self) -> tuple[type[FieldCipher], tuple[StaticKeys]]:
        """Pickled as its keys, held in memory: for the processes a server starts to prepare a batch file's
        lines (services.reports), which receive it over a pipe from their parent, never through storage."""
        return FieldCipher, (StaticKeys(enc=dict(self._keys.encryption_keys()), blind=self._blind_key),)

    def encrypt(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        ct = self._aeads[self._current].encrypt(nonce, plaintext, _aad(table, column, row_id))
        return bytes((FORMAT_V1, self._current)) + nonce + ct

    def decrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
        if len(blob) < 2 + NONCE_BYTES + 16 or blob[0] != FORMAT_V1:
            raise DecryptionError("unknown ciphertext format")
        aead = self._aeads.get(blob[1])
        if aead is None:
            raise DecryptionError(f"no key for version {blob[1]}")
        nonce, ct = blob[2 : 2 + NONCE_BYTES], blob[2 + NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, ct, _aad(table, column, row_id))
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate for this row") from exc

    def blind_index(self, data: bytes) -> bytes:
        return hmac.digest(self._blind_key, data, "sha256")  # one call into OpenSSL: hmac.new(...).digest()
