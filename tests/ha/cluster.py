"""The HA topology of `register ha up` (register/ha.py) for tests: a module's cluster, and the register
served on its multi-host URL."""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from register import ha
from register.storage.migrate import upgrade
from tests.ha.postgres import need, scratch


def free_base_port() -> int:
    """A P with P..P+22 free (etcd, three PostgreSQL, three REST APIs)."""
    for _ in range(50):
        base = random.randrange(20000, 40000, 100)
        try:
            for port in (base, base + 1, *range(base + 10, base + 13), *range(base + 20, base + 23)):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports for an HA cluster")


@dataclass
class Cluster:
    dir: Path
    layout: ha.Layout

    @property
    def url(self) -> str:
        return self.layout.database_url()

    def leader(self) -> str:
        return next(name for name, role in ha.wait_ready(self.layout, members=2).items() if role == "leader")


@contextmanager
def ha_cluster() -> Iterator[Cluster]:
    need("patroni", "etcd")
    parent = scratch()
    root = parent / "ha"
    try:
        ha.up(root, base_port=free_base_port())
        layout, _ = ha.load(root)
        upgrade(layout.database_url())
        yield Cluster(root, layout)
    finally:
        if (root / "ha.json").exists():
            ha.down(root)
        shutil.rmtree(parent, ignore_errors=True)


def data_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="register-ha-data-"))
    os.chmod(path, 0o700)
    return path
