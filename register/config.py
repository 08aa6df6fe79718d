"""One Settings object, read from `REGISTER_*` environment variables and validated at startup."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmtpTls(StrEnum):
    none = "none"  # plain SMTP (a relay on the same host, or the tests' server)
    starttls = "starttls"  # plain connection upgraded with STARTTLS (port 587)
    tls = "tls"  # TLS from the first byte (port 465)


class Environment(StrEnum):
    dev = "dev"
    prod = "prod"


# Settings that may instead be read from a file named by REGISTER_<NAME>_FILE (Docker and Kubernetes
# mount secrets as files, and a value in the environment shows in `docker inspect` and /proc).
SECRET_FILES = ("database_url", "admin_token", "encryption_keys", "blind_index_key", "log_key")
# Secrets only some deployments have (docker-compose does not mount them by default).
OPTIONAL_SECRET_FILES = ("oidc_client_secret", "staff_oidc_client_secret", "limits_url", "blind_index_keys",
                         "smtp_password")
FILE_HELP = "A file holding the value (surrounding whitespace stripped); instead of the setting itself"


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error must not print a key or a password it was given.
    model_config = SettingsConfigDict(env_prefix="REGISTER_", extra="ignore", frozen=True, hide_input_in_errors=True)

    env: Environment = Environment.dev
    data_dir: Path = Path(".register")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: a SQLite file in data_dir. PostgreSQL: postgresql+psycopg://...",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Operator token. If unset, one is generated, kept in data_dir and printed."
    )
    # Key material. If unset, a key file in data_dir (mode 0600) is used, created on first start.
    encryption_keys: SecretStr | None = Field(
        default=None, description='JSON {"<version>": "<base64 32 bytes>", ...}; the highest version encrypts.'
    )
    blind_index_key: SecretStr | None = Field(default=None, description="base64 of 32 bytes")
    blind_index_keys: SecretStr | None = Field(
        default=None, description='JSON {"<version>": "<base64 32 bytes>", ...}: versioned blind-index keys'
    )
    key_refresh_seconds: float = Field(default=2.0, gt=0, le=60,
                                       description="How often a server process rereads the key versions")
    accept_test_identities: bool = Field(
        default=False,
        description="Accept official test ranges of national identity numbers (NO month+80, FI 900-999).",
    )
    idp_keys: Path | None = Field(
        default=None, description="JWKS file of trusted identity providers' keys (each JWK with kid and iss)"
    )
    audience: str = Field(default="register", description="The `aud` consumer ID tokens must carry")
    # Never below 600: the development provider's tokens live that long (register.crypto.dev_idp.TTL_SECONDS).
    id_token_max_seconds: int = Field(
        default=3600, ge=600, le=86_400,
        description="Longest lifetime (exp - iat) of a consumer ID token; longer ones, and ones without iat, "
        "are refused",
    )
    oauth_audience: str | None = Field(
        default=None,
        description="The `aud` institutions' client assertions must carry. Default: the token endpoint's URL "
        "on the host of log_origin, https://<host>/v1/oauth/token",
    )
    access_token_seconds: int = Field(default=300, ge=30, le=3600,
                                      description="Lifetime of an OAuth access token from POST /v1/oauth/token")
    log_key: SecretStr | None = Field(default=None, description="base64 of the log's Ed25519 seed (32 bytes)")
    key_source: str | None = Field(
        default=None, description="package.module:factory returning a register.crypto.keys.KeySource (a KMS or HSM "
                                  "for every key); unset: key files in the data dir, or the environment")
    log_origin: str = Field(default="register.local/access-log", pattern=r"^[^\s+]+$",
                            description="The log's name: first line of every checkpoint, name of its key")
    log_integrator: bool = Field(default=True, description="Integrate events into the tree in a background thread")
    log_interval_seconds: float = Field(default=1.0, gt=0, description="How often the integrator runs")
    checkpoint_interval_seconds: float = Field(default=5.0, gt=0, description="A new checkpoint at most this often")
    max_merge_delay_seconds: int = Field(default=10, gt=0, description="Promised in receipts")
    report_worker: bool = Field(default=True, description="Process batch reports in a background thread")
    report_stale_seconds: float = Field(default=30.0, gt=0,
                                        description="A report processing without a heartbeat this long is resumed")
    max_report_bytes: int = Field(default=20 * 1024**3, description="Largest batch report body")
    max_body_bytes: int = 1024 * 1024
    # Limits on exposure queries, per institution (OWASP API4/API6: bulk harvesting of debts).
    exposure_rate_per_second: float = Field(
        default=500.0, ge=0, description="Exposure queries per second per institution, all processes; 0: off"
    )
    exposure_burst: int = Field(default=1000, ge=1, description="Exposure queries an institution may send at once")
    exposure_daily_quota: int = Field(
        default=100_000, ge=0, description="Exposure answers per institution per UTC day, all processes; 0: unlimited"
    )
    # One institution must not be able to starve the others (SPEC section 8, "Starvation"): nothing waits on a
    # client while holding a database connection, every read from a client has a deadline, and each
    # institution has a bounded number of requests in flight.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300,
                                          description="A request's headers must arrive within this long (408)")
    body_timeout_seconds: float = Field(default=15.0, gt=0, le=600,
                                        description="Longest wait for the next piece of a request body (408)")
    keep_alive_seconds: float = Field(default=5.0, gt=0, le=300,
                                      description="An idle keep-alive connection is closed after this long")
    upload_idle_seconds: int = Field(
        default=300, ge=10, le=86_400,
        description="A batch upload with no new chunk for this long expires and frees its Idempotency-Key",
    )
    institution_max_requests: int = Field(
        default=16, ge=1, le=10_000,
        description="Requests one institution may have in flight at once, all processes (429 beyond)",
    )
    institution_max_uploads: int = Field(
        default=2, ge=1, le=100, description="Batch uploads one institution may send at once, all processes",
    )
    # Several server processes and hosts (SPEC section 7, "Processes and hosts"): the rate, the requests in
    # flight and the token caches' generation are counted in one store the processes share.
    workers: int | None = Field(default=None, ge=1, le=1024,
                                description="Server processes `register serve` starts (default: one per core)")
    token_cache_seconds: float = Field(
        default=10.0, ge=0, le=3600,
        description="How long a process keeps a verified token (a revocation reaches every process within 2 s)",
    )
    limits_url: SecretStr | None = Field(
        default=None, description="redis://host:port/db holding the limits every process of every host shares",
    )
    limits_url_file: Path | None = Field(default=None, description=FILE_HELP)
    limits_file: Path | None = Field(
        default=None, description="A file (in /dev/shm) holding the limits the processes of one host share; set by "
        "`register serve` when it starts several workers and no REGISTER_LIMITS_URL is set",
    )
    limits_prefix: str = Field(default="register", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                               description="Prefix of the register's keys in the Redis of REGISTER_LIMITS_URL")
    db_pool_size: int = Field(default=10, ge=1, le=500,
                              description="PostgreSQL connections per server process (as many again on overflow, "
                                          "and as many again for lenders' answers on the event loop)")
    db_pool_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Longest wait for a free database connection (then 503)"
    )
    db_statement_timeout_seconds: float = Field(
        default=30.0, ge=0, le=86_400,
        description="PostgreSQL: longest one statement of the server (requests, report worker, retention, "
        "statistics) may run or wait for a lock before it is cancelled (then 503 database_unavailable); 0: none",
    )
    # Lookups with an attested consent (one the institution recorded itself) have their own, lower limits:
    # with those, the institution alone chooses whose debts it reads (SPEC section 8, harvesting).
    attested_rate_per_second: float = Field(
        default=20.0, ge=0,
        description="Exposure queries with an attested consent per second per institution, all processes "
        "(bucket size: one second's worth); 0: off",
    )
    attested_daily_quota: int = Field(
        default=2_000, ge=0,
        description="Exposure answers with an attested consent per institution per UTC day, all processes; "
        "0: unlimited",
    )
    follow_up_days: int = Field(
        default=30, ge=1, le=365,
        description="A granted lookup is 'without follow-up' when the institution reports no change to a line "
        "naming the person within this many days after it",
    )
    report_deadline_days: int = Field(
        default=2, ge=1, le=365,
        description="A change is reported late when it reaches the register more than this many days after its "
        "as_of (Finland's rule: 2); the regulator's late_reporting signal",
    )
    dispute_days: int = Field(default=30, ge=1, le=365,
                              description="Days a creditor has to answer a dispute before it is overdue")
    credit_ban_lift_seconds: int = Field(default=3600, ge=0, le=7 * 86400,
                                         description="How long a lifted credit ban stays on (a lift can be taken back)")
    # Retention (SPEC.md, "Retention"): days each thing is kept once its period starts; 0 deletes at the next run.
    retention_ended_days: int = Field(default=98, ge=0, le=36_500,
                                      description="An obligation closed with no arrears in its history")
    retention_ended_arrears_days: int = Field(default=365, ge=0, le=36_500,
                                              description="An obligation closed after arrears")
    retention_retracted_days: int = Field(default=30, ge=0, le=36_500,
                                          description="An obligation retracted as reported in error (or unreported)")
    retention_claim_closed_days: int = Field(default=365, ge=0, le=36_500, description="A collection claim, closed")
    retention_exposure_answer_days: int = Field(default=365, ge=0, le=36_500,
                                                description="A stored exposure answer, from when it was given")
    retention_access_event_days: int = Field(
        default=1825, ge=0, le=36_500,
        description="An access event, from when it happened (then pseudonymised; see SPEC.md)",
    )
    report_file_days: int = Field(default=14, ge=0, le=3650,
                                  description="An uploaded report file, from when it was processed")
    retention_by_country: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description='Periods of their own for a reporting institution\'s country, JSON: {"NO": {"ended": 0}}; '
        "checked when the server or a retention command starts",
    )
    retention_job: bool = Field(default=True, description="Run retention in a background thread of the server")
    # Telling institutions (SPEC.md, "Events"): the feed, webhooks and the dispatcher that delivers them.
    event_feed_days: int = Field(default=30, ge=1, le=3650,
                                 description="Days an event stays in the feed (GET /v1/events); older are deleted")
    webhook_delivery_days: int = Field(default=30, ge=1, le=3650,
                                       description="Days a delivered or dead-lettered webhook delivery is listed")
    dispatcher: bool = Field(default=True, description="Deliver events in a background thread of the server")
    dispatcher_interval_seconds: float = Field(default=1.0, gt=0, le=3600,
                                               description="How often the dispatcher looks for work")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="One webhook delivery's timeout")
    webhook_backoff_seconds: float = Field(default=5.0, ge=0, le=86_400,
                                           description="The wait before the first retry; doubled each time, with jitter")
    webhook_backoff_max_seconds: float = Field(default=6 * 3600.0, ge=0, le=7 * 86_400,
                                               description="The longest wait between two attempts")
    webhook_max_attempts: int = Field(default=16, ge=1, le=100,
                                      description="Attempts before a delivery is dead-lettered (about a day of retries by default)")
    retention_interval_seconds: float = Field(default=3600.0, gt=0, description="How often the retention job runs")
    statistics_seconds: float = Field(default=3600.0, gt=0, description="How long the public statistics are served before they are computed again (per server process)")
    log_level: str = "INFO"
    database_url_file: Path | None = Field(default=None, description=FILE_HELP)
    admin_token_file: Path | None = Field(default=None, description=FILE_HELP)
    encryption_keys_file: Path | None = Field(default=None, description=FILE_HELP)
    blind_index_key_file: Path | None = Field(default=None, description=FILE_HELP)
    log_key_file: Path | None = Field(default=None, description=FILE_HELP)
    # The person's pages under /app/: their session, and sign-in through an OpenID Connect provider.
    session_idle_seconds: int = Field(default=900, ge=60, le=86_400,
                                      description="A person's web session ends after this long without a request")
    session_warning_seconds: int = Field(default=120, ge=0, le=3600,
                                         description="The page warns this long before the idle session ends")
    oidc_issuer: str | None = Field(
        default=None, pattern=r"^https://",
        description="The national e-ID's OpenID Connect issuer; its /.well-known/openid-configuration is read",
    )
    oidc_client_id: str | None = Field(default=None, description="The register's client id at the provider")
    oidc_client_secret: SecretStr | None = Field(default=None, description="The client secret (client_secret_basic)")
    oidc_client_secret_file: Path | None = Field(default=None, description=FILE_HELP)
    oidc_redirect_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="Where the provider sends the person back: https://<host>/app/sign-in/callback",
    )
    oidc_scopes: str = Field(default="openid", description="Scopes asked for, space-separated (openid included)")
    oidc_national_id_claim: str = Field(default="national_id",
                                        description="The ID token claim holding the national identity number")
    oidc_country_claim: str = Field(default="country", description="The ID token claim holding the country code")
    oidc_country: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$",
        description="The country, for a provider that sends no country claim (e.g. SE for BankID)",
    )

    # Notices to persons (SPEC.md, "Notices"): e-mail over SMTP, and the links in it.
    smtp_host: str | None = Field(default=None, description="SMTP server for notices; unset: none are sent "
                                  "(they wait, kept, until one is set)")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Its port (587 for starttls, 465 for tls)")
    smtp_from: str = Field(default="register@localhost", max_length=200, description="The From: of notices")
    smtp_tls: SmtpTls = Field(default=SmtpTls.none, description="none, starttls or tls")
    smtp_user: str | None = Field(default=None, description="SMTP user name (AUTH), if the server wants one")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_password_file: Path | None = Field(default=None, description=FILE_HELP)
    public_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s]+$",
                            description="The register's address as people reach it: the links in notices")
    notices: bool = Field(default=True, description="Send notices to persons in a background thread of the server")
    notice_interval_seconds: float = Field(default=5.0, gt=0, le=3600,
                                           description="How often the notifier looks for new events and sends")
    # The regulator's desk under /regulator/: its staff sign in through their own OpenID Connect provider.
    staff_oidc_issuer: str | None = Field(
        default=None, pattern=r"^https://",
        description="The regulator staff's OpenID Connect issuer; its /.well-known/openid-configuration is read",
    )
    staff_oidc_client_id: str | None = Field(default=None, description="The desk's client id at the staff provider")
    staff_oidc_client_secret: SecretStr | None = Field(default=None,
                                                       description="The desk's client secret (client_secret_basic)")
    staff_oidc_client_secret_file: Path | None = Field(default=None, description=FILE_HELP)
    staff_oidc_redirect_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="Where the staff provider sends the browser back: https://<host>/regulator/sign-in/callback",
    )
    staff_oidc_scopes: str = Field(default="openid", description="Scopes asked of the staff provider")
    staff_oidc_institution_claim: str = Field(
        default="regulator_institution_id", min_length=1, max_length=100,
        description="The ID token claim naming the staff member's regulator institution (its register id)",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in SECRET_FILES + OPTIONAL_SECRET_FILES:
            path = data.get(f"{name}_file")
            if not path:
                continue
            env = f"REGISTER_{name.upper()}"
            if data.get(name):
                raise ValueError(f"set {env} or {env}_FILE, not both")
            try:
                data = {**data, name: Path(path).read_text(encoding="utf-8").strip()}
            except OSError as exc:
                raise ValueError(f"{env}_FILE: cannot read {path}: {exc.strerror}") from None
        return data

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_redirect_url):
            raise ValueError("REGISTER_OIDC_ISSUER needs REGISTER_OIDC_CLIENT_ID and REGISTER_OIDC_REDIRECT_URL")
        if self.staff_oidc_issuer and not (self.staff_oidc_client_id and self.staff_oidc_redirect_url):
            raise ValueError("REGISTER_STAFF_OIDC_ISSUER needs REGISTER_STAFF_OIDC_CLIENT_ID and "
                             "REGISTER_STAFF_OIDC_REDIRECT_URL")
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @field_validator("database_url")
    @classmethod
    def _psycopg3(cls, v: str | None) -> str | None:
        if v and v.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'register.db').resolve()}"

    @property
    def resolved_oauth_audience(self) -> str:
        if self.oauth_audience:
            return self.oauth_audience
        return f"https://{self.log_origin.split('/', 1)[0]}/v1/oauth/token"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir

    def resolved_admin_token(self) -> str:
        """The operator token: from env, else from data_dir/admin-token, else newly generated there."""
        if self.admin_token is not None:
            return self.admin_token.get_secret_value()
        path = self.ensure_data_dir() / "admin-token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        write_private_file(path, token + "\n")
        return token


def write_private_file(path: Path, text: str) -> None:
    """Create a file readable only by its owner (0600), atomically, never widening an existing one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
