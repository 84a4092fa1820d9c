"""Everything a refresh reads before it issues, in one PostgreSQL statement (or one SQLite
snapshot read on the event loop).

A warm refresh used to read in five statements, each a round trip with its own share of the
server's parse-and-plan and of SQLAlchemy's execution: the presented token
(``oidc_refresh_tokens.find_refresh_token``), its user with their memberships
(``organizations.token_subject``), the memberships' roles and permissions
(``roles.grants_of_members``), the user's feature flags (``feature_flags.resolved_flags``) and,
in the billing workflow, the billing version of the token's subject (design §9). Here one
statement, prepared once per connection (``store.pg_direct``), returns them all from the token's
row: the memberships, grants and flags as arrays of their columns (``array_agg``), the
version by the subject the token signs in as (``org:<code>``, else ``user:<id>``).

One statement is one snapshot, so what it reads is what the five reads would have read with no
write between them, which they could not promise. The version is read after the request
arrived, so a billing change that answered before is seen, as design §9 requires
(``billing_versions.read_with_request`` hands it to the request's billing lookup).

On a SQLite file (``read_refresh_grant_on_loop``) the same reads run as the store's own
statements (``oidc_refresh_tokens.BY_HASH``, ``organizations.TOKEN_SUBJECT``,
``roles.GRANTS_OF_USER``, ``feature_flags.RESOLVED_FLAGS``, the billing version) on the file's
event-loop reader (``store.loop_reads``): no thread hop, no engine, and all of them inside one
read transaction, so they too see one snapshot. A read that would wait for a lock raises
``LoopReadUnavailable`` and the grant reads through the engine as before.

The result is exactly what the separate reads give (the same rows in the same order, mapped by
the same functions); the grant keeps every check on it: the client, reuse, expiry, the user's
suspension and the membership of the token's organization.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

from claimflow.crypto import digest_secret
from claimflow.domain import Membership, ResolvedFlag, User
from claimflow.store import billing_versions, feature_flags, organizations, roles
from claimflow.store.loop_reads import PreparedRead, SqliteLoopReader
from claimflow.store.oidc_refresh_tokens import BY_HASH, RefreshToken, refresh_token_from_row
from claimflow.store.pg_direct import DirectPool
from claimflow.store.users import user_from_row


@dataclass(frozen=True, slots=True)
class RefreshGrantRead:
    """The presented refresh token and who it signs in, as one statement read them."""

    token: RefreshToken
    user: User | None
    """None when the user was deleted."""
    memberships: list[Membership]
    """Empty for a suspended user, as ``organizations.token_subject`` gives them."""
    flags: list[ResolvedFlag]
    """The user's feature flags in the token's organization (``feature_flags.resolved_flags``)."""


_SQL = """
SELECT rt.family_id, rt.client_id, rt.user_id, rt.org_code, rt.scope, rt.audience, rt.auth_time,
       rt.created_on, rt.expires_on, rt.used_on, rt.revoked_on,
       u.id AS u_id, u.email AS u_email, u.given_name AS u_given_name,
       u.family_name AS u_family_name, u.created_on AS u_created_on,
       u.is_suspended AS u_is_suspended, u.total_sign_ins AS u_total_sign_ins,
       u.failed_sign_ins AS u_failed_sign_ins, u.last_signed_in AS u_last_signed_in,
       m.org_codes AS m_org_codes, m.joined_ons AS m_joined_ons,
       g.org_codes AS g_org_codes, g.is_roles AS g_is_roles, g.keys AS g_keys,
       f.ids AS f_ids, f.keys AS f_keys, f.names AS f_names, f.descriptions AS f_descriptions,
       f.types AS f_types, f.default_values AS f_default_values,
       f.override_levels AS f_override_levels, f.created_ons AS f_created_ons,
       f.org_values AS f_org_values, f.user_values AS f_user_values,
       (SELECT bv.version FROM billing_versions AS bv
         WHERE bv.subject = CASE WHEN rt.org_code IS NULL THEN $2 || rt.user_id
                                 ELSE $3 || rt.org_code END) AS billing_version
FROM refresh_tokens AS rt
LEFT JOIN users AS u ON u.id = rt.user_id
LEFT JOIN LATERAL (
    SELECT array_agg(ms.org_code ORDER BY ms.org_code) AS org_codes,
           array_agg(ms.joined_on ORDER BY ms.org_code) AS joined_ons
    FROM memberships AS ms WHERE ms.user_id = rt.user_id
) AS m ON true
LEFT JOIN LATERAL (
    SELECT array_agg(held.org_code) AS org_codes, array_agg(held.is_role) AS is_roles,
           array_agg(held.key) AS keys
    FROM (
        SELECT our.org_code, true AS is_role, r.key
        FROM organization_user_roles AS our JOIN roles AS r ON r.id = our.role_id
        WHERE our.user_id = rt.user_id
        UNION ALL
        SELECT oup.org_code, false, p.key
        FROM organization_user_permissions AS oup
        JOIN permissions AS p ON p.id = oup.permission_id
        WHERE oup.user_id = rt.user_id
        UNION ALL
        SELECT our.org_code, false, p.key
        FROM organization_user_roles AS our
        JOIN role_permissions AS rp ON rp.role_id = our.role_id
        JOIN permissions AS p ON p.id = rp.permission_id
        WHERE our.user_id = rt.user_id
    ) AS held
) AS g ON true
LEFT JOIN LATERAL (
    SELECT array_agg(ff.id ORDER BY ff.key) AS ids, array_agg(ff.key ORDER BY ff.key) AS keys,
           array_agg(ff.name ORDER BY ff.key) AS names,
           array_agg(ff.description ORDER BY ff.key) AS descriptions,
           array_agg(ff.type ORDER BY ff.key) AS types,
           array_agg(ff.default_value ORDER BY ff.key) AS default_values,
           array_agg(ff.allow_override_level ORDER BY ff.key) AS override_levels,
           array_agg(ff.created_on ORDER BY ff.key) AS created_ons,
           array_agg(ofl.value ORDER BY ff.key) AS org_values,
           array_agg(ufl.value ORDER BY ff.key) AS user_values
    FROM feature_flags AS ff
    LEFT JOIN organization_feature_flags AS ofl
           ON ofl.flag_id = ff.id AND ofl.org_code = rt.org_code
    LEFT JOIN user_feature_flags AS ufl ON ufl.flag_id = ff.id AND ufl.user_id = rt.user_id
) AS f ON true
WHERE rt.token_hash = $1
"""

_User = namedtuple(
    "_User",
    "id email given_name family_name created_on is_suspended total_sign_ins failed_sign_ins "
    "last_signed_in",
)
_Flag = namedtuple(
    "_Flag",
    "id key name description type default_value allow_override_level created_on org_value "
    "user_value",
)


async def read_refresh_grant(pool: DirectPool, token: str) -> RefreshGrantRead | None:
    """The presented token with its subject, or None for an unknown token; one round trip."""
    row = await pool.fetchrow(
        _SQL,
        (
            digest_secret(token),
            billing_versions.user_subject(""),
            billing_versions.organization_subject(""),
        ),
    )
    if row is None:
        return None
    stored = refresh_token_from_row(row)
    billing_versions.read_with_request(billing_subject(stored), int(row.billing_version or 0))
    flags = [
        feature_flags.resolved_flag(_Flag(*columns))
        for columns in zip(*_flag_columns(row), strict=True)
    ]
    if row.u_id is None:
        return RefreshGrantRead(stored, None, [], flags)
    user = user_from_row(
        _User(
            row.u_id,
            row.u_email,
            row.u_given_name,
            row.u_family_name,
            row.u_created_on,
            row.u_is_suspended,
            row.u_total_sign_ins,
            row.u_failed_sign_ins,
            row.u_last_signed_in,
        )
    )
    memberships: list[Membership] = []
    if not user.is_suspended and row.m_org_codes:
        grants = roles.fold_grants(
            zip(
                row.g_org_codes or (),
                [user.id] * len(row.g_org_codes or ()),
                row.g_is_roles or (),
                row.g_keys or (),
                strict=True,
            )
        )
        joined = list(zip(row.m_org_codes, row.m_joined_ons, strict=True))
        memberships = organizations.memberships_of(user.id, joined, grants)
    return RefreshGrantRead(stored, user, memberships, flags)


def billing_subject(stored: RefreshToken) -> str:
    """The billing subject the token signs in as: its organization, else its user (design §9)."""
    if stored.org_code is not None:
        return billing_versions.organization_subject(stored.org_code)
    return billing_versions.user_subject(stored.user_id)


_TOKEN_ON_LOOP = PreparedRead(BY_HASH)
_SUBJECT_ON_LOOP = PreparedRead(organizations.TOKEN_SUBJECT)
_GRANTS_ON_LOOP = PreparedRead(roles.GRANTS_OF_USER)
_FLAGS_ON_LOOP = PreparedRead(feature_flags.RESOLVED_FLAGS)


def read_refresh_grant_on_loop(reader: SqliteLoopReader, token: str) -> RefreshGrantRead | None:
    """``read_refresh_grant`` on a SQLite file: the store's own statements on the event-loop
    reader, in one snapshot; None for an unknown token. Raises ``LoopReadUnavailable`` (nothing
    handed over) when a read would wait for a lock; the caller then reads through the engine.

    The statements run as ``find_refresh_token``, ``organizations.token_subject`` (the grants
    only for a member who may sign in) and ``feature_flags.resolved_flags`` run them, and their
    rows go through the same mappers, so ``refresh_context`` sees what ``token_context`` reads.
    """
    with reader.snapshot():
        row = reader.first(_TOKEN_ON_LOOP, {"digest": digest_secret(token)})
        if row is None:
            return None
        stored = refresh_token_from_row(row)
        user, joined = organizations.token_subject_rows(
            reader.all(_SUBJECT_ON_LOOP, {"user_id": stored.user_id})
        )
        grant_rows = reader.all(_GRANTS_ON_LOOP, {"user_id": stored.user_id}) if joined else []
        flag_rows = reader.all(
            _FLAGS_ON_LOOP, {"user_id": stored.user_id, "org_code": stored.org_code}
        )
        subject = billing_subject(stored)
        version = reader.first(billing_versions.VERSION_ON_LOOP, {"subject": subject})
    billing_versions.read_with_request(subject, int(version.version or 0) if version else 0)
    memberships = (
        organizations.memberships_of(stored.user_id, joined, roles.grants_of_rows(grant_rows))
        if joined
        else []
    )
    flags = [feature_flags.resolved_flag(flag_row) for flag_row in flag_rows]
    return RefreshGrantRead(stored, user, memberships, flags)


def _flag_columns(row: Any) -> tuple[list[Any], ...]:
    names = (
        "ids",
        "keys",
        "names",
        "descriptions",
        "types",
        "default_values",
        "override_levels",
        "created_ons",
        "org_values",
        "user_values",
    )
    return tuple(row["f_" + name] or [] for name in names)
