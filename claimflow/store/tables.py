"""The schema, as SQLAlchemy Core tables; Alembic's migrations are generated from it.

Core (not the ORM) because repositories map rows to frozen domain dataclasses themselves, and
the same statements must run unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = DateTime(timezone=True)

organizations = Table(
    "organizations",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("handle", String(255), nullable=True, unique=True),
    Column("external_id", String(255), nullable=True, unique=True),
    Column("is_auto_membership_enabled", Boolean, nullable=False, default=False),
    Column("created_on", TS, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=True, unique=True),
    Column("given_name", String(255), nullable=True),
    Column("family_name", String(255), nullable=True),
    Column("password_hash", Text, nullable=True),
    Column("is_suspended", Boolean, nullable=False, default=False),
    Column("total_sign_ins", Integer, nullable=False, default=0),
    Column("failed_sign_ins", Integer, nullable=False, default=0),
    Column("last_signed_in", TS, nullable=True),
    Column("created_on", TS, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column(
        "org_code",
        String(64),
        ForeignKey("organizations.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("joined_on", TS, nullable=False),
    Index("ix_memberships_user_id", "user_id"),
)

applications = Table(
    "applications",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("type", String(8), nullable=False),
    Column("client_secret_hash", String(128), nullable=True),
    Column("redirect_uris", JSON, nullable=False, default=list),
    Column("logout_uris", JSON, nullable=False, default=list),
    Column("scopes", JSON, nullable=False, default=list),
    Column("require_organization", Boolean, nullable=False, default=False),
    Column("access_token_ttl_seconds", Integer, nullable=True),
    Column("id_token_ttl_seconds", Integer, nullable=True),
    Column("refresh_token_ttl_seconds", Integer, nullable=True),
    Column("created_on", TS, nullable=False),
    Column("allowed_origins", JSON, nullable=False, default=list, server_default=text("'[]'")),
    Column("org_code", String(64), nullable=True),
    Index("ix_applications_org_code", "org_code"),
)

features = Table(
    "features",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_on", TS, nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_on", TS, nullable=False),
)

plan_prices = Table(
    "plan_prices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan_code", String(64), ForeignKey("plans.code", ondelete="CASCADE"), nullable=False),
    Column("feature_code", String(64), ForeignKey("features.code"), nullable=False),
    Column("price_name", String(255), nullable=False),
    Column("fixed_charge", BigInteger, nullable=True),
    Column("unit_amount", BigInteger, nullable=True),
    Column("entitlement_limit_min", BigInteger, nullable=True),
    Column("entitlement_limit_max", BigInteger, nullable=True),
    UniqueConstraint("plan_code", "feature_code", name="uq_plan_prices_plan_feature"),
)

billing_customers = Table(
    "billing_customers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=True),
    Column(
        "org_code",
        String(64),
        ForeignKey("organizations.code", ondelete="CASCADE"),
        nullable=True,
        unique=True,
    ),
    Column(
        "user_id",
        String(64),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=True,
        unique=True,
    ),
    Column("created_on", TS, nullable=False),
)

agreements = Table(
    "agreements",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "customer_id",
        String(64),
        ForeignKey("billing_customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("plan_code", String(64), ForeignKey("plans.code"), nullable=False),
    Column("billing_group_id", String(64), nullable=True),
    Column("started_on", TS, nullable=False),
    Column("expires_on", TS, nullable=True),
    Column("cancelled_on", TS, nullable=True),
    Index("ix_agreements_customer_id", "customer_id"),
)

billing_versions = Table(
    "billing_versions",
    metadata,
    # Whose billing: ``org:<code>`` or ``user:<id>``, the billing cache's keys (design §9).
    Column("subject", String(80), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

meter_usage = Table(
    "meter_usage",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "customer_id",
        String(64),
        ForeignKey("billing_customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "agreement_id", String(64), ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False
    ),
    Column("feature_code", String(64), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("recorded_on", TS, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("private_key_encrypted", LargeBinary, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("created_on", TS, nullable=False),
    Column("retired_on", TS, nullable=True),
    Column("expires_on", TS, nullable=True),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("org_code", String(64), nullable=True),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(8), nullable=True),
    Column("auth_time", TS, nullable=False),
    Column("session_id", String(64), nullable=True),
    Column("is_existing_session", Boolean, nullable=False, default=False),
    Column("expires_on", TS, nullable=False),
    Column("used_on", TS, nullable=True),
    Column("refresh_family_id", String(64), nullable=True),
    Column("audience", JSON, nullable=False, default=list),
    Column("access_token_jti", String(64), nullable=True),
    Column("access_token_expires_on", TS, nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("org_code", String(64), nullable=True),
    Column("scope", Text, nullable=False),
    Column("auth_time", TS, nullable=False),
    Column("created_on", TS, nullable=False),
    Column("expires_on", TS, nullable=False),
    Column("used_on", TS, nullable=True),
    Column("revoked_on", TS, nullable=True),
    Column("audience", JSON, nullable=False, default=list),
    Column("access_token_jti", String(64), nullable=True),
    Column("access_token_expires_on", TS, nullable=True),
    # The successor of a just-spent token, sealed with the deployment's SecretBox, kept for
    # the reuse grace (RFC 9700 §4.14.2) and cleared once handed out again or superseded.
    Column("successor_sealed", LargeBinary, nullable=True),
    # The digest of the token this one replaced (None for a family's first): the one row whose
    # sealed successor a spend of this token clears, found by its primary key.
    Column("predecessor_hash", String(64), nullable=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_on", TS, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("auth_time", TS, nullable=False),
    Column("expires_on", TS, nullable=False),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("window_start", TS, nullable=False),
    Column("locked_until", TS, nullable=True),
    Column("lockouts", Integer, nullable=False, default=0),
    Column("expires_on", TS, nullable=False),
)

environment_variables = Table(
    "environment_variables",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("value_encrypted", LargeBinary, nullable=True),
    Column("is_secret", Boolean, nullable=False, default=False),
    Column("created_on", TS, nullable=False),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workflow_id", String(128), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("org_code", String(64), nullable=True),
    Column("started_on", TS, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("log_lines", JSON, nullable=False, default=list),
    Column("claim_sizes", JSON, nullable=False, default=dict),
    Column("error", Text, nullable=True),
    Index("ix_workflow_runs_started_on", "started_on"),
    Index("ix_workflow_runs_workflow_id", "workflow_id"),
)

# Registered APIs (Kinde's "Your APIs"): the audiences tokens may carry, their scopes, and the
# applications authorized for each, with the API scopes granted to an application there.
apis = Table(
    "apis",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("audience", String(255), nullable=False, unique=True),
    Column("created_on", TS, nullable=False),
)

api_scopes = Table(
    "api_scopes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("api_id", String(64), ForeignKey("apis.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_on", TS, nullable=False),
    UniqueConstraint("api_id", "key", name="uq_api_scopes_api_id_key"),
)

api_applications = Table(
    "api_applications",
    metadata,
    Column("api_id", String(64), ForeignKey("apis.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("applications.client_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("created_on", TS, nullable=False),
    Index("ix_api_applications_client_id", "client_id"),
)

api_application_scopes = Table(
    "api_application_scopes",
    metadata,
    Column("api_id", String(64), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column(
        "scope_id", String(64), ForeignKey("api_scopes.id", ondelete="CASCADE"), primary_key=True
    ),
    ForeignKeyConstraint(
        ["api_id", "client_id"],
        ["api_applications.api_id", "api_applications.client_id"],
        ondelete="CASCADE",
        name="fk_api_application_scopes_api_applications",
    ),
)

# Kinde's roles and permissions: a catalogue of each, the permissions a role grants, and what an
# organization member holds (roles, and permissions granted directly). Migration 0002_kinde.

roles = Table(
    "roles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("is_default_role", Boolean, nullable=False, default=False),
    Column("created_on", TS, nullable=False),
)

permissions = Table(
    "permissions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_on", TS, nullable=False),
)

role_permissions = Table(
    "role_permissions",
    metadata,
    Column("role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "permission_id",
        String(64),
        ForeignKey("permissions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

organization_user_roles = Table(
    "organization_user_roles",
    metadata,
    Column("org_code", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    ForeignKeyConstraint(
        ["org_code", "user_id"],
        ["memberships.org_code", "memberships.user_id"],
        ondelete="CASCADE",
        name="fk_organization_user_roles_membership",
    ),
)

organization_user_permissions = Table(
    "organization_user_permissions",
    metadata,
    Column("org_code", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column(
        "permission_id",
        String(64),
        ForeignKey("permissions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    ForeignKeyConstraint(
        ["org_code", "user_id"],
        ["memberships.org_code", "memberships.user_id"],
        ondelete="CASCADE",
        name="fk_organization_user_permissions_membership",
    ),
)

# Kinde's webhooks and the event outbox (design §10). An event is written in the transaction of
# the change it describes, with one delivery row per subscribed webhook; the delivery loop leases
# a row (``lease_until``) before sending, so one worker at a time owns it. Migration 0002_kinde.

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("event_types", JSON, nullable=False, default=list),
    Column("created_on", TS, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_on", TS, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_id", String(64), ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", String(64), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_on", TS, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", TS, nullable=True),
    Column("delivered_on", TS, nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_on"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "delivery_id",
        String(64),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("worker", String(64), nullable=False),
    Column("attempted_on", TS, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_delivery_id", "delivery_id"),
)

# Kinde's feature flags with their organization and user overrides, and Kinde's properties with
# the values users and organizations hold. Values are Kinde's strings, parsed by the flag's type
# (``domain/feature_flags.py``). Migration 0003_flags.

feature_flags = Table(
    "feature_flags",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("type", String(8), nullable=False),
    Column("allow_override_level", String(8), nullable=False),
    Column("default_value", Text, nullable=False),
    Column("created_on", TS, nullable=False),
)

organization_feature_flags = Table(
    "organization_feature_flags",
    metadata,
    Column(
        "org_code",
        String(64),
        ForeignKey("organizations.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "flag_id", String(64), ForeignKey("feature_flags.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("value", Text, nullable=False),
)

user_feature_flags = Table(
    "user_feature_flags",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "flag_id", String(64), ForeignKey("feature_flags.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("value", Text, nullable=False),
)

properties = Table(
    "properties",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("type", String(32), nullable=False),
    Column("context", String(8), nullable=False),
    Column("is_private", Boolean, nullable=False, default=False),
    Column("category_id", String(64), nullable=True),
    Column("created_on", TS, nullable=False),
)

user_property_values = Table(
    "user_property_values",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "property_id", String(64), ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("value", Text, nullable=False),
)

organization_property_values = Table(
    "organization_property_values",
    metadata,
    Column(
        "org_code",
        String(64),
        ForeignKey("organizations.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "property_id", String(64), ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("value", Text, nullable=False),
)
