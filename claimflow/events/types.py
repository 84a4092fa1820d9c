"""Kinde's webhook event types, for the changes claimflow makes.

Names are Kinde's (docs.kinde.com "Add and manage webhooks" and "Respond to customer activity
using webhooks"; ``@kinde/webhooks`` ``WebhookEventType``). A change of an organization
membership, or of a member's roles or permissions, is Kinde's ``user.updated`` (its payload
lists the user's organizations with their roles and permissions); a plan change is
``customer.agreement_created`` for the new agreement ("a customer signs up to a plan or changes
plans") and ``customer.agreement_cancelled`` for each agreement it replaced.
"""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    ORGANIZATION_CREATED = "organization.created"
    ORGANIZATION_UPDATED = "organization.updated"
    ORGANIZATION_DELETED = "organization.deleted"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    ROLE_CREATED = "role.created"
    ROLE_UPDATED = "role.updated"
    ROLE_DELETED = "role.deleted"
    PERMISSION_CREATED = "permission.created"
    PERMISSION_UPDATED = "permission.updated"
    PERMISSION_DELETED = "permission.deleted"
    AGREEMENT_CREATED = "customer.agreement_created"
    AGREEMENT_CANCELLED = "customer.agreement_cancelled"


EVENT_TYPE_NAMES: dict[EventType, str] = {
    EventType.ORGANIZATION_CREATED: "Organization created",
    EventType.ORGANIZATION_UPDATED: "Organization updated",
    EventType.ORGANIZATION_DELETED: "Organization deleted",
    EventType.USER_CREATED: "User created",
    EventType.USER_UPDATED: "User updated (profile, organizations, roles or permissions)",
    EventType.USER_DELETED: "User deleted",
    EventType.ROLE_CREATED: "Role created",
    EventType.ROLE_UPDATED: "Role updated",
    EventType.ROLE_DELETED: "Role deleted",
    EventType.PERMISSION_CREATED: "Permission created",
    EventType.PERMISSION_UPDATED: "Permission updated",
    EventType.PERMISSION_DELETED: "Permission deleted",
    EventType.AGREEMENT_CREATED: "Customer agreement created (plan signed up to or changed)",
    EventType.AGREEMENT_CANCELLED: "Customer agreement cancelled",
}
