"""``register-verifier``: the regulator's command-line audit-log verifier.

Exit status: 0 all checks passed; 1 a check FAILED (the evidence is printed);
2 the checks could not be carried out (bad usage, register unreachable or
answering errors, unusable state dir).  No tracebacks (unless ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable, Sequence

from . import __version__
from .client import MAX_LEAVES_PER_CALL, ClientError, RegisterClient
from .state import State, StateError
from .verify import UsageError, VerificationError, load_receipt_file, run_verify

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_ERROR"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2

TOKEN_ENV = "REGISTER_TOKEN"

ClientFactory = Callable[[str, "str | None"], RegisterClient]

_EPILOG = f"""\
exit status:
  0  every check passed; the new checkpoint was stored in the state dir
  1  FAILED: the log or a receipt is provably wrong; the evidence is printed (stderr)
  2  the checks could not be run (usage, connection, HTTP error, state dir);
     nothing was stored

The regulator token is read from --token or, preferably (it stays out of `ps`),
from the {TOKEN_ENV} environment variable.
"""


def _non_negative(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _page_size(text: str) -> int:
    value = _non_negative(text)
    if not 1 <= value <= MAX_LEAVES_PER_CALL:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LEAVES_PER_CALL}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="the register's base URL, e.g. https://register.example")
    p.add_argument("--token", help=f"regulator bearer token (default: ${TOKEN_ENV})")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="state dir: pinned key, last verified checkpoint, history (created if missing)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--log-key", metavar="VKEY",
                     help="the register's published verifier key <name>+<keyid>+<base64>; "
                          "required on the first run, must match the pinned key afterwards")
    key.add_argument("--trust-on-first-use", action="store_true",
                     help="first run only: pin whatever key the register serves (prints a warning)")
    p.add_argument("--leaf-index", metavar="N", type=_non_negative, action="extend", nargs="+", default=[],
                   help="fetch leaf N, hash it and verify its inclusion proof (repeatable)")
    p.add_argument("--receipt", metavar="FILE", action="extend", nargs="+", default=[],
                   help="verify a receipt (JSON) and that its access is in the log (repeatable)")
    p.add_argument("--full", action="store_true",
                   help="download every leaf and recompute the root (streaming, O(log n) memory)")
    p.add_argument("--page-size", type=_page_size, default=MAX_LEAVES_PER_CALL, metavar="N",
                   help=f"leaves per request for --full (default and maximum {MAX_LEAVES_PER_CALL})")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="HTTP timeout (default 30)")
    p.add_argument("--debug", action="store_true", help="show a traceback on internal errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="register-verifier",
        description="Independent verifier of the debt register's signed, append-only audit log.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    verify = sub.add_parser(
        "verify",
        help="verify the latest checkpoint (and optionally leaves, receipts, the whole log)",
        description="Verify the register's latest signed checkpoint against the pinned key and the last "
                    "verified checkpoint; optionally individual leaves, receipts, or every leaf.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(verify)
    receipt = sub.add_parser(
        "receipt",
        help="verify receipts (same as: verify --receipt FILE ...)",
        description="Verify one or more receipts; same as `verify --receipt FILE ...` "
                    "(the checkpoint checks run too).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    receipt.add_argument("files", metavar="FILE", nargs="+", help="receipt JSON file(s)")
    _add_common(receipt)
    return parser


def _default_factory(timeout: float) -> ClientFactory:
    def factory(url: str, token: str | None) -> RegisterClient:
        return RegisterClient(url, token, timeout=timeout)

    return factory


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory | None = None,
    clock: Callable[[], float] | None = None,
) -> int:
    """Run the CLI; returns the exit status.

    ``client_factory(url, token)`` builds the :class:`RegisterClient` (tests
    pass one using ``httpx.MockTransport``); ``clock`` replaces ``time.time``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR

    try:
        return _run(args, client_factory or _default_factory(args.timeout), clock or time.time)
    except KeyboardInterrupt:
        _err("ERROR: interrupted; nothing was stored")
        return EXIT_ERROR
    except Exception as exc:  # a bug: still no traceback unless asked
        if args.debug:
            raise
        _err(f"ERROR: internal error ({type(exc).__name__}: {_one_line(str(exc))}); "
             "nothing was stored; rerun with --debug for a traceback")
        return EXIT_ERROR


def _run(args: argparse.Namespace, factory: ClientFactory, clock: Callable[[], float]) -> int:
    url: str = args.url
    if not url.startswith(("https://", "http://")):
        _err(f"ERROR: --url must be an http(s) URL, got {url!r}")
        return EXIT_ERROR
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not token:
        _err(f"ERROR: no regulator token: pass --token or set {TOKEN_ENV}")
        return EXIT_ERROR
    receipt_files = list(args.receipt) + list(getattr(args, "files", []) or [])
    try:
        receipts = [load_receipt_file(f) for f in receipt_files]
        state = State(args.state)
        with factory(url, token) as client:
            result = run_verify(
                client,
                state,
                log_key=args.log_key,
                trust_on_first_use=args.trust_on_first_use,
                leaf_indices=args.leaf_index,
                receipts=receipts,
                full=args.full,
                page_size=args.page_size,
                now=clock,
                warn=_err,
            )
    except VerificationError as exc:
        _err(f"FAILED: {_one_line(exc.message)}")
        _err("evidence: " + json.dumps(exc.evidence, indent=2, sort_keys=True, ensure_ascii=False))
        _err("The stored checkpoint was not changed.")
        return EXIT_FAILED
    except (UsageError, ClientError, StateError) as exc:
        _err(f"ERROR: {_one_line(str(exc))}")
        return EXIT_ERROR
    print(result.summary(), flush=True)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
