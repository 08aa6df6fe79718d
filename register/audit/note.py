"""Signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and log-key handovers: the one
implementation is the verifier's (:mod:`register_verifier.note`, :mod:`register_verifier.handover`), installed
from ./clients/register_verifier, so the register signs exactly what the regulator's verifier checks."""

from __future__ import annotations

from register_verifier.handover import Handover, KeyChain, open_handover, sign_handover
from register_verifier.note import (
    MAX_SIGNATURES,
    SIG_TYPE_ED25519,
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    SigningKey,
    key_id,
)

__all__ = [
    "SIG_TYPE_ED25519", "MAX_SIGNATURES", "NoteError", "Checkpoint", "NoteSigner", "NoteVerifier", "SigningKey",
    "key_id", "Handover", "KeyChain", "sign_handover", "open_handover",
]
