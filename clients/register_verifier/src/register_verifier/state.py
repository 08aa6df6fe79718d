"""The verifier's state directory.

Three files, all public data (nothing secret lives here), and a fourth once the log key was handed over::

    log-key         the pinned verifier key, C2SP vkey text, one line
    checkpoint      the last verified checkpoint: the signed note, verbatim bytes
    history.jsonl   one JSON object per successful run: time, size, root, ...
    handovers.json  the key handovers followed, oldest first: a JSON list of the signed notes, verbatim;
                    the first names the key pinned originally, the last the key in log-key

Every write goes to a temporary file in the same directory, is fsynced and
then renamed over the target (``os.replace``), so a crash or a full disk
never leaves a half-written file.  :meth:`State.commit` is the only writer
and is called only after every check of a run passed.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

__all__ = ["StateError", "State", "atomic_write"]

LOG_KEY = "log-key"
HANDOVERS = "handovers.json"
CHECKPOINT = "checkpoint"
HISTORY = "history.jsonl"


class StateError(Exception):
    """The state directory cannot be used (unreadable, not a directory, corrupt)."""


def atomic_write(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same dir, fsync, rename, fsync dir."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)


class State:
    """A verifier state directory (created on first commit)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StateError(f"state path {self.path} exists and is not a directory")

    # -- reading ------------------------------------------------------------

    def _read(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.path / name}: {exc.strerror or exc}") from None

    def read_log_key(self) -> str | None:
        """The pinned vkey, or None before the first successful run."""
        data = self._read(LOG_KEY)
        if data is None:
            return None
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise StateError(f"{self.path / LOG_KEY} is not UTF-8") from None
        if not text or "\n" in text:
            raise StateError(f"{self.path / LOG_KEY} must hold exactly one verifier key line")
        return text

    def read_handovers(self) -> list[bytes]:
        """The handover notes followed so far, oldest first (empty if the pinned key was never handed over)."""
        data = self._read(HANDOVERS)
        if data is None:
            return []
        try:
            notes = json.loads(data)
        except ValueError:
            raise StateError(f"{self.path / HANDOVERS} is not JSON") from None
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise StateError(f"{self.path / HANDOVERS} must be a JSON list of signed notes")
        return [n.encode("utf-8") for n in notes]

    def read_checkpoint(self) -> bytes | None:
        """The last verified checkpoint note (verbatim), or None."""
        return self._read(CHECKPOINT)

    def read_history(self) -> list[dict[str, Any]]:
        data = self._read(HISTORY)
        if not data:
            return []
        out = []
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                raise StateError(f"{self.path / HISTORY} line {n} is not JSON") from None
        return out

    # -- writing ------------------------------------------------------------

    def commit(
        self, *, log_key: str, checkpoint_note: bytes, history_entry: dict[str, Any], handovers: list[bytes] = ()
    ) -> None:
        """Record a successful run: pin the key (if new), store the checkpoint, append history.

        ``handovers`` are the key handovers this run verified and followed (oldest first): only with them is
        the pinned key replaced, by the key the last one names.  Each file is replaced atomically.  The
        handovers are written before the key, the key before the checkpoint and the checkpoint before the
        history line, so an interrupted commit at worst loses a history line, never pairs a checkpoint with
        the wrong key.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            current_key = self.read_log_key()
            if handovers:  # also on a first run whose --log-key the register has since handed over from
                followed = self.read_handovers() + list(handovers)
                text = json.dumps([n.decode("utf-8") for n in followed], indent=1) + "\n"
                atomic_write(self.path / HANDOVERS, text.encode("utf-8"))
                atomic_write(self.path / LOG_KEY, (log_key + "\n").encode("utf-8"))
            elif current_key is None:
                atomic_write(self.path / LOG_KEY, (log_key + "\n").encode("utf-8"))
            elif current_key != log_key:
                raise StateError("refusing to overwrite the pinned log key")
            atomic_write(self.path / CHECKPOINT, checkpoint_note)
            old = self._read(HISTORY) or b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            line = json.dumps(history_entry, sort_keys=True, separators=(",", ":")) + "\n"
            atomic_write(self.path / HISTORY, old + line.encode("utf-8"))
        except OSError as exc:
            raise StateError(f"cannot write to the state dir {self.path}: {exc.strerror or exc}") from None
