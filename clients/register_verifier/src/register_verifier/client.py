"""A small typed HTTP client for the register's audit-log endpoints.

Only talks HTTP (httpx); knows nothing about the register's code.  Every
method returns a frozen dataclass with the JSON decoded (base64 fields as
``bytes``) or raises a :class:`ClientError`:

* :class:`TransportError` -- could not reach the register (DNS, TCP, TLS, timeout);
* :class:`HTTPStatusError` -- the register answered with an error status
  (RFC 9457 problem+json when it can be parsed);
* :class:`ProtocolError` -- a 2xx answer that is not the JSON the contract
  describes (missing field, wrong type, invalid base64, a page that makes no
  progress).

A :class:`ClientError` means the check could not be *carried out*; it is not
evidence against the log.  Whether what the register said is *true* is
decided in :mod:`register_verifier.verify`.

Pass ``transport=httpx.MockTransport(handler)`` to test against a fake register.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import httpx

__all__ = [
    "MAX_LEAVES_PER_CALL",
    "ClientError",
    "TransportError",
    "HTTPStatusError",
    "ProtocolError",
    "LogKey",
    "LogKeys",
    "CheckpointResponse",
    "ConsistencyProof",
    "InclusionProof",
    "LeafPage",
    "RegisterClient",
]

#: The register serves at most this many leaves per ``/v1/audit/leaves`` call.
MAX_LEAVES_PER_CALL = 1000


class ClientError(Exception):
    """The register could not be asked, or did not answer as the contract says."""


class TransportError(ClientError):
    """The request did not get an HTTP answer (connection refused, DNS, TLS, timeout...)."""


class HTTPStatusError(ClientError):
    """The register answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, problem: Mapping[str, Any] | None) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.problem: dict[str, Any] = dict(problem) if problem else {}
        title = self.problem.get("title") or httpx.codes.get_reason_phrase(status) or "error"
        detail = self.problem.get("detail")
        code = self.problem.get("code")
        msg = f"{method} {path} answered {status} {title}"
        if code:
            msg += f" ({code})"
        if detail and detail != title:
            msg += f": {detail}"
        if status == 401:
            msg += " -- check the regulator token (--token or REGISTER_TOKEN)"
        elif status == 403:
            msg += " -- the token lacks the audit-log scope"
        super().__init__(msg)

    @property
    def code(self) -> str | None:
        code = self.problem.get("code")
        return code if isinstance(code, str) else None


class ProtocolError(ClientError):
    """A 2xx answer that does not have the shape the contract describes."""


# --------------------------------------------------------------------------
# Answer types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogKey:
    """``GET /v1/audit/log-key``."""

    origin: str
    vkey: str
    algorithm: str
    public_key: bytes
    max_merge_delay_seconds: int


@dataclass(frozen=True)
class LogKeys:
    """``GET /v1/audit/log-keys``: every key the log signed with, first to active.  Nothing here is trusted:
    ``handovers`` (the signed notes, in order, None for the first key) are checked by the verifier."""

    origin: str
    active: str
    vkeys: tuple[str, ...]
    handovers: tuple[bytes | None, ...]


@dataclass(frozen=True)
class CheckpointResponse:
    """``GET /v1/audit/checkpoint``.  Only ``note`` is to be trusted (after its signature is checked)."""

    size: int
    root_hash: bytes
    timestamp: int
    note: bytes  # the signed note, verbatim (UTF-8 of the JSON string)


@dataclass(frozen=True)
class ConsistencyProof:
    """``GET /v1/audit/proof/consistency``."""

    first: int
    second: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class InclusionProof:
    """``GET /v1/audit/proof/inclusion`` (by index or by leaf hash)."""

    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class LeafPage:
    """``GET /v1/audit/leaves``: raw leaf bytes for indices ``[start, end)``."""

    start: int
    end: int
    leaves: tuple[bytes, ...]


# --------------------------------------------------------------------------
# JSON field helpers (raise ProtocolError)
# --------------------------------------------------------------------------


def _field(obj: Any, name: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise ProtocolError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise ProtocolError(f"{where}: missing field {name!r}")
    return obj[name]


def _int(obj: Any, name: str, where: str) -> int:
    value = _field(obj, name, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"{where}: field {name!r} must be a non-negative integer, got {value!r}")
    return value


def _str(obj: Any, name: str, where: str) -> str:
    value = _field(obj, name, where)
    if not isinstance(value, str):
        raise ProtocolError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def b64decode_strict(text: str) -> bytes:
    """Standard base64 with padding; raises ValueError on anything else."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def _b64(obj: Any, name: str, where: str) -> bytes:
    value = _str(obj, name, where)
    try:
        return b64decode_strict(value)
    except ValueError:
        raise ProtocolError(f"{where}: field {name!r} is not standard padded base64") from None


def _b64_list(obj: Any, name: str, where: str) -> tuple[bytes, ...]:
    value = _field(obj, name, where)
    if not isinstance(value, list):
        raise ProtocolError(f"{where}: field {name!r} must be a list")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(b64decode_strict(item))
        except ValueError:
            raise ProtocolError(f"{where}: {name}[{i}] is not standard padded base64") from None
    return tuple(out)


def _parse_checkpoint(obj: Any, where: str) -> CheckpointResponse:
    return CheckpointResponse(
        size=_int(obj, "size", where),
        root_hash=_b64(obj, "root_hash", where),
        timestamp=_int(obj, "timestamp", where),
        note=_str(obj, "note", where).encode("utf-8"),
    )


def _parse_inclusion(obj: Any, where: str) -> InclusionProof:
    return InclusionProof(
        leaf_index=_int(obj, "leaf_index", where),
        tree_size=_int(obj, "tree_size", where),
        leaf_hash=_b64(obj, "leaf_hash", where),
        proof=_b64_list(obj, "proof", where),
    )


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


class RegisterClient:
    """Typed access to ``/v1/audit/*``.

    ``base_url`` is the register's root (``https://register.example``; a path
    prefix is kept).  ``token`` is the regulator's bearer token.  Redirects are
    not followed, so the token is never sent to another host.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        user_agent: str | None = None,
    ) -> None:
        from . import __version__

        headers = {
            "Accept": "application/json",
            "User-Agent": user_agent or f"register-verifier/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers=headers,
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
        )

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RegisterClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, Any] | None = None, *, allow_404: bool = False) -> Any:
        """GET and decode JSON.  With ``allow_404``, a 404 ``not_found`` problem returns None."""
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise TransportError(f"GET {path}: cannot reach the register at {self.base_url}: {exc or type(exc).__name__}") from None
        except httpx.InvalidURL as exc:
            raise TransportError(f"invalid register URL {self.base_url!r}: {exc}") from None
        if not response.is_success:
            problem: dict[str, Any] | None = None
            try:
                body = response.json()
                if isinstance(body, dict):
                    problem = body
            except ValueError:
                pass
            err = HTTPStatusError("GET", path, response.status_code, problem)
            if allow_404 and response.status_code == 404 and err.code == "not_found":
                return None
            raise err
        try:
            return response.json()
        except ValueError:
            raise ProtocolError(f"GET {path}: answer is not JSON") from None

    # -- endpoints ----------------------------------------------------------

    def log_key(self) -> LogKey:
        """``GET /v1/audit/log-key`` (no authentication needed)."""
        where = "GET /v1/audit/log-key"
        obj = self._get("/v1/audit/log-key")
        return LogKey(
            origin=_str(obj, "origin", where),
            vkey=_str(obj, "vkey", where),
            algorithm=_str(obj, "algorithm", where),
            public_key=_b64(obj, "public_key", where),
            max_merge_delay_seconds=_int(obj, "max_merge_delay_seconds", where),
        )

    def log_keys(self) -> LogKeys:
        """``GET /v1/audit/log-keys`` (no authentication needed)."""
        where = "GET /v1/audit/log-keys"
        obj = self._get("/v1/audit/log-keys")
        keys = _field(obj, "keys", where)
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise ProtocolError(f"{where}: field 'keys' must be a list of objects")
        handovers = []
        for k in keys:
            note = k.get("handover")
            if note is not None and not isinstance(note, str):
                raise ProtocolError(f"{where}: a key's 'handover' must be a string or null")
            handovers.append(note.encode("utf-8") if note is not None else None)
        return LogKeys(
            origin=_str(obj, "origin", where),
            active=_str(obj, "active", where),
            vkeys=tuple(_str(k, "vkey", where) for k in keys),
            handovers=tuple(handovers),
        )

    def checkpoint(self) -> CheckpointResponse:
        """``GET /v1/audit/checkpoint``: the latest signed checkpoint."""
        return _parse_checkpoint(self._get("/v1/audit/checkpoint"), "GET /v1/audit/checkpoint")

    def checkpoints(self, since: int = 0, limit: int = 100) -> list[CheckpointResponse]:
        """``GET /v1/audit/checkpoints``: published checkpoints with size >= ``since``, ascending."""
        where = "GET /v1/audit/checkpoints"
        obj = self._get("/v1/audit/checkpoints", {"since": since, "limit": limit})
        items = _field(obj, "items", where)
        if not isinstance(items, list):
            raise ProtocolError(f"{where}: field 'items' must be a list")
        return [_parse_checkpoint(item, f"{where} items[{i}]") for i, item in enumerate(items)]

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        """``GET /v1/audit/proof/consistency?first=&second=``."""
        where = "GET /v1/audit/proof/consistency"
        obj = self._get("/v1/audit/proof/consistency", {"first": first, "second": second})
        return ConsistencyProof(
            first=_int(obj, "first", where),
            second=_int(obj, "second", where),
            proof=_b64_list(obj, "proof", where),
        )

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> InclusionProof:
        """``GET /v1/audit/proof/inclusion?leaf_index=&tree_size=``."""
        obj = self._get("/v1/audit/proof/inclusion", {"leaf_index": leaf_index, "tree_size": tree_size})
        return _parse_inclusion(obj, "GET /v1/audit/proof/inclusion")

    def inclusion_proof_by_hash(self, leaf_hash: bytes, tree_size: int) -> InclusionProof | None:
        """``GET /v1/audit/proof/inclusion?leaf_hash=&tree_size=``; None if the log has no such leaf (404 not_found)."""
        params = {"leaf_hash": base64.b64encode(leaf_hash).decode("ascii"), "tree_size": tree_size}
        obj = self._get("/v1/audit/proof/inclusion", params, allow_404=True)
        if obj is None:
            return None
        return _parse_inclusion(obj, "GET /v1/audit/proof/inclusion")

    def leaves(self, start: int, end: int) -> LeafPage:
        """``GET /v1/audit/leaves?start=&end=``: at most ``end - start`` leaves from ``start``.

        Checks the page is well-formed and makes progress: ``start`` echoed,
        ``start < end' <= end`` and ``end' - start`` leaves.
        """
        where = f"GET /v1/audit/leaves?start={start}&end={end}"
        if not 0 <= start < end:
            raise ValueError(f"bad leaf range [{start}, {end})")
        obj = self._get("/v1/audit/leaves", {"start": start, "end": end})
        got_start = _int(obj, "start", where)
        got_end = _int(obj, "end", where)
        leaves = _b64_list(obj, "leaves", where)
        if got_start != start:
            raise ProtocolError(f"{where}: answer starts at {got_start}, not {start}")
        if not start < got_end <= end:
            raise ProtocolError(f"{where}: answer 'end' {got_end} is outside ({start}, {end}] (no progress or too many)")
        if len(leaves) != got_end - got_start:
            raise ProtocolError(f"{where}: answer has {len(leaves)} leaves for range [{got_start}, {got_end})")
        return LeafPage(got_start, got_end, leaves)

    def iter_leaf_pages(self, start: int, end: int, page_size: int = MAX_LEAVES_PER_CALL) -> Iterator[LeafPage]:
        """All leaves in ``[start, end)``, one page (at most ``page_size``, at most 1000) at a time."""
        page_size = max(1, min(page_size, MAX_LEAVES_PER_CALL))
        pos = start
        while pos < end:
            page = self.leaves(pos, min(pos + page_size, end))
            yield page
            pos = page.end
