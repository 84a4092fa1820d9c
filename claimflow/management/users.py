"""Kinde's user routes: ``/user``, ``/users`` and ``/users/{user_id}/password``.

Users carry Kinde's ``profile`` and email ``identities`` on creation. Passwords arrive the way
Kinde takes them, as a hash from the system a business migrates from: bcrypt hashes are kept
as they are and checked at sign-in (then upgraded to argon2id, design §7). An argon2id hash —
what the ``user:existing_password_provided`` event hands a migration workflow as
``hashed_password`` — is kept as it is too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import is_bcrypt_hash
from claimflow.domain import User
from claimflow.errors import InvalidRequest
from claimflow.events import outbox
from claimflow.events.types import EventType
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import (
    DEFAULT_PAGE_SIZE,
    OK,
    Code,
    CodePath,
    CodeQuery,
    Cursor,
    Email,
    Name,
    OptionalText,
    PageSize,
    StrictModel,
    expansions,
    is_email,
    iso,
    next_token_page,
    without_none,
)
from claimflow.store import billing, organizations, users

router = APIRouter(tags=["Users"])

USER_EXPANSIONS = ("organizations", "identities", "billing")
BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
ARGON2ID_HASH = re.compile(
    r"^\$argon2id\$v=19\$m=(\d{1,7}),t=(\d{1,3}),p=(\d{1,3})\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}$"
)
ARGON2_MAX_MEMORY_KIB = 262144
ARGON2_MAX_TIME_COST = 10
ARGON2_MAX_PARALLELISM = 16
"""Bounds of an argon2id hash set through the API: its cost is paid at every sign-in (and by
the timing equaliser), so a hash asking for gigabytes or minutes is refused."""

ExpandQuery = Annotated[str | None, Query(max_length=64)]
ListQuery = Annotated[str | None, Query(max_length=4000)]


class Profile(BaseModel):
    model_config = StrictModel

    given_name: Name | None = None
    family_name: Name | None = None
    picture: OptionalText | None = None


class IdentityDetails(BaseModel):
    model_config = StrictModel

    email: Email | None = None
    phone: OptionalText | None = None
    phone_country_id: OptionalText | None = None
    username: OptionalText | None = None


class Identity(BaseModel):
    model_config = StrictModel

    type: Literal["email", "phone", "username"]
    is_verified: bool = False
    details: IdentityDetails


class CreateUser(BaseModel):
    """Kinde's ``createUser`` body; we keep one email identity per user."""

    model_config = StrictModel

    profile: Profile | None = None
    organization_code: Code | None = None
    provided_id: OptionalText | None = None
    identities: list[Identity] = Field(default_factory=list, max_length=10)


class UpdateUser(BaseModel):
    model_config = StrictModel

    given_name: Name | None = None
    family_name: Name | None = None
    picture: OptionalText | None = None
    is_suspended: bool | None = None
    is_password_reset_requested: bool | None = None
    provided_id: OptionalText | None = None


class SetPassword(BaseModel):
    """Kinde's ``SetUserPassword`` body. ``bcrypt`` hashes can be verified here, and
    ``argon2id`` ones (our addition to Kinde's enum; also taken when ``hashing_method`` is
    omitted and the hash is an argon2id PHC string, as Kinde's drip-feed example sends it)."""

    model_config = StrictModel

    hashed_password: Annotated[str, Field(min_length=1, max_length=200)]
    hashing_method: Literal["bcrypt", "crypt", "md5", "wordpress", "argon2id"] | None = None
    salt: OptionalText | None = None
    salt_position: Literal["prefix", "suffix"] | None = None
    is_temporary_password: bool = False


def _email_of(body: CreateUser) -> str | None:
    emails = [i.details.email for i in body.identities if i.type == "email"]
    if any(i.type != "email" for i in body.identities):
        raise InvalidRequest(
            "Only email identities are supported; phone and username are not.",
            "IDENTITY_UNSUPPORTED",
        )
    if len(emails) > 1:
        raise InvalidRequest("A user has at most one email identity.", "IDENTITY_INVALID")
    if emails and emails[0] is None:
        raise InvalidRequest("An email identity needs details.email.", "IDENTITY_INVALID")
    return emails[0] if emails else None


async def user_json(
    conn: AsyncConnection, user: User, wanted: frozenset[str], *, email_key: str
) -> dict[str, Any]:
    """Kinde's ``user`` (``email_key="preferred_email"``) or ``users_response`` item (``email``)."""
    body = without_none(
        {
            "id": user.id,
            email_key: user.email,
            "first_name": user.given_name,
            "last_name": user.family_name,
            "is_suspended": user.is_suspended,
        }
    )
    body.update(
        total_sign_ins=user.total_sign_ins,
        failed_sign_ins=user.failed_sign_ins,
        last_signed_in=iso(user.last_signed_in),
        created_on=iso(user.created_on),
    )
    if "organizations" in wanted:
        body["organizations"] = [
            m.org_code for m in await organizations.memberships_of_user(conn, user.id)
        ]
    if "identities" in wanted:
        body["identities"] = [{"type": "email", "identity": user.email}] if user.email else []
    if "billing" in wanted:
        customer = await billing.customer_of_user(conn, user.id)
        if customer is not None:
            body["billing"] = {"customer_id": customer.id}
    return body


@router.get("/user", summary="Get a user")
async def get_user(
    request: Request,
    id: CodeQuery,
    expand: ExpandQuery = None,
    _: object = Depends(require_scope("read:users")),
) -> dict[str, Any]:
    wanted = expansions(expand, USER_EXPANSIONS)
    async with services_of(request).db.connect() as conn:
        user = await users.get_user(conn, id)
        return await user_json(conn, user, wanted, email_key="preferred_email")


@router.post("/user", summary="Create a user")
async def create_user(
    request: Request,
    body: CreateUser | None = None,
    _: object = Depends(require_scope("create:users")),
) -> dict[str, Any]:
    body = body or CreateUser()
    email = _email_of(body)
    profile = body.profile or Profile()
    async with services_of(request).db.transaction() as conn:
        if body.organization_code is not None:
            await organizations.get_organization(conn, body.organization_code)
        user = await users.create_user(
            conn, email=email, given_name=profile.given_name, family_name=profile.family_name
        )
        if body.organization_code is not None:
            await organizations.add_member(conn, body.organization_code, user.id)
        await outbox.user_changed(conn, EventType.USER_CREATED, user.id)
    identities = [{"type": "email", "result": {"created": True}}] if email else []
    return {"id": user.id, "created": True, "identities": identities}


@router.patch("/user", summary="Update a user")
async def update_user(
    request: Request,
    id: CodeQuery,
    body: UpdateUser,
    _: object = Depends(require_scope("update:users")),
) -> dict[str, Any]:
    changes = body.model_dump(
        exclude_unset=True,
        exclude_none=True,
        include={"given_name", "family_name", "is_suspended"},
    )
    async with services_of(request).db.transaction() as conn:
        user = await users.update_user(conn, id, **changes)
        await outbox.user_changed(conn, EventType.USER_UPDATED, id)
    return without_none(
        {
            "id": user.id,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "email": user.email,
            "is_suspended": user.is_suspended,
            "is_password_reset_requested": bool(body.is_password_reset_requested),
        }
    )


@router.delete("/user", summary="Delete a user")
async def delete_user(
    request: Request,
    id: CodeQuery,
    is_delete_profile: bool | None = None,
    _: object = Depends(require_scope("delete:users")),
) -> dict[str, str]:
    """Deletes the user with their memberships and personal billing customer."""
    services = services_of(request)
    async with services.db.transaction() as conn:
        customer = await billing.customer_of_user(conn, id)
        await users.delete_user(conn, id)
        await outbox.user_deleted(conn, id)
    if customer is not None:
        await services.billing_changes.publish([customer.id])
    return OK


def _split(values: str | None, *, as_email: bool) -> list[str] | None:
    if values is None:
        return None
    parts = [part.strip() for part in values.split(",") if part.strip()]
    for part in parts:
        bad_email = as_email and not is_email(part)
        bad_id = not as_email and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", part)
        if bad_email or bad_id or len(part) > 320:
            raise InvalidRequest(f"Invalid filter value {part[:64]!r}.", "FILTER_INVALID")
    return parts


@router.get("/users", summary="List users")
async def list_users(
    request: Request,
    page_size: PageSize = None,
    next_token: Cursor = None,
    user_id: ListQuery = None,
    email: ListQuery = None,
    expand: ExpandQuery = None,
    _: object = Depends(require_scope("read:users")),
) -> dict[str, Any]:
    """Users in id order; ``user_id`` and ``email`` take Kinde's comma-separated lists."""
    wanted = expansions(expand, USER_EXPANSIONS)
    size = page_size or DEFAULT_PAGE_SIZE
    ids = _split(user_id, as_email=False)
    emails = _split(email, as_email=True)
    async with services_of(request).db.connect() as conn:
        rows = await users.list_users(
            conn, limit=size + 1, after_id=next_token, ids=ids, emails=emails
        )
        page, more = next_token_page(rows, size, lambda user: user.id)
        items = [await user_json(conn, u, wanted, email_key="email") for u in page]
    return {**OK, "users": items, **more}


def _check_argon2id(body: SetPassword) -> None:
    if body.salt is not None or body.salt_position is not None:
        raise InvalidRequest("argon2id hashes carry their own salt.", "SALT_INVALID")
    match = ARGON2ID_HASH.fullmatch(body.hashed_password)
    if match is None:
        raise InvalidRequest(
            "hashed_password is not an argon2id hash ($argon2id$v=19$m=..,t=..,p=..$salt$hash).",
            "HASHED_PASSWORD_INVALID",
        )
    memory, time_cost, parallelism = (int(g) for g in match.groups())
    if not (
        1 <= parallelism <= ARGON2_MAX_PARALLELISM
        and 8 * parallelism <= memory <= ARGON2_MAX_MEMORY_KIB
        and 1 <= time_cost <= ARGON2_MAX_TIME_COST
    ):
        raise InvalidRequest(
            f"argon2id parameters out of bounds (m <= {ARGON2_MAX_MEMORY_KIB} KiB, "
            f"t <= {ARGON2_MAX_TIME_COST}, p <= {ARGON2_MAX_PARALLELISM}).",
            "HASHED_PASSWORD_INVALID",
        )


@router.put("/users/{user_id}/password", summary="Set a user's password")
async def set_user_password(
    request: Request,
    user_id: CodePath,
    body: SetPassword,
    _: object = Depends(require_scope("update:user_passwords")),
) -> dict[str, str]:
    """Import a password hash (Kinde: migrate users with their existing hashes).

    bcrypt embeds its salt and cost, so a bcrypt hash is stored as it is and verified at
    sign-in; so does argon2id (bounded cost). ``crypt``, ``md5`` and ``wordpress`` would need
    their own verifiers and are refused with a clear 400 rather than stored unusable. Kinde's
    spec: ``PUT /api/v1/users/{user_id}/password``, scope ``update:user_passwords``.
    """
    method = body.hashing_method
    if method is None:
        method = "argon2id" if body.hashed_password.startswith("$argon2") else "bcrypt"
    if method == "argon2id":
        _check_argon2id(body)
        async with services_of(request).db.transaction() as conn:
            await users.set_password_hash(conn, user_id, body.hashed_password)
        return OK
    if method != "bcrypt":
        raise InvalidRequest(
            f"hashing_method {body.hashing_method!r} is not supported; use bcrypt.",
            "HASHING_METHOD_UNSUPPORTED",
        )
    if body.salt is not None or body.salt_position is not None:
        raise InvalidRequest("bcrypt hashes carry their own salt.", "SALT_INVALID")
    if not BCRYPT_HASH.fullmatch(body.hashed_password) or not is_bcrypt_hash(body.hashed_password):
        raise InvalidRequest("hashed_password is not a bcrypt hash.", "HASHED_PASSWORD_INVALID")
    async with services_of(request).db.transaction() as conn:
        await users.set_password_hash(conn, user_id, body.hashed_password)
    return OK
