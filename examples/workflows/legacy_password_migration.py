"""Example workflow (``user:existing_password_provided``): drip-feed migration from a legacy
user store, one user at a time, the first time each signs in.

Kinde's drip-feed migration (https://docs.kinde.com/workflows/workflow-tutorials/drip-feed-migration/,
example ``existingPassword/dripFeedMigrationWorkflow.ts`` in kinde-starter-kits/workflow-examples):
check the typed password against the legacy system; when it accepts, create the user
(``POST /api/v1/user``) and set the password (``PUT /api/v1/users/{user_id}/password`` with the
event's ``hashed_password``, an argon2id hash the server made). The sign-in then goes on and
succeeds; the next sign-in is checked by claimflow alone and never reaches the legacy system.
When the legacy system refuses, the workflow does nothing and the user is told, as for any
wrong password, that the email or password is incorrect.

The legacy service is ``POST $LEGACY_AUTH_URL`` with ``{"email", "password"}``, answering 200
with ``{"given_name", "family_name"}`` or 401. It usually lives on a private network, hence
``allow_private_fetch`` and a declared host; put yours in ``fetch_hosts``. The password is a
secret of the run: the engine redacts it (and its hash) from every log line and error.

Enable it with ``CLAIMFLOW_WORKFLOWS_DIR=examples/workflows``,
``CLAIMFLOW_WORKFLOWS_ENABLED='["org_billing", "user_billing", "legacy_password_migration"]'`` and
the variable ``LEGACY_AUTH_URL`` (``POST /api/v1/environment_variables``).
"""

from __future__ import annotations

from claimflow.workflows import (
    Binding,
    Bindings,
    ExistingPasswordProvidedEvent,
    FailurePolicy,
    ManagementAPICallFailed,
    Trigger,
    WorkflowRuntimeError,
    WorkflowSettings,
)

workflow_settings = WorkflowSettings(
    id="legacy_password_migration",
    name="Drip-feed migration from the legacy user store",
    trigger=Trigger.USER_EXISTING_PASSWORD_PROVIDED,
    failure_policy=FailurePolicy.STOP,
    time_limit_seconds=3.0,
    bindings=frozenset({Binding.FETCH, Binding.ENV, Binding.MANAGEMENT_API, Binding.LOGGER}),
    env_vars=frozenset({"LEGACY_AUTH_URL"}),
    management_api_scopes=frozenset({"read:users", "create:users", "update:user_passwords"}),
    fetch_hosts=frozenset({"legacy-auth.internal", "127.0.0.1"}),
    allow_private_fetch=True,
)


async def _create_user(bindings: Bindings, email: str, profile: dict[str, str]) -> str:
    """The new user's id; a concurrent first sign-in may have created it first (409)."""
    body = {
        "profile": {k: v for k, v in profile.items() if k in ("given_name", "family_name")},
        "identities": [{"type": "email", "is_verified": True, "details": {"email": email}}],
    }
    try:
        created = await bindings.management_api.post("user", body)
        return str(created["id"])
    except ManagementAPICallFailed as exc:
        if exc.status != 409:
            raise
    found = await bindings.management_api.get("users", {"email": email})
    return str(found["users"][0]["id"])


async def run(event: ExistingPasswordProvidedEvent, bindings: Bindings) -> None:
    auth = event.context.auth
    variable = await bindings.env.get_environment_variable("LEGACY_AUTH_URL")
    if variable is None or not variable.value:
        raise WorkflowRuntimeError("LEGACY_AUTH_URL is not set")
    answer = await bindings.fetch(
        variable.value,
        method="POST",
        json_body={"email": auth.provided_email, "password": auth.password},
    )
    if answer.status in (401, 403, 404):
        bindings.logger.info("the legacy system does not accept these credentials")
        return
    if answer.status != 200:
        raise WorkflowRuntimeError(f"the legacy system answered {answer.status}")
    profile = answer.json()
    user = event.context.user
    user_id = (
        user.id
        if user is not None
        else await _create_user(
            bindings, auth.provided_email, profile if isinstance(profile, dict) else {}
        )
    )
    await bindings.management_api.put(
        "users/{user_id}/password",
        {"hashed_password": auth.hashed_password},
        path_params={"user_id": user_id},
    )
    bindings.logger.info(f"migrated {user_id} from the legacy system")
