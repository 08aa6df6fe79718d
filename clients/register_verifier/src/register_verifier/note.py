"""Signed-note and checkpoint verification for the register's audit log.

The one implementation of the log's signed notes: the register signs its
checkpoints, receipts and key handovers with :class:`NoteSigner` from here
(``register.audit.note`` re-exports it); the verifier only ever uses the
verifying half.  This package imports nothing from the register.

A checkpoint is a c2sp.org/signed-note whose text is::

    <origin>
    <tree size, decimal, no leading zeros>
    <root hash, standard base64 of 32 bytes>
    Timestamp: <POSIX seconds, decimal, no leading zeros>

signed with Ed25519 (signature type 0x01).  Typical use::

    verifier = NoteVerifier.from_vkey(PUBLISHED_VKEY)   # "<name>+<keyid hex>+<base64>"
    checkpoint = Checkpoint.parse_body(verifier.open(note_bytes))

``open`` raises :class:`NoteError` unless the note carries a valid signature
by that key (signatures by other keys, such as witnesses, are ignored);
``parse_body`` raises :class:`NoteError` unless the text is exactly the
format above.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "SIG_TYPE_ED25519",
    "MAX_SIGNATURES",
    "NoteError",
    "Checkpoint",
    "NoteVerifier",
    "NoteSigner",
    "SigningKey",
    "key_id",
]

SIG_TYPE_ED25519 = 0x01
# The spec requires accepting at least 16 signatures; golang.org/x/mod/sumdb/note stops at 100.
MAX_SIGNATURES = 100
_SIG_PREFIX = "\u2014 ".encode("utf-8")  # em dash, space
_HASH_SIZE = 32
_MAX_SIZE = 2**64 - 1
_MAX_TIMESTAMP = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_ROOT_B64 = re.compile(r"[A-Za-z0-9+/]{43}=")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_TIMESTAMP_PREFIX = "Timestamp: "


class NoteError(ValueError):
    """A note, checkpoint or key is malformed, or a note is not validly signed."""


def _is_valid_name(name: object) -> bool:
    """Key names (and our origins): non-empty, no Unicode spaces, no '+', no control characters."""
    return (
        isinstance(name, str)
        and name != ""
        and not any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name)
    )


def _check_text(data: object, what: str) -> str:
    """Signed-note text rules: bytes, valid UTF-8, no ASCII control characters but newline."""
    if not isinstance(data, bytes):
        raise NoteError(f"{what} must be bytes, got {type(data).__name__}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None
    if _CONTROL.search(text):
        raise NoteError(f"{what} contains a control character")
    return text


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII control characters but newline (one C scan, not a Python loop)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError("invalid base64") from None


def key_id(name: str, public_key: bytes) -> bytes:
    """Ed25519 key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4] (signed-note spec)."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([SIG_TYPE_ED25519]) + public_key
    ).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A log checkpoint: origin, tree size, RFC 6962 root hash and signing time (POSIX seconds)."""

    origin: str
    size: int
    root_hash: bytes
    timestamp: int

    def __post_init__(self) -> None:
        if not _is_valid_name(self.origin):
            raise ValueError(f"invalid checkpoint origin {self.origin!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= _MAX_SIZE:
            raise ValueError(f"invalid tree size {self.size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise ValueError(f"root hash must be {_HASH_SIZE} bytes")
        if (
            isinstance(self.timestamp, bool)
            or not isinstance(self.timestamp, int)
            or not 0 <= self.timestamp <= _MAX_TIMESTAMP
        ):
            raise ValueError(f"invalid timestamp {self.timestamp!r}")

    def to_body(self) -> bytes:
        """The checkpoint note text (what gets signed)."""
        return (
            f"{self.origin}\n"
            f"{self.size}\n"
            f"{base64.b64encode(self.root_hash).decode('ascii')}\n"
            f"{_TIMESTAMP_PREFIX}{self.timestamp}\n"
        ).encode("utf-8")

    @classmethod
    def parse_body(cls, body: bytes) -> "Checkpoint":
        """Parse a checkpoint note text; raises :class:`NoteError` unless it is exactly our format."""
        text = _check_text(body, "checkpoint")
        if not text.endswith("\n"):
            raise NoteError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 4:
            raise NoteError(
                f"checkpoint must have 4 lines (origin, size, root hash, timestamp), got {len(lines)}"
            )
        origin, size_line, root_line, time_line = lines
        if not _is_valid_name(origin):
            raise NoteError(f"invalid checkpoint origin {origin!r}")
        if len(size_line) > 20 or not _DECIMAL.fullmatch(size_line) or int(size_line) > _MAX_SIZE:
            raise NoteError(f"invalid tree size line {size_line!r}")
        if not _ROOT_B64.fullmatch(root_line):
            raise NoteError("root hash line is not the base64 encoding of 32 bytes")
        root_hash = _b64decode(root_line)
        if base64.b64encode(root_hash).decode("ascii") != root_line:
            raise NoteError("root hash line is not canonical base64")
        if not time_line.startswith(_TIMESTAMP_PREFIX):
            raise NoteError(f"expected a {_TIMESTAMP_PREFIX!r} extension line")
        ts = time_line[len(_TIMESTAMP_PREFIX):]
        if len(ts) > 19 or not _DECIMAL.fullmatch(ts) or int(ts) > _MAX_TIMESTAMP:
            raise NoteError(f"invalid timestamp {ts!r}")
        return cls(origin, int(size_line), root_hash, int(ts))


class _NamedKey:
    """A note key's name and its 4-byte key ID (a verifier's and a signer's alike)."""

    _name: str
    _key_id: bytes

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return self._key_id


class NoteVerifier(_NamedKey):
    """Verifies signed notes against one trusted Ed25519 key (name + public key)."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        if not isinstance(public_key, Ed25519PublicKey):
            raise NoteError("public key must be an Ed25519PublicKey")
        self._name = name
        self._public_key = public_key
        self._raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self._raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> "NoteVerifier":
        """Parse a verifier key ``<name>+<hex key ID>+<base64(0x01 || 32-byte public key)>``."""
        if not isinstance(vkey, str):
            raise NoteError("verifier key must be a str")
        name, sep1, rest = vkey.partition("+")
        hex_id, sep2, key_b64 = rest.partition("+")
        if not (sep1 and sep2 and _is_valid_name(name) and _HEX8.fullmatch(hex_id) and key_b64):
            raise NoteError("malformed verifier key")
        raw = _b64decode(key_b64)
        if len(raw) != 1 + 32 or raw[0] != SIG_TYPE_ED25519:
            raise NoteError("verifier key is not an Ed25519 (type 0x01) key")
        if key_id(name, raw[1:]) != bytes.fromhex(hex_id):
            raise NoteError("verifier key ID does not match the name and public key")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError:
            raise NoteError("invalid Ed25519 public key") from None
        return cls(name, public_key)

    def verifier_key(self) -> str:
        """This key in vkey format."""
        raw = bytes([SIG_TYPE_ED25519]) + self._raw
        return f"{self._name}+{self._key_id.hex()}+{base64.b64encode(raw).decode('ascii')}"

    def open(self, note: bytes) -> bytes:
        """Return the text of ``note`` if it carries a valid signature by this key.

        Signature lines from other keys (other name or key ID) are ignored.
        Raises :class:`NoteError` if the note is malformed, if any signature
        line claiming to be from this key fails to verify, or if there is none.
        """
        _check_text(note, "note")
        split = note.rfind(b"\n\n")
        if split < 0:
            raise NoteError("malformed note: no blank line before the signatures")
        text, sig_block = note[: split + 1], note[split + 2 :]
        if not sig_block or not sig_block.endswith(b"\n"):
            raise NoteError("malformed note: missing or unterminated signature lines")
        lines = sig_block[:-1].split(b"\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
        verified = False
        for line in lines:
            if not line.startswith(_SIG_PREFIX):
                raise NoteError("malformed note: signature line must start with an em dash and a space")
            name, sep, sig_b64 = line[len(_SIG_PREFIX) :].decode("utf-8").partition(" ")
            if not sep or not _is_valid_name(name) or not sig_b64:
                raise NoteError("malformed note: bad signature line")
            raw = _b64decode(sig_b64)
            if len(raw) < 5:
                raise NoteError("malformed note: signature too short")
            if name != self._name or raw[:4] != self._key_id:
                continue  # someone else's signature (e.g. a witness): ignore
            try:
                self._public_key.verify(raw[4:], text)
            except InvalidSignature:
                raise NoteError(
                    f"invalid signature for key {self._name}+{self._key_id.hex()}"
                ) from None
            verified = True
        if not verified:
            raise NoteError(f"note has no signature by key {self._name}+{self._key_id.hex()}")
        return text


# --------------------------------------------------------------------------
# Signing (the register's side; the verifier never holds a private key).
# --------------------------------------------------------------------------


class SigningKey(Protocol):
    """What :class:`NoteSigner` needs of a key: an Ed25519 ``sign`` and its ``public_key``.

    ``cryptography``'s ``Ed25519PrivateKey`` is one; a KMS or HSM adapter that
    signs remotely is another (``register.crypto.log_key`` documents the seam).
    """

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...


class NoteSigner(_NamedKey):
    """Signs note texts with an Ed25519 key under a key name (use the checkpoint origin)."""

    def __init__(self, name: str, private_key: SigningKey) -> None:
        if not _is_valid_name(name):
            raise ValueError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")
        public_key = private_key.public_key() if hasattr(private_key, "public_key") else None
        if not hasattr(private_key, "sign") or not isinstance(public_key, Ed25519PublicKey):
            raise TypeError("private_key must be an Ed25519 signing key (sign() and an Ed25519 public_key())")
        self._name = name
        self._private_key = private_key
        self._public_key = public_key
        self._public = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self._public)

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public

    def verifier_key(self) -> str:
        """The public verifier key ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        raw = bytes([SIG_TYPE_ED25519]) + self._public
        return f"{self._name}+{self._key_id.hex()}+{base64.b64encode(raw).decode('ascii')}"

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self._name, self._public_key)

    def signature_line(self, body: bytes) -> bytes:
        """This key's signature line over ``body`` (to add to a note other keys sign too)."""
        text = _check_text(body, "note text")
        if not text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        sig = self._private_key.sign(body)
        line = f"\u2014 {self._name} {base64.b64encode(self._key_id + sig).decode('ascii')}\n"
        return line.encode("utf-8")

    def sign(self, body: bytes) -> bytes:
        """The complete signed note: ``body``, a blank line, and this key's signature line."""
        return body + b"\n" + self.signature_line(body)
