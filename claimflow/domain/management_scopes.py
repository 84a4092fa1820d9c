"""Management API scopes: Kinde's names for what we implement, plus our billing catalogue's.

A rule of the domain (which M2M grants exist), not of the HTTP layer: ``claimflow init``, the
seed file and the Management API's route guards all read it, and the first two must not import
the API's routers to do so (design §2).
"""

from __future__ import annotations

KINDE_SCOPES: tuple[str, ...] = (
    "read:organizations",
    "create:organizations",
    "update:organizations",
    "delete:organizations",
    "read:organization_users",
    "create:organization_users",
    "update:organization_users",
    "delete:organization_users",
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "update:user_passwords",
    "read:applications",
    "create:applications",
    "update:applications",
    "delete:applications",
    "read:applications_redirect_uris",
    "create:applications_redirect_uris",
    "delete:applications_redirect_uris",
    "read:application_logout_uris",
    "create:application_logout_uris",
    "read:billing_entitlements",
    "read:billing_agreements",
    "create:billing_agreements",
    "create:meter_usage",
    "read:environment_variables",
    "create:environment_variables",
    "update:environment_variables",
    "delete:environment_variables",
)

# Kinde's APIs (register APIs, their scopes, authorize applications), spelled as the spec's
# operation descriptions spell them, "delete:apis_scopes" included.
KINDE_API_SCOPES: tuple[str, ...] = (
    "read:apis",
    "create:apis",
    "update:apis",
    "delete:apis",
    "read:api_scopes",
    "create:api_scopes",
    "update:api_scopes",
    "delete:apis_scopes",
    "create:api_application_scopes",
    "delete:apis_application_scopes",
)

# Kinde's roles, permissions, an organization member's roles and permissions, and webhooks.
ACCESS_AND_WEBHOOK_SCOPES: tuple[str, ...] = (
    "read:roles",
    "create:roles",
    "update:roles",
    "delete:roles",
    "read:role_permissions",
    "update:role_permissions",
    "delete:role_permissions",
    "read:permissions",
    "create:permissions",
    "update:permissions",
    "delete:permissions",
    "read:organization_user_roles",
    "create:organization_user_roles",
    "delete:organization_user_roles",
    "read:organization_user_permissions",
    "create:organization_user_permissions",
    "delete:organization_user_permissions",
    "read:webhooks",
    "create:webhooks",
    "update:webhooks",
    "delete:webhooks",
    "read:event_types",
    "read:events",
)

# Kinde's feature flags with their organization and user overrides, and Kinde's properties.
FLAG_AND_PROPERTY_SCOPES: tuple[str, ...] = (
    "create:feature_flags",
    "update:feature_flags",
    "delete:feature_flags",
    "read:organization_feature_flags",
    "update:organization_feature_flags",
    "delete:organization_feature_flags",
    "update:user_feature_flags",
    "read:properties",
    "create:properties",
    "update:properties",
    "delete:properties",
    "read:user_properties",
    "update:user_properties",
    "read:organization_properties",
    "update:organization_properties",
)

# Our own extensions, in Kinde's style: the plan catalogue and customers, the workflow runs, and
# cancelling an agreement (Kinde documents ``DELETE /billing/agreements`` but its spec has no
# such operation, so no scope name: https://docs.kinde.com/billing/manage-plans/cancel-plans/).
EXTENSION_SCOPES: tuple[str, ...] = (
    "read:billing",
    "write:billing",
    "read:workflow_runs",
    "delete:billing_agreements",
)

ALL_MANAGEMENT_SCOPES: tuple[str, ...] = (
    KINDE_SCOPES
    + KINDE_API_SCOPES
    + ACCESS_AND_WEBHOOK_SCOPES
    + FLAG_AND_PROPERTY_SCOPES
    + EXTENSION_SCOPES
)

WORKFLOWS_CLIENT_ID = "claimflow-workflows"
"""The client id of the token the server mints in-process for a workflow's Management API calls.

It names no stored application: its tokens are minted by the server itself, each carrying only
the scopes the running workflow declared, and live five minutes. It is reserved, so no seed file
can create an application under it and the Management API can neither change nor delete it.
"""
