"""`register`: the operator's command line."""

from __future__ import annotations

import argparse
import errno
import json
import shlex
import socket
import sys
from collections.abc import Sequence

from register.cli_keys import add_parser as add_keys_commands, keys_refused_as_message
from register.cli_ha import add_parser as add_ha_commands
from register.cli_notices import add_parser as add_notices_commands
from register.cli_events import add_parser as add_events_commands
from register.cli_retention import add_parser as add_retention_commands
from register.config import Settings


def _settings() -> Settings:
    return Settings()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from register.storage.migrate import upgrade

    upgrade(_settings().resolved_database_url, args.revision)
    print(f"database at {args.revision}", file=sys.stderr)
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from register.storage.migrate import downgrade

    downgrade(_settings().resolved_database_url, args.revision)
    return 0


def cmd_institutions_add(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from register.domain.permission import Role
    from register.services.institutions import create_institution
    from register.storage.db import make_engine, make_sessionmaker

    settings = _settings()
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    with make_sessionmaker(engine).begin() as session:
        inst, token = create_institution(
            session, name=args.name, role=Role(args.role), org_number=args.org_number, country=args.country,
            now=datetime.now(UTC),
        )
        out = {"id": inst.id, "name": inst.name, "role": inst.role, "token": token}
    engine.dispose()
    print(json.dumps(out, indent=2))
    print("The token is shown once: the register keeps only its hash.", file=sys.stderr)
    return 0


def cmd_institutions_add_key(args: argparse.Namespace) -> int:
    """Register a public key (PEM, or a JWK as JSON) an institution signs its OAuth client assertions with."""
    from datetime import UTC, datetime

    from register.domain.permission import Principal, Role
    from register.errors import RegisterError
    from register.services.credentials import add_institution_key
    from register.storage.db import make_engine, make_sessionmaker

    text = args.public_key.read()
    try:
        jwk, pem = (json.loads(text), None) if text.lstrip().startswith("{") else (None, text)
    except json.JSONDecodeError:
        print("register: the key file is neither PEM nor a JWK in JSON", file=sys.stderr)
        return 1
    engine = make_engine(_settings().resolved_database_url, pool_size=1)
    try:
        with make_sessionmaker(engine).begin() as session:
            key = add_institution_key(
                session, principal=Principal(role=Role.admin, name="operator"), institution_id=args.institution,
                jwk=jwk, pem=pem, kid=args.kid, now=datetime.now(UTC),
            )  # fmt: skip
            out = {"institution_id": key.institution_id, "kid": key.kid, "algorithm": key.algorithm,
                   "thumbprint": key.thumbprint}  # fmt: skip
    except RegisterError as exc:
        print(f"register: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(json.dumps(out, indent=2))
    return 0


def cmd_dev_idp_token(args: argparse.Namespace) -> int:
    """Sign a consumer ID token with the development identity provider (trusted only in REGISTER_ENV=dev)."""
    from register.config import Environment
    from register.crypto.dev_idp import DevIdentityProvider
    from register.domain.identity import InvalidNationalId, parse_national_id

    settings = _settings()
    if settings.env is not Environment.dev:
        print("the development identity provider is only trusted in REGISTER_ENV=dev", file=sys.stderr)
        return 2
    try:
        parse_national_id(args.country, args.national_id, allow_test=settings.accept_test_identities)
    except InvalidNationalId as exc:
        print(f"not a valid {args.country} identity number: {exc.reason}", file=sys.stderr)
        return 2
    idp = DevIdentityProvider.load_or_create(settings.ensure_data_dir())
    print(idp.issue(country=args.country, national_id=args.national_id, audience=settings.audience, ttl=args.ttl))
    return 0


def _log_context():  # noqa: ANN202
    from register.crypto.keys import open_key_source
    from register.services.translog import TransparencyLog
    from register.storage.db import make_engine, make_sessionmaker

    settings = _settings()
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    keys = open_key_source(settings).log
    tlog = TransparencyLog(keys.initial(), origin=settings.log_origin, max_merge_delay=settings.max_merge_delay_seconds,
                           checkpoint_interval=settings.checkpoint_interval_seconds, keys=keys)
    return engine, make_sessionmaker(engine), tlog


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Recompute every leaf, the tree, every node and every checkpoint; exit 1 on the first mismatch."""
    from register.services.log_check import verify_log

    engine, sessions, tlog = _log_context()
    try:
        with sessions() as session:
            report = verify_log(session, tlog)
    finally:
        engine.dispose()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not report.ok:
        print(f"FAILED: {report.problems[0]}")
        for problem in report.problems[1:10]:
            print(f"  also: {problem}")
        return 1
    print(f"ok: {report.leaves} leaves re-encoded from their events, {report.nodes_checked} subtree nodes and "
          f"{report.checkpoints} signed checkpoints verified")
    return 0


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    """Integrate pending events now and sign a checkpoint."""
    from register.services.translog import latest

    engine, sessions, tlog = _log_context()
    try:
        n = tlog.run_once(sessions, force_checkpoint=True)
        with sessions() as session:
            cp = latest(session)
    finally:
        engine.dispose()
    print(f"integrated {n} events", file=sys.stderr)
    print(cp.note, end="")
    return 0


def cmd_log_integrator(args: argparse.Namespace) -> int:
    """Run the integrator as its own process (instead of the server's background thread)."""
    import time

    engine, sessions, tlog = _log_context()
    print(f"integrating every {args.interval} s; Ctrl-C to stop", file=sys.stderr)
    try:
        while True:
            tlog.run_once(sessions)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        engine.dispose()


def cmd_seed(args: argparse.Namespace) -> int:
    """Generate a synthetic population and load it through the batch reporting path (or write it as
    report files with --files)."""
    from pathlib import Path

    from register.services.keys import open_cipher
    from register.services.seed import population_prefix, seed_population, write_files
    from register.storage.db import make_engine, make_sessionmaker
    from register.storage.migrate import upgrade

    settings = _settings()
    url = settings.resolved_database_url
    prefix = population_prefix(persons=args.persons, seed=args.seed, country=args.country)
    upgrade(url)
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        if args.files:
            paths = write_files(Path(args.files), persons=args.persons, seed=args.seed, country=args.country,
                                fmt=args.format, sessions=sessions, ref_prefix=prefix)
            print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
            return 0

        def progress(r) -> None:  # noqa: ANN001
            print(f"\r{r.lines:>12,} lines  {r.accepted:>12,} accepted  {r.rejected:,} rejected", end="",
                  file=sys.stderr)

        result = seed_population(sessions, open_cipher(settings, sessions)[0], persons=args.persons, seed=args.seed,
                                 country=args.country, allow_test=settings.accept_test_identities, progress=progress,
                                 ref_prefix=prefix)
    finally:
        engine.dispose()
    print(file=sys.stderr)
    print(json.dumps({"persons": result.persons, "lines": result.lines, "accepted": result.accepted,
                      "rejected": result.rejected, "seconds": round(result.seconds, 1),
                      "lines_per_second": round(result.lines / result.seconds) if result.seconds else None,
                      "institutions": result.tokens, "first_errors": result.first_errors}, indent=2))
    return 0 if result.rejected == 0 else 1


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, or None. Asked before anything is loaded or printed,
    so a second server on a busy port says so at once instead of announcing itself and then failing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no use
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use; stop what uses it or pass --port"
            return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    return None


def _refuse_busy_port(host: str, port: int) -> bool:
    if (reason := _cannot_listen(host, port)) is None:
        return False
    print(reason, file=sys.stderr)
    return True


def _serve(settings: Settings, host: str, port: int, banner: str | None = None, workers: int | None = None) -> int:
    if _refuse_busy_port(host, port):
        return 1
    import uvicorn

    from register.api.protocol import HeaderTimeoutProtocol
    from register.logs import configure_logging
    from register.main import create_app
    from register.server import default_workers, run_workers

    workers = workers or settings.workers or default_workers()

    configure_logging(settings.log_level)
    print(f"\nThe register is listening on http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs), "
          f"{workers} server process{'es' if workers > 1 else ''}", file=sys.stderr)
    if banner:
        print(banner, file=sys.stderr)
    # Deadlines on every read from a client (SPEC section 8): headers (the protocol), idle keep-alive
    # connections (uvicorn), and each piece of a body (the app's middleware).
    server = {"host": host, "port": port, "log_config": None, "access_log": False,
              "http": HeaderTimeoutProtocol, "timeout_keep_alive": settings.keep_alive_seconds}
    if workers > 1:  # each worker process builds its own app from the same REGISTER_* environment
        run_workers(settings, workers, server)
    else:
        uvicorn.run(create_app(settings), **server)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    banner = None
    if settings.admin_token is None:
        banner = f"Admin token (kept in {settings.data_dir / 'admin-token'}): {settings.resolved_admin_token()}"
    return _serve(settings, args.host, args.port, banner, workers=args.workers)


def cmd_demo(args: argparse.Namespace) -> int:
    """Migrate, load demo data on first start (or say what the data holds), print tokens and example
    requests, write them for a shell, then serve."""
    from register.crypto.keys import open_key_source
    from register.demo import load_demo_info, seed_demo, shell_file, write_demo_files
    from register.services.keys import open_cipher
    from register.services.translog import TransparencyLog
    from register.storage.db import make_engine, make_sessionmaker
    from register.storage.migrate import upgrade
    from register.storage.summary import count_contents

    if _refuse_busy_port(args.host, args.port):  # before migrating and loading the demo data
        return 1
    settings = _settings()
    url = settings.resolved_database_url
    upgrade(url)
    info = load_demo_info(settings)
    engine = make_engine(url, pool_size=1)
    try:
        if info is None:
            print("Loading demo data (first start)...", file=sys.stderr)
            tlog = TransparencyLog(open_key_source(settings).log.initial(), origin=settings.log_origin,
                                   max_merge_delay=settings.max_merge_delay_seconds,
                                   checkpoint_interval=settings.checkpoint_interval_seconds)
            sessions = make_sessionmaker(engine)  # the keys checked against the database's fingerprints, as serve does
            cipher = open_cipher(settings, sessions)[0]
            with sessions.begin() as session:
                info = seed_demo(session, cipher, settings, tlog, persons=args.persons)
            since = "loaded now"
        else:
            afresh = f"delete {settings.data_dir}" if settings.database_url is None else \
                f"delete {settings.data_dir / 'demo.json'} and empty the database"
            since = f"kept from an earlier start; to start afresh, stop the register and {afresh}"
        with make_sessionmaker(engine)() as session:
            held = count_contents(session)
    finally:
        engine.dispose()
    base = f"http://{args.host}:{args.port}"
    info.url = base
    write_demo_files(settings, info)
    lender = info.institutions["nordbank"]["token"]
    lines = [
        "",
        "=== Demo register ===",
        f"Data: {held.institutions} institutions, {held.persons} persons, {held.obligations} obligations, "
        f"{held.open_disputes} open disputes ({since})",
        f"Admin token:      {settings.resolved_admin_token()}",
        *(f"{v['role']:<10} {v['name']:<28} token: {v['token']}" for v in info.institutions.values()),
        f"The address, these ids and tokens and the walk-through persons, for a shell: "
        f". {shlex.quote(str(shell_file(settings)))}",
        "",
        "Try:",
        f"  curl -s -H 'Authorization: Bearer {lender}' '{base}/v1/obligations?limit=2'",
        f"  curl -s -X PUT -H 'Authorization: Bearer {lender}' -H 'Content-Type: application/json' \\",
        f"       {base}/v1/obligations/LOAN-1 -d '{_example_body(info.persons[0])}'",
        f"  curl -s -H 'Authorization: Bearer {settings.resolved_admin_token()}' {base}/v1/institutions",
        "",
        "With the institution CLI (README: 'A loan application, start to finish'):",
        f"  export REGISTER_URL={base} REGISTER_TOKEN={lender}",
        f"  {_installed('register-client')} obligations list",
        f"Walk-through persons (synthetic; no consents in the demo data): {', '.join(info.persons[:3])}",
        "",
        "Signing in with a key pair (README: 'Signing in as a bank'): client assertions go to",
        f"  {base}/v1/oauth/token with aud = {settings.resolved_oauth_audience}",
        f"  (REGISTER_OAUTH_AUDIENCE; also in {base}/.well-known/oauth-authorization-server)",
        "",
        f"The person's pages: {base}/app/  (sign in as a demo person)",
    ]
    return _serve(settings, args.host, args.port, "\n".join(lines), workers=args.workers)


def _installed(script: str) -> str:
    """How to run one of this installation's commands from the current directory: by name when it is on
    PATH, else by its path (`make run` does not activate .venv, so `register-client` alone is not found)."""
    import os
    import shutil
    from pathlib import Path

    path = Path(sys.executable).parent / script
    if not path.exists():
        return f"{script}  # (not installed: pip install './clients/register_client[cli]')"
    found = shutil.which(script)
    if found and Path(found).resolve() == path.resolve():
        return script
    relative = os.path.relpath(path)
    return shlex.quote(str(path) if relative.startswith("..") else relative)


def _example_body(national_id: str) -> str:
    return json.dumps({
        "kind": "instalment_loan", "currency": "SEK", "balance": 4500000, "original_amount": 5000000,
        "monthly_payment": 120000, "interest_rate_bp": 790, "status": "current",
        "debtors": [{"country": "SE", "national_id": national_id, "role": "primary"}],
        "registration_consent": {"reference": "AGR-1", "given_at": "2026-01-10T09:00:00Z", "method": "e_signature"},
        "as_of": "2026-11-01T00:00:00Z",
    }, separators=(",", ":"))  # fmt: skip


def cmd_openapi(args: argparse.Namespace) -> int:
    """Write the OpenAPI document the server serves (sorted keys, indent 2): what `openapi.json` holds."""
    from pathlib import Path

    from register.api.openapi import dump
    from register.main import openapi_document

    text = dump(openapi_document())
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _count_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 10**10:
        raise argparse.ArgumentTypeError("must be a whole number from 0 to 9999999999")
    return value


WORKERS_HELP = "server processes (default: REGISTER_WORKERS, else one per core)"


def _workers_arg(text: str) -> int:
    value = _count_arg(text)
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError("must be from 1 to 1024")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="register", description="The register: operator commands.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=_workers_arg, default=None, help=WORKERS_HELP)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="migrate, load demo data on first start, then serve")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    demo.add_argument("--persons", type=int, default=300, help="demo consumers to create on first start (default 300)")
    demo.add_argument("--workers", type=_workers_arg, default=None, help=WORKERS_HELP)
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate to a revision (default head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    down = db.add_parser("downgrade", help="migrate down to a revision")
    down.add_argument("revision")
    down.set_defaults(func=cmd_db_downgrade)

    inst = sub.add_parser("institutions", help="institutions").add_subparsers(dest="inst_command", required=True)
    add = inst.add_parser("add", help="register an institution and print its token once")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=["lender", "collector", "regulator"])
    add.add_argument("--org-number", default=None)
    add.add_argument("--country", default=None)
    add.set_defaults(func=cmd_institutions_add)
    add_key = inst.add_parser("add-key", help="register a public key (Ed25519 or P-256) for OAuth sign-in")
    add_key.add_argument("--institution", required=True, metavar="ID")
    add_key.add_argument("--public-key", required=True, type=argparse.FileType("r"), metavar="FILE",
                         help="PEM (-----BEGIN PUBLIC KEY-----) or a JWK as JSON; never the private key")
    add_key.add_argument("--kid", default=None, help="default: the JWK's kid, else the RFC 7638 thumbprint")
    add_key.set_defaults(func=cmd_institutions_add_key)

    seed = sub.add_parser("seed", help="load a synthetic population through the batch reporting path",
                          description="Each population's external refs start with <country><persons>-<seed>. "
                                      "(e.g. SE1000-1.NORDBANK-00000042): populations of other sizes, seeds or "
                                      "countries loaded into one register never meet; the same one again "
                                      "changes nothing.")
    seed.add_argument("--persons", type=_count_arg, required=True, help="how many synthetic adults")
    seed.add_argument("--seed", type=_count_arg, default=1, help="the random seed (default 1)")
    seed.add_argument("--country", default="SE", choices=["SE", "NO", "FI", "DK", "PL"])
    seed.add_argument("--files", metavar="DIR", help="write report files (one per institution) instead of loading")
    seed.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    seed.set_defaults(func=cmd_seed)

    idp = sub.add_parser("dev-idp", help="the development identity provider").add_subparsers(
        dest="idp_command", required=True
    )
    tok = idp.add_parser("token", help="print a signed consumer ID token")
    tok.add_argument("--country", required=True)
    tok.add_argument("--national-id", required=True)
    tok.add_argument("--ttl", type=int, default=600,
                     help="seconds (default 600; the register refuses more than REGISTER_ID_TOKEN_MAX_SECONDS)")
    tok.set_defaults(func=cmd_dev_idp_token)

    oa = sub.add_parser("openapi", help="write the OpenAPI document the server serves")
    oa.add_argument("--output", metavar="FILE", help="default: standard output")
    oa.set_defaults(func=cmd_openapi)

    audit = sub.add_parser("audit", help="the verifiable access log").add_subparsers(dest="audit_command", required=True)
    av = audit.add_parser("verify", help="recompute every leaf, node and checkpoint; exit 1 on a mismatch")
    av.set_defaults(func=cmd_audit_verify)
    ac = audit.add_parser("checkpoint", help="integrate pending events and sign a checkpoint now")
    ac.set_defaults(func=cmd_audit_checkpoint)
    ai = audit.add_parser("integrate", help="run the log integrator as its own process")
    ai.add_argument("--interval", type=float, default=1.0)
    ai.set_defaults(func=cmd_log_integrator)
    for add_commands in (add_retention_commands, add_keys_commands, add_ha_commands, add_notices_commands,
                         add_events_commands):
        add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with keys_refused_as_message():  # keys that are not the database's: a message and exit 2, not a trace
        return args.func(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
