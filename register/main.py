"""The application factory."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from register.api.deps import AppState
from register.api.gate import InstitutionGate, Slots
from register.api.middleware import BodyLimitMiddleware, Metrics, RequestContextMiddleware
from register.api.openapi import TAGS, install_openapi
from register.api.problems import install_problem_handlers
from register.api.routes import (
    audit, consents, disputes, events, exposure, health, institutions, me, oauth, obligations, regulator, reports,
    statistics, webhooks,
)
from register.config import Environment, Settings
from register.crypto.dev_idp import DevIdentityProvider
from register.crypto.fields import FieldCipher
from register.crypto.idtoken import IdTokenVerifier, TrustedKey, load_jwks
from register.crypto.keys import KeyProvider, StaticKeys, open_key_source
from register.services.institutions import TokenCache
from register.services.keys import KeyWatcher, open_cipher
from register.services.limits import ExposureLimits
from register.services.dispatch import Dispatcher
from register.services.exposure import lender_pool
from register.services.reports import ReportWorker
from register.services.notices import NoticeWorker
from register.services.webhooks import consumer_from
from register.services.retention import RetentionJob, policy_of
from register.services.translog import Integrator, TransparencyLog
from register.shared import open_counters
from register.storage.db import make_engine, make_read_sessionmaker, make_sessionmaker
from register.web import router as pages_router
from register.web.notice_mail import notifier_of
from register.web.middleware import PageMiddleware, is_page, too_large_page
from register.web.render import http_error_page

UPLOAD_PATHS = ("/v1/reports",)  # bodies of any size, streamed: a route of their own limits
DESCRIPTION = """
An open national debt register. Lenders and collectors report the debts they hold; a lender asks,
with the person's consent, for that person's total exposure; every access is recorded.

Errors are RFC 9457 `application/problem+json` with a stable `code`. Amounts are integers in minor
units with an ISO 4217 currency. National identity numbers are never returned whole.
"""


def trusted_id_keys(settings: Settings) -> list[TrustedKey]:
    """The configured providers' keys, plus the development provider's only when REGISTER_ENV=dev."""
    keys = load_jwks(settings.idp_keys) if settings.idp_keys else []
    if settings.env is Environment.dev:
        keys.append(DevIdentityProvider.load_or_create(settings.ensure_data_dir()).trusted_key())
    return keys


def create_app(settings: Settings | None = None, *, keys: KeyProvider | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url, pool_size=settings.db_pool_size,
                         pool_timeout=settings.db_pool_timeout_seconds,
                         statement_timeout=settings.db_statement_timeout_seconds or None)
    sessions = make_sessionmaker(engine)
    log_keys = open_key_source(settings).log
    read_sessions = make_read_sessionmaker(settings.resolved_database_url, sessions, pool_size=settings.db_pool_size,
                                           pool_timeout=settings.db_pool_timeout_seconds,
                                           statement_timeout=settings.db_statement_timeout_seconds or None)
    tlog = TransparencyLog(
        log_keys.initial(), origin=settings.log_origin, max_merge_delay=settings.max_merge_delay_seconds,
        checkpoint_interval=settings.checkpoint_interval_seconds, keys=log_keys,
    )

    # The counters every server process shares (SPEC section 7, "Processes and hosts"): Redis for several
    # hosts, a file in /dev/shm for one host's workers (`register serve` sets it), else this process's memory.
    counters = open_counters(url=settings.limits_url.get_secret_value() if settings.limits_url else None,
                             file=settings.limits_file, prefix=settings.limits_prefix)
    tokens = TokenCache(settings.token_cache_seconds, counters=counters if counters.shared else None)
    # Keys from the provider are checked against the fingerprints the database recorded (a wrong or missing
    # key stops the start here) and followed while rotations run; keys handed in (tests) are used as given.
    key_watcher = None
    if keys is None:
        cipher, provider = open_cipher(settings, sessions)
        key_watcher = KeyWatcher(sessions, provider, cipher, settings.key_refresh_seconds)
    else:
        cipher = FieldCipher(keys)
    retention_policy = policy_of(settings)  # a bad REGISTER_RETENTION_BY_COUNTRY stops the start here
    worker = (
        ReportWorker(sessions, cipher, allow_test=settings.accept_test_identities,
                     stale=timedelta(seconds=settings.report_stale_seconds),
                     upload_idle=timedelta(seconds=settings.upload_idle_seconds))
        if settings.report_worker else None
    )  # fmt: skip

    # The outbox's dispatcher (services.dispatch): webhooks now; further consumers join its list.
    dispatcher = (Dispatcher(sessions, [consumer_from(settings, cipher)], settings.dispatcher_interval_seconds)
                  if settings.dispatcher else None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tlog.refresh_at_start(sessions)  # the active log key, though it was rotated while this process was down
        integrator = Integrator(tlog, sessions, settings.log_interval_seconds) if settings.log_integrator else None
        retention = (RetentionJob(sessions, retention_policy, settings.retention_interval_seconds)
                     if settings.retention_job else None)
        notifier = (NoticeWorker(notifier_of(settings, sessions, cipher), settings.notice_interval_seconds)
                    if settings.notices else None)
        for background in (key_watcher, tokens, integrator, worker, retention, notifier, dispatcher):
            if background:
                background.start()
        try:
            yield
        finally:
            for background in (dispatcher, notifier, retention, worker, integrator, tokens, key_watcher):
                if background:
                    background.stop()
            if app.state.register.lender_pool is not None:
                await app.state.register.lender_pool.close()
            counters.close()

    # /docs and /redoc are the register's own (register/web/site.py): FastAPI's load their scripts from a CDN.
    # FastAPI's own OpenTelemetry is off: the register's metrics are Prometheus's (/metrics), and with it on
    # FastAPI asked OpenTelemetry for its providers on every request (1.8 % of an exposure answer's time).
    app = FastAPI(title="The register", version="0.1.0", description=DESCRIPTION, openapi_tags=TAGS, lifespan=lifespan,
                  docs_url=None, redoc_url=None, telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.register = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=read_sessions,
        lender_pool=None if counters.remote else lender_pool(
            sessions, size=settings.db_pool_size, timeout=settings.db_pool_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds or None),
        tlog=tlog,
        cipher=cipher,
        report_worker=worker,
        exposure_limits=ExposureLimits(rate=settings.exposure_rate_per_second, burst=settings.exposure_burst,
                                       daily_quota=settings.exposure_daily_quota,
                                       attested_rate=settings.attested_rate_per_second,
                                       attested_daily_quota=settings.attested_daily_quota, counters=counters),
        tokens=tokens,
        admin_token=settings.resolved_admin_token(),
        id_tokens=IdTokenVerifier(trusted_id_keys(settings), audience=settings.audience,
                                  max_lifetime=settings.id_token_max_seconds),
    )
    app.state.metrics = Metrics()
    app.state.dispatcher = dispatcher
    install_problem_handlers(app, page_error=http_error_page, is_page=is_page)  # a page under /app/, /regulator/
    install_openapi(app)
    for module in (health, institutions, oauth, obligations, reports, consents, exposure, me, disputes, audit,
                   statistics, regulator, events, webhooks):
        app.include_router(module.router)
    app.include_router(pages_router)  # the person's pages under /app/, the landing page and the docs (register/web)
    app.add_middleware(exposure.ExposureLane)  # innermost: the lender's question past FastAPI's routing
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout_seconds,
                       streaming_paths=UPLOAD_PATHS, too_large=too_large_page)
    app.add_middleware(PageMiddleware)  # outside the body cap: its 413 for a page gets the pages' headers too
    # Outside the body limit: an institution's slot is held while its body is read (register/api/gate.py).
    app.add_middleware(InstitutionGate, upload_paths=UPLOAD_PATHS,
                       slots=Slots(settings.institution_max_requests, settings.institution_max_uploads, counters))
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app


def openapi_document() -> dict[str, Any]:
    """The document the server serves, built from `create_app` with throwaway settings: it does not
    depend on configuration, keys or a database, so every run writes the same bytes (`register openapi`)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="prod", data_dir=Path(tmp), database_url="sqlite://", admin_token="openapi", idp_keys=None,
            log_key=base64.b64encode(os.urandom(32)).decode(), log_integrator=False, report_worker=False,
            retention_job=False, dispatcher=False,
        )  # fmt: skip
        app = create_app(settings, keys=StaticKeys.generate())
        try:
            return app.openapi()
        finally:
            app.state.register.engine.dispose()
