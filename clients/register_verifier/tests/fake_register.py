"""A fake register for the verifier's tests, served through ``httpx.MockTransport``.

Independent of both the register and the verifier's own proof code: its own
Ed25519 signed-note signer (the C2SP format, replicated from the description
in the register's ``note.py``; not imported) and its own recursive RFC 9162
Merkle tree (MTH / PATH / PROOF, section 2.1), so the verifier is checked
against a second implementation rather than against itself.

Knobs for misbehaviour are plain attributes; see :class:`FakeRegister`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any, Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from register_verifier.client import RegisterClient

BASE_URL = "https://register.test"
ORIGIN = "register.example/audit-log"
TOKEN = "regulator-token"
T0 = 1_750_000_000
MMD = 3600


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------
# Signed notes (c2sp.org/signed-note, Ed25519)
# ---------------------------------------------------------------------------


class Signer:
    """Minimal signed-note signer: key ID = SHA-256(name || 0x0A || 0x01 || pubkey)[:4]."""

    def __init__(self, name: str = ORIGIN, private_key: Ed25519PrivateKey | None = None, seed: bytes | None = None):
        if private_key is None:
            private_key = (
                Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
                if seed is not None
                else Ed25519PrivateKey.generate()
            )
        self.name = name
        self.private_key = private_key
        self.public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = hashlib.sha256(name.encode() + b"\n\x01" + self.public).digest()[:4]

    @property
    def vkey(self) -> str:
        raw = b"\x01" + self.public
        return f"{self.name}+{self.key_id.hex()}+{b64(raw)}"

    def sign(self, body: bytes) -> bytes:
        assert body.endswith(b"\n")
        sig = self.private_key.sign(body)
        return body + b"\n" + f"\u2014 {self.name} {b64(self.key_id + sig)}\n".encode()


def iso(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def checkpoint_body(origin: str, size: int, root: bytes, timestamp: int) -> bytes:
    return f"{origin}\n{size}\n{b64(root)}\nTimestamp: {timestamp}\n".encode()


def receipt_body(origin: str, event_id: str, lh: bytes, timestamp: int, mmd: int) -> bytes:
    return f"{origin}/receipt\n{event_id}\n{b64(lh)}\nTimestamp: {timestamp}\nMax-Merge-Delay: {mmd}\n".encode()


# ---------------------------------------------------------------------------
# RFC 9162 section 2.1, recursive definitions
# ---------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = _split(n)
    return _node(mth(hashes[:k]), mth(hashes[k:]))


def inclusion_path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return inclusion_path(m, hashes[:k]) + [mth(hashes[k:])]
    return inclusion_path(m - k, hashes[k:]) + [mth(hashes[:k])]


def consistency_proof(m: int, hashes: list[bytes]) -> list[bytes]:
    def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = _split(n)
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]

    if m == 0 or m == len(hashes):
        return []
    return subproof(m, hashes, True)


# ---------------------------------------------------------------------------
# The fake register
# ---------------------------------------------------------------------------


def problem(status: int, code: str, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": f"https://register.example/problems/{code}", "title": code.replace("_", " "),
              "status": status, "detail": detail, "code": code},
        headers={"content-type": "application/problem+json"},
    )


class FakeRegister:
    """An honest audit log, plus switches to make it lie.

    * ``leaves``: the logged leaf bytes (the truth the tree is built from).
    * ``publish(...)``: sign a new checkpoint over the current leaves; any of
      size/root/timestamp/origin/signer and the JSON fields can be forced.
    * ``served_leaves[i] = b"..."``: the leaves endpoint serves these bytes
      for index i (tampering with stored leaf data after the fact).
    * ``tamper_consistency`` / ``tamper_inclusion``: flip a byte in proofs.
    * ``hidden_hashes``: lookups by leaf hash answer 404 for these.
    * ``max_page``: the leaves endpoint returns at most this many leaves.
    * ``fail``: ``request -> Response | None`` hook (or raise httpx errors).
    """

    def __init__(self, *, signer: Signer | None = None, mmd: int = MMD, max_page: int = 1000, leaves: int = 0):
        self.signer = signer or Signer(ORIGIN, seed=b"fake register test key")
        self.origin = self.signer.name
        self.mmd = mmd
        self.max_page = max_page
        self.leaves: list[bytes] = []
        self.clock = T0
        self.served_leaves: dict[int, bytes] = {}
        self.tamper_consistency = False
        self.tamper_inclusion = False
        self.hidden_hashes: set[bytes] = set()
        self.fail: Callable[[httpx.Request], httpx.Response | None] | None = None
        self.requests: list[httpx.Request] = []
        self.current: dict[str, Any] = {}
        self.events = 0
        self.key_list: list[dict[str, Any]] | None = None  # GET /v1/audit/log-keys; None: 404 (an older register)
        self.add(leaves)
        self.publish()

    # -- the log ----------------------------------------------------------

    @property
    def vkey(self) -> str:
        return self.signer.vkey

    def hashes(self, size: int | None = None) -> list[bytes]:
        """Leaf hashes of the first ``size`` logged leaves (recomputed: ``leaves`` may be edited in place)."""
        return [leaf_hash(d) for d in self.leaves[: len(self.leaves) if size is None else size]]

    def log_event(self, event_id: str | None = None, occurred: int | None = None) -> bytes:
        self.events += 1
        event_id = event_id or f"evt-{self.events:06d}"
        data = json.dumps(
            {"event_id": event_id, "occurred_at": occurred or self.clock, "action": "exposure.read"},
            sort_keys=True,
        ).encode()
        self.leaves.append(data)
        return data

    def add(self, n: int) -> None:
        for _ in range(n):
            self.log_event()

    def publish(
        self,
        *,
        size: int | None = None,
        root: bytes | None = None,
        timestamp: int | None = None,
        origin: str | None = None,
        signer: Signer | None = None,
        json_overrides: dict[str, Any] | None = None,
        advance: int = 60,
    ) -> dict[str, Any]:
        if timestamp is None:
            self.clock += advance
            timestamp = self.clock
        size = len(self.leaves) if size is None else size
        root = mth(self.hashes(size)) if root is None else root
        note = (signer or self.signer).sign(checkpoint_body(origin or self.origin, size, root, timestamp))
        self.current = {"size": size, "root_hash": b64(root), "timestamp": timestamp, "note": note.decode()}
        self.current.update(json_overrides or {})
        return self.current

    def receipt(
        self,
        event_id: str | None = None,
        *,
        logged: bool = True,
        at: int | None = None,
        mmd: int | None = None,
        signer: Signer | None = None,
    ) -> dict[str, Any]:
        """An access with its signed receipt; ``logged=False`` signs it but never logs it (dropped)."""
        at = self.clock if at is None else at
        mmd = self.mmd if mmd is None else mmd
        if logged:
            data = self.log_event(event_id, at)
        else:
            self.events += 1
            data = json.dumps({"event_id": event_id or f"evt-{self.events:06d}", "occurred_at": at}).encode()
        event_id = json.loads(data)["event_id"]
        lh = leaf_hash(data)
        note = (signer or self.signer).sign(receipt_body(self.origin, event_id, lh, at, mmd))
        return {
            "event_id": event_id,
            "leaf_hash": b64(lh),
            "occurred_at": iso(at),
            "max_merge_delay_seconds": mmd,
            "note": note.decode(),
        }

    def rotate(self, new: Signer, *, handover_by: Signer | None = None, cosigner: Signer | None = None,
               note: bytes | None = None) -> bytes:
        """Hand the log over to ``new`` as the register does: the old key signs a last checkpoint and the
        handover; ``new`` signs from then on.  ``handover_by``/``cosigner``/``note`` forge the statement."""
        from register_verifier.handover import Handover

        old = self.signer
        self.publish()
        body = Handover(self.origin, old.vkey, new.vkey, len(self.leaves), self.clock).to_body()
        if note is None:
            a, b = (handover_by or old).sign(body), (cosigner or new).sign(body)
            note = a + b[len(body) + 1:]
        if self.key_list is None:
            self.key_list = [{"vkey": old.vkey, "state": "active", "from_size": 0, "handover": None}]
        self.key_list[-1]["state"] = "retired"
        self.key_list.append({"vkey": new.vkey, "state": "active", "from_size": len(self.leaves),
                              "handover": note.decode()})
        self.signer = new
        self.publish()
        return note

    # -- HTTP ---------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, token: str | None = TOKEN) -> RegisterClient:
        return RegisterClient(BASE_URL, token, transport=self.transport())

    def factory(self, url: str, token: str | None) -> RegisterClient:
        return RegisterClient(url, token, transport=self.transport())

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            answer = self.fail(request)
            if answer is not None:
                return answer
        path = request.url.path
        q = request.url.params
        if path == "/v1/audit/log-key":
            return httpx.Response(200, json={
                "origin": self.origin, "vkey": self.vkey, "algorithm": "Ed25519",
                "public_key": b64(self.signer.public), "max_merge_delay_seconds": self.mmd,
            })
        if path == "/v1/audit/log-keys" and self.key_list is not None:
            return httpx.Response(200, json={"origin": self.origin, "active": self.key_list[-1]["vkey"],
                                             "keys": self.key_list})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return problem(401, "unauthenticated", "missing or wrong bearer token")
        try:
            if path == "/v1/audit/checkpoint":
                return httpx.Response(200, json=self.current)
            if path == "/v1/audit/proof/consistency":
                return self._consistency(int(q["first"]), int(q["second"]))
            if path == "/v1/audit/proof/inclusion":
                if "leaf_hash" in q:
                    return self._inclusion_by_hash(base64.b64decode(q["leaf_hash"], validate=True), int(q["tree_size"]))
                return self._inclusion(int(q["leaf_index"]), int(q["tree_size"]))
            if path == "/v1/audit/leaves":
                return self._leaves(int(q["start"]), int(q["end"]))
        except (KeyError, ValueError) as exc:
            return problem(400, "bad_request", f"bad query: {exc}")
        return problem(404, "not_found", f"no route {path}")

    def _consistency(self, first: int, second: int) -> httpx.Response:
        if not 0 <= first <= second <= len(self.leaves):
            return problem(400, "bad_request", "bad sizes")
        proof = consistency_proof(first, self.hashes(second))
        if self.tamper_consistency and proof:
            proof[-1] = bytes([proof[-1][0] ^ 1]) + proof[-1][1:]
        return httpx.Response(200, json={"first": first, "second": second, "proof": [b64(p) for p in proof]})

    def _inclusion(self, index: int, size: int) -> httpx.Response:
        if not 0 <= index < size <= len(self.leaves):
            return problem(400, "bad_request", "bad index or size")
        hashes = self.hashes(size)
        proof = inclusion_path(index, hashes)
        if self.tamper_inclusion and proof:
            proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
        return httpx.Response(200, json={
            "leaf_index": index, "tree_size": size, "leaf_hash": b64(hashes[index]), "proof": [b64(p) for p in proof],
        })

    def _inclusion_by_hash(self, lh: bytes, size: int) -> httpx.Response:
        if lh not in self.hidden_hashes:
            for i, h in enumerate(self.hashes(size)):
                if h == lh:
                    return self._inclusion(i, size)
        return problem(404, "not_found", "no leaf with that hash")

    def _leaves(self, start: int, end: int) -> httpx.Response:
        if not 0 <= start < end or end - start > 1000:
            return problem(400, "bad_request", "start/end out of range (at most 1000 leaves)")
        if start >= len(self.leaves):
            return problem(400, "bad_request", "start beyond the log")
        end = min(end, len(self.leaves), start + self.max_page)
        data = [self.served_leaves.get(i, self.leaves[i]) for i in range(start, end)]
        return httpx.Response(200, json={"start": start, "end": end, "leaves": [b64(d) for d in data]})


def snapshot(path) -> dict[str, bytes]:
    """Every file in a directory with its bytes (to prove a failed run changed nothing)."""
    import pathlib

    p = pathlib.Path(path)
    if not p.exists():
        return {}
    return {f.name: f.read_bytes() for f in sorted(p.iterdir())}
