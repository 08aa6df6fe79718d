"""Log-key handover: the old log key names the key that signs after it.

When the register rotates its log key, the retiring key signs a *handover
statement*, a c2sp.org/signed-note whose text is exactly::

    <origin>/key-handover
    Old-Key: <vkey of the retiring key>
    New-Key: <vkey of the new key>
    From-Size: <tree size, decimal, no leading zeros>
    Timestamp: <POSIX seconds, decimal, no leading zeros>

and which carries two signatures: the old key's (it hands over) and the new
key's (it holds the private half).  A verifier that pinned the old key
follows the statement only when both verify; from then on it pins the new
key, and accepts a checkpoint signed by the old key only up to tree size
``From-Size`` (the old key signed the tree up to there; the new key signs
every checkpoint from that size on).  The register writes the statement with
:func:`sign_handover`; the verifier checks it with :func:`open_handover`.
Both sides use this one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .note import NoteError, NoteSigner, NoteVerifier, _check_text

__all__ = ["HANDOVER_SUFFIX", "Handover", "KeyChain", "sign_handover", "open_handover"]

HANDOVER_SUFFIX = "/key-handover"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX = 2**63 - 1


@dataclass(frozen=True)
class Handover:
    """What a handover statement says."""

    origin: str
    old_key: str  # vkey
    new_key: str  # vkey
    from_size: int
    timestamp: int

    def to_body(self) -> bytes:
        return (
            f"{self.origin}{HANDOVER_SUFFIX}\n"
            f"Old-Key: {self.old_key}\n"
            f"New-Key: {self.new_key}\n"
            f"From-Size: {self.from_size}\n"
            f"Timestamp: {self.timestamp}\n"
        ).encode("utf-8")

    @classmethod
    def parse_body(cls, body: bytes) -> "Handover":
        """Parse the statement text strictly (it must round-trip byte for byte); :class:`NoteError` otherwise."""
        text = _check_text(body, "handover")
        if not text.endswith("\n"):
            raise NoteError("handover must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 5 or not lines[0].endswith(HANDOVER_SUFFIX):
            raise NoteError("not a key handover statement (5 lines, the first '<origin>/key-handover')")
        values = []
        for line, prefix in zip(lines[1:], ("Old-Key: ", "New-Key: ", "From-Size: ", "Timestamp: ")):
            if not line.startswith(prefix):
                raise NoteError(f"handover: expected a {prefix.strip()!r} line, got {line!r}")
            values.append(line[len(prefix):])
        old_key, new_key, size, ts = values
        for number in (size, ts):
            if len(number) > 19 or not _DECIMAL.fullmatch(number) or int(number) > _MAX:
                raise NoteError(f"handover: invalid number {number!r}")
        out = cls(lines[0][: -len(HANDOVER_SUFFIX)], old_key, new_key, int(size), int(ts))
        if out.to_body() != body:
            raise NoteError("handover text is not in canonical form")
        return out


def sign_handover(old: NoteSigner, new: NoteSigner, *, from_size: int, timestamp: int) -> bytes:
    """The signed statement: ``old`` hands the log over to ``new`` from tree size ``from_size``."""
    if old.name != new.name:
        raise ValueError("the new log key must have the same name (the log's origin) as the old one")
    if old.key_id == new.key_id:
        raise ValueError("the new log key is the old one")
    body = Handover(old.name, old.verifier_key(), new.verifier_key(), from_size, timestamp).to_body()
    return body + b"\n" + old.signature_line(body) + new.signature_line(body)


def open_handover(trusted: NoteVerifier, note: bytes) -> tuple[Handover, NoteVerifier]:
    """Follow a handover from the ``trusted`` key: the statement and the new key's verifier.

    Raises :class:`NoteError` unless the statement is signed by ``trusted``,
    names ``trusted`` as its old key, is for ``trusted``'s log, and is also
    signed by the new key it names.
    """
    text = trusted.open(note)  # signed by the key we already trust
    handover = Handover.parse_body(text)
    if handover.origin != trusted.name:
        raise NoteError(f"handover is for log {handover.origin!r}, not {trusted.name!r}")
    if NoteVerifier.from_vkey(handover.old_key).verifier_key() != trusted.verifier_key():
        raise NoteError("handover does not name the trusted key as the old key")
    new = NoteVerifier.from_vkey(handover.new_key)
    if new.name != trusted.name:
        raise NoteError("the new key's name is not the log's origin")
    if new.key_id == trusted.key_id:
        raise NoteError("handover to the same key")
    new.open(note)  # and by the new key: whoever wrote it holds the new private key
    return handover, new


@dataclass
class KeyChain:
    """The log's keys from a trusted first key, each later one reached by a handover its predecessor signed.

    ``keys[i]`` signs checkpoints of tree sizes ``from_sizes[i] .. from_sizes[i + 1]`` (the last key: from its
    size on); ``handovers[i]`` is the statement that brought in ``keys[i + 1]``.
    """

    keys: list[NoteVerifier]
    from_sizes: list[int] = field(default_factory=lambda: [0])
    handovers: list[Handover] = field(default_factory=list)
    notes: list[bytes] = field(default_factory=list)

    @classmethod
    def start(cls, trusted: NoteVerifier) -> "KeyChain":
        return cls([trusted])

    @property
    def current(self) -> NoteVerifier:
        return self.keys[-1]

    def follow(self, note: bytes) -> Handover:
        """Add the key a handover signed by the current key names; :class:`NoteError` if it does not verify."""
        handover, new = open_handover(self.current, note)
        if handover.from_size < self.from_sizes[-1]:
            raise NoteError(
                f"handover from size {handover.from_size}, below the size {self.from_sizes[-1]} the current "
                "key already signs from"
            )
        if any(k.key_id == new.key_id for k in self.keys):
            raise NoteError("handover back to a key this log has already used")
        self.keys.append(new)
        self.from_sizes.append(handover.from_size)
        self.handovers.append(handover)
        self.notes.append(note)
        return handover

    def until_size(self, i: int) -> int | None:
        """The largest tree size key ``i`` may sign a checkpoint for (None: no limit, the current key)."""
        return self.from_sizes[i + 1] if i + 1 < len(self.keys) else None

    def signer_of(self, note: bytes) -> int:
        """Index of the chain key that validly signs ``note`` (the newest first); :class:`NoteError` if none."""
        for i in range(len(self.keys) - 1, -1, -1):
            try:
                self.keys[i].open(note)
            except NoteError:
                continue
            return i
        raise NoteError("note is not signed by any key of the log's key chain")

    def open(self, note: bytes) -> bytes:
        """The text of ``note`` if a key of the chain signs it (as :meth:`NoteVerifier.open`)."""
        return self.keys[self.signer_of(note)].open(note)
