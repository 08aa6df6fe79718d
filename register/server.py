"""The register as several server processes on one host (SPEC section 7, "Processes and hosts").

`register serve` is the supervisor: it does the first start's work once (the key and token files the
workers would otherwise race to create, and the file the workers share their limits in), then uvicorn
starts the workers, each of which builds its own application (`worker_app`) from the same REGISTER_*
environment. A worker whose supervisor has died (killed, so it could not stop them) stops itself within
a second, rather than serve on, unsupervised, on a port its supervisor no longer holds.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from register.config import Settings

ORPHAN_CHECK_SECONDS = 1.0
ORPHAN_GRACE_SECONDS = 30.0


def default_workers() -> int:
    """One server process per core this process may run on (its CPU affinity, else every core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def prepare_workers(settings: Settings) -> Path | None:
    """The first start's work, done once before the workers start. Unless REGISTER_LIMITS_URL or
    REGISTER_LIMITS_FILE names one, a new limits file for this supervisor's workers is created and named
    to them in the environment they inherit; returned, to be removed when the supervisor ends."""
    from register.crypto.log_key import load_log_key
    from register.main import trusted_id_keys
    from register.services.keys import check_start_keys
    from register.shared import mapped_file

    settings.resolved_admin_token()
    load_log_key(settings)
    check_start_keys(settings)  # creates the key file on the first start; refuses keys the data is not under
    trusted_id_keys(settings)
    if settings.limits_url is not None or settings.limits_file is not None:
        return None
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path = mapped_file.default_path(settings.ensure_data_dir(), tag)
    mapped_file.remove_abandoned(path.parent)
    mapped_file.create(path)
    os.environ["REGISTER_LIMITS_FILE"] = str(path)
    return path


def run_workers(settings: Settings, workers: int, server: dict[str, Any]) -> None:
    import uvicorn

    created = prepare_workers(settings)
    try:
        uvicorn.run("register.server:worker_app", factory=True, workers=workers, **server)
    finally:
        if created is not None:
            created.unlink(missing_ok=True)


def worker_app() -> FastAPI:
    """uvicorn's factory, called in each worker process."""
    from register.logs import configure_logging
    from register.main import create_app

    settings = Settings()
    configure_logging(settings.log_level)
    exit_with_parent(os.getppid())
    return create_app(settings)


def exit_with_parent(parent: int) -> None:
    """Stop this process (SIGTERM: uvicorn's graceful shutdown) once `parent` is no longer its parent."""

    def watch() -> None:
        pause = threading.Event()
        while os.getppid() == parent:
            pause.wait(ORPHAN_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)
        pause.wait(ORPHAN_GRACE_SECONDS)  # still here: a request that does not end
        os._exit(1)

    threading.Thread(target=watch, name="orphan-check", daemon=True).start()
