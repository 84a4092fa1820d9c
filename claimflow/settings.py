"""Typed settings: flags, then ``CLAIMFLOW_*`` environment variables, then a TOML config file.

Why one object: every layer (store, tokens, workflows, HTTP) reads its knobs from here, so an
operator finds every setting in one place and the README's configuration table stays true.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from claimflow.errors import ConfigurationError
from claimflow.settings_checks import check_database_url, check_secret_key

SigningAlgorithm = Literal["RS256", "ES256", "EdDSA"]

DEFAULT_CONFIG_FILE = "claimflow.toml"
SECRET_KEY_FILE = ".claimflow-secret"


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads ``[claimflow]`` (or top-level keys) from the file named by ``CLAIMFLOW_CONFIG``.

    A file named explicitly must exist, and every key must be a setting: a typo such as
    ``databse_url`` would otherwise leave the default in force without a word.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        named = os.environ.get("CLAIMFLOW_CONFIG")
        path = Path(named or DEFAULT_CONFIG_FILE)
        if not path.is_file():
            if named:
                raise ConfigurationError(
                    f"CLAIMFLOW_CONFIG names {named!r}, which is not a file: "
                    "fix the path or unset CLAIMFLOW_CONFIG."
                )
            return {}
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML ({exc}): fix the file.") from exc
        section = data.get("claimflow", data)
        if not isinstance(section, dict):
            raise ConfigurationError(f"{path}: [claimflow] must be a table of settings.")
        known = self.settings_cls.model_fields
        unknown = [key for key in section if key not in known]
        if unknown:
            guesses = difflib.get_close_matches(unknown[0], list(known), n=1)
            hint = f" (did you mean {guesses[0]!r}?)" if guesses else ""
            raise ConfigurationError(
                f"{path}: unknown setting(s) {', '.join(map(repr, unknown))}{hint}; "
                "the README's configuration table lists every setting."
            )
        return dict(section)


class Settings(BaseSettings):
    """Every knob of a claimflow deployment; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="CLAIMFLOW_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./claimflow.db"
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    issuer: str | None = None
    secret_key: str | None = None
    ssl_certfile: str | None = None
    """PEM certificate chain: ``claimflow serve`` speaks HTTPS itself (with ``ssl_keyfile``)."""
    ssl_keyfile: str | None = None
    """PEM private key of ``ssl_certfile`` (unencrypted)."""

    signing_algorithm: SigningAlgorithm = "RS256"
    access_token_ttl_seconds: int = 3600
    id_token_ttl_seconds: int = 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    m2m_token_ttl_seconds: int = 86400
    authorization_code_ttl_seconds: int = 60
    session_ttl_seconds: int = 14 * 24 * 3600

    access_token_max_bytes: int = 4096
    id_token_max_bytes: int = 8192
    m2m_token_max_bytes: int = 8192
    """Size budget of client-credentials tokens that workflows added claims to (an
    organization's billing claim steps down to its compact, then reference form to fit). A
    Management API token with every scope is over 4 KB by itself, hence the ID token's figure."""

    workflows_enabled: list[str] = Field(
        default_factory=lambda: ["org_billing", "user_billing", "org_billing_m2m"]
    )
    workflows_dir: str | None = None
    workflow_time_limit_seconds: float = 2.0
    workflow_runs_retention_days: int = 30
    workflow_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per workflow: ``failure_policy`` and/or ``time_limit_seconds`` (e.g. JSON in the env)."""
    workflows_trusted: list[str] = Field(default_factory=list)
    """Workflows (by id) that run in the server's event loop instead of a runner process; the
    built-ins always do. Trust only code you would put in the server itself (README)."""
    workflow_runner_pool_size: int = Field(default=2, ge=1, le=64)
    """Warm runner processes per untrusted workflow (one run per runner at a time)."""
    workflow_runner_memory_mb: int = Field(default=512, ge=0)
    """Address-space limit of a runner process (``RLIMIT_AS``); 0 for none."""
    workflow_runner_kill_grace_seconds: float = Field(default=0.2, gt=0)
    """How long a runner may take to stop after its run's deadline before it is killed."""
    workflow_runner_user: str | None = None
    """The user runners switch to when the server runs as root (default ``nobody``; ``root``
    to keep root); ignored when the server does not run as root."""

    redis_prefix: str | None = None
    """Namespace of this deployment's keys in Redis (``<prefix>:billing:...``).

    Two deployments sharing one Redis must not answer from each other's billing cache, and
    every worker of one deployment must use the same keys, or an invalidation written by one
    worker would not reach the others. Unset, it is ``claimflow:`` and 16 hex digits of a
    SHA-256 of the issuer and the database URL (never the URL itself, which may hold a
    password): workers of one deployment share both (the issuer must be identical for their
    tokens to verify), distinct deployments differ in at least one. Set it explicitly when
    workers spell the database URL differently (another host alias, another password), or when
    two deployments share a relative SQLite path and the default issuer.
    """

    billing_cache_ttl_seconds: float = 60.0
    billing_serve_stale: bool = False
    billing_stale_max_age_seconds: float = 3600.0

    management_api_url: str | None = None
    management_api_timeout_seconds: float = 5.0
    kinde_webhook_domain: str | None = None
    """The Kinde domain (``https://<business>.kinde.com``) whose webhooks ``POST
    /webhooks/kinde`` accepts, verified against its ``/.well-known/jwks.json``; unset, the
    route answers 404. With billing read from that Kinde (``management_api_url``), a billing
    webhook drops the customer's cache entry at once instead of at its TTL."""
    kinde_webhook_jwks_ttl_seconds: float = Field(default=3600.0, gt=0)
    """How long Kinde's key set is cached (an unknown ``kid`` refetches it sooner)."""
    kinde_webhook_max_age_seconds: float = Field(default=86400.0, gt=0)
    """Oldest ``iat`` a Kinde webhook may carry, and how long its ``event_id`` is remembered."""

    login_max_failures: int = Field(default=5, ge=1)
    """Password checks per window for one account from one client address."""
    login_lockout_seconds: int = Field(default=300, ge=1)
    """The counting window, and the first lock; each further lock of a key lasts twice as long."""
    login_account_max_failures: int = Field(default=50, ge=1)
    """Password checks per window for one account from all addresses together.

    Much higher than ``login_max_failures``: a guesser from one address is stopped by the pair
    limit while the owner, from another address, still gets in; only a guesser spread over many
    addresses meets this ceiling (NIST SP 800-63B §5.2.2: rate-limit the attacker, not the
    subscriber).
    """
    login_address_max_failures: int = Field(default=50, ge=1)
    """Password checks per window from one client address over all accounts (password spraying).

    High enough for the users of one office behind one NAT address to sign in; IPv6 clients
    are counted per /64, the smallest block one subscriber is usually given.
    """
    login_lockout_max_seconds: int = Field(default=86400, ge=1)
    """The longest one lock lasts, however often a key was locked before."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/8``) whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed; comma-separated in ``CLAIMFLOW_TRUSTED_PROXIES``.

    Empty by default: a client could otherwise claim any address and sidestep the sign-in
    throttle. Name the load balancer in front of claimflow here.
    """

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_trusted_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return value

    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    """How long one Redis call may take before the billing cache loads from the store instead."""
    refresh_reuse_grace_seconds: float = Field(default=5.0, ge=0)
    """How long an identical retry of a just-spent refresh token gets the same successor, once
    (RFC 9700 §4.14.2); 0 turns the grace off. A reuse after it revokes the family."""

    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line, with the request id (``observability/logs.py``)."""

    allowed_hosts: list[str] = Field(default_factory=list)
    """Host names accepted besides the issuer's (``Host`` header); ``["*"]`` accepts any."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=400 * 1024)
    """Largest request body; at least the 385 KiB a login form may need."""
    api_docs_enabled: bool = False
    """Serve ``/docs`` and ``/redoc``; their pages load scripts from a third-party CDN."""
    webhook_delivery_enabled: bool = True
    """Run the webhook delivery loop in this process (design §10)."""
    webhook_poll_interval_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    webhook_lease_seconds: float = 60.0
    """How long a worker owns a delivery it is sending; longer than the timeout."""
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_max_attempts: int = 12

    @field_validator("kinde_webhook_domain")
    @classmethod
    def _kinde_domain(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(
                f"{value!r} must be an https:// URL (http:// only on loopback, for tests)"
            )
        if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
            raise ValueError(f"{value!r} must be the domain alone, e.g. https://acme.kinde.com")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("secret_key")
    @classmethod
    def _strong_secret_key(cls, value: str | None) -> str | None:
        return None if value is None else check_secret_key(value)

    @field_validator("signing_algorithm", mode="before")
    @classmethod
    def _supported_algorithm(cls, value: object) -> object:
        if value not in ("RS256", "ES256", "EdDSA"):
            raise ValueError(f"{value!r} is not supported: use RS256, ES256 or EdDSA")
        return value

    def public_issuer(self) -> str:
        """The issuer URL, without a trailing slash (OIDC Discovery §4.3 requires exact match)."""
        scheme = "https" if self.ssl_certfile else "http"
        return (self.issuer or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    def redis_key_prefix(self) -> str:
        """``redis_prefix``, or the default derived from the issuer and the database URL."""
        if self.redis_prefix:
            return self.redis_prefix
        identity = f"{self.public_issuer()}\n{self.database_url}".encode()
        return "claimflow:" + hashlib.sha256(identity).hexdigest()[:16]

    def resolved_secret_key(self) -> str:
        """The key that encrypts private keys and secrets at rest.

        Generated once and kept in ``.claimflow-secret`` beside the working directory when unset,
        so a restart can still decrypt what an earlier run stored.
        """
        if self.secret_key:
            return self.secret_key
        path = Path(SECRET_KEY_FILE)
        if path.is_file():
            self.secret_key = path.read_text(encoding="utf-8").strip()
        else:
            self.secret_key = secrets.token_urlsafe(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.secret_key + "\n")
        return self.secret_key

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))


def load_settings(**values: Any) -> Settings:
    """``Settings(**values)``, every misconfiguration raised as one ``ConfigurationError``.

    The message names the setting by its environment variable and says what to write instead,
    so a command can print it as it is (one or two lines, no traceback).
    """
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigurationError(_describe_validation_error(exc)) from exc
    except SettingsError as exc:
        raise ConfigurationError(_describe_settings_error(exc)) from exc


def _describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a setting"
        lines.append(f"CLAIMFLOW_{field.upper()}: {message}")
    return "\n".join(lines[:2])


def _describe_settings_error(exc: SettingsError) -> str:
    """pydantic-settings says only 'error parsing value for field "x"': say what JSON it wants."""
    text = str(exc)
    field = next((name for name in Settings.model_fields if f'"{name}"' in text), None)
    if field is None:
        return f"invalid setting: {text}"
    default = Settings.model_fields[field].get_default(call_default_factory=True)
    kind = "a JSON object" if isinstance(default, dict) else "a JSON list"
    example = json.dumps(default) if default else ("{}" if isinstance(default, dict) else "[]")
    return (
        f"CLAIMFLOW_{field.upper()} is not valid JSON: write {kind}, "
        f"e.g. CLAIMFLOW_{field.upper()}='{example}'."
    )
