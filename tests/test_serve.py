"""`register serve` and `register demo` on a port something else holds: they say so and exit 1 at once,
without announcing that they listen and without touching the database. The CLI runs as an operator runs
it, in a process of its own, against a real socket holding the port."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import ROOT, environment


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def run(command: str, port: int, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = environment(f"sqlite:///{data_dir / 'register.db'}", data_dir)
    return subprocess.run([sys.executable, "-m", "register.cli", command, "--port", str(port)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


class TestABusyPort:
    @pytest.mark.parametrize("command", ["serve", "demo"])
    def test_is_named_and_the_command_exits_1_without_claiming_to_listen(self, command, held_port, tmp_path):
        done = run(command, held_port, tmp_path)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip() == f"port {held_port} on 127.0.0.1 is in use; stop what uses it or pass --port"
        assert "listening" not in done.stderr + done.stdout
        assert not (tmp_path / "register.db").exists()  # nothing migrated, no demo data loaded

