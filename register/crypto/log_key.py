"""The log key: an Ed25519 key that signs checkpoints and receipts. Kept outside the database: from
REGISTER_LOG_KEY (base64 of the 32-byte seed) or `<data_dir>/log-key.pem` (0600), made on first start."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from register.config import Settings, write_private_file


def load_log_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.log_key is not None:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.log_key.get_secret_value()))
    path = settings.ensure_data_dir() / "log-key.pem"
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private_file(path, pem.decode())
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key
