from __future__ import annotations

import base64
import json
import stat

import pytest

from register.config import Settings
from register.crypto.keys import load_keys


class TestLoadKeys:
    def test_key_file_created_0600_and_reused(self, tmp_path):
        settings = Settings(data_dir=tmp_path)
        first = load_keys(settings)
        path = tmp_path / "keys.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert load_keys(settings) == first

    def test_keys_from_env(self, tmp_path):
        enc = base64.b64encode(b"\x01" * 32).decode()
        blind = base64.b64encode(b"\x02" * 32).decode()
        settings = Settings(data_dir=tmp_path, encryption_keys=json.dumps({"3": enc}), blind_index_key=blind)
        keys = load_keys(settings)
        assert keys.current_encryption_version() == 3 and keys.blind == b"\x02" * 32
        assert not (tmp_path / "keys.json").exists()

    def test_half_configured_env_is_refused(self, tmp_path):
        with pytest.raises(ValueError):
            load_keys(Settings(data_dir=tmp_path, blind_index_key=base64.b64encode(b"\x02" * 32).decode()))
