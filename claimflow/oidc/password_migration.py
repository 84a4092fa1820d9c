"""Lazy (drip-feed) password migration: ``user:existing_password_provided`` at the login form.

Kinde's drip-feed migration moves users "progressively as they log in": the workflow validates
the typed password against the legacy system, creates the user and sets the password, and Kinde
"takes over authentication from that point forward"
(https://docs.kinde.com/workflows/workflow-tutorials/drip-feed-migration/; example
``existingPassword/dripFeedMigrationWorkflow.ts`` in kinde-starter-kits/workflow-examples).

Here the password is hashed once (argon2id, what the dummy check of an unknown email costs
anyway) and both go in the event; the workflow checks the legacy system through ``fetch`` and
writes through the Management API (``POST /user``, ``PUT /users/{id}/password`` with the
event's ``hashed_password``). The sign-in then reads the user again: a stored hash equal to the
one we made proves the password without a second check; another hash the workflow set (a
legacy bcrypt, say) is checked as usual. A denial, a failure under ``stop``, or no password set
is a wrong password: the caller answers it like any other.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass

from claimflow import crypto
from claimflow.domain import User
from claimflow.errors import WorkflowError
from claimflow.oidc.workflow_events import existing_password_provided_event
from claimflow.services import Services
from claimflow.store import users
from claimflow.workflows.event import Trigger

log = logging.getLogger("claimflow.oidc")


@dataclass(frozen=True, slots=True)
class PasswordMigration:
    """Where a sign-in comes from, for the event: the application and the browser."""

    client_id: str
    ip: str | None = None
    user_agent: str | None = None


def migration_enabled(services: Services) -> bool:
    """A ``user:existing_password_provided`` workflow is enabled."""
    return bool(services.workflows.enabled(Trigger.USER_EXISTING_PASSWORD_PROVIDED))


async def migrate_password(
    services: Services,
    migration: PasswordMigration,
    email: str,
    password: str,
    user: User | None,
) -> tuple[User | None, str | None, bool]:
    """Fire the trigger for ``email``; the user and hash afterwards, and whether it matches."""
    hashed = await asyncio.to_thread(crypto.hash_password, password)
    event = existing_password_provided_event(
        issuer=services.issuer,
        client_id=migration.client_id,
        email=users.normalize_email(email),
        password=password,
        hashed_password=hashed,
        user_id=user.id if user is not None else None,
        ip=migration.ip,
        user_agent=migration.user_agent,
    )
    try:
        await services.workflows.run(Trigger.USER_EXISTING_PASSWORD_PROVIDED, event)
    except WorkflowError as exc:
        # exc.message is redacted (the engine knows the password); the run log has the rest.
        log.warning(
            "password migration refused by workflow %s (run %s)", exc.workflow_id, exc.run_id
        )
        return user, None, False
    async with services.db.connect() as conn:
        after = await users.find_user_by_email(conn, email)
        stored = await users.get_password_hash(conn, after.id) if after else None
    if after is None or stored is None:
        return after, None, False
    if hmac.compare_digest(stored.encode("utf-8"), hashed.encode("utf-8")):
        return after, stored, True
    return after, stored, await asyncio.to_thread(crypto.verify_password, password, stored)
