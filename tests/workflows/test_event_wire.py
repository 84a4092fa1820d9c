"""The new triggers' events survive the runner protocol: ``event_from_wire(event_to_wire(e))``."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from claimflow.domain import BillingCustomer
from claimflow.management.plan_workflows import plan_change_event
from claimflow.oidc.workflow_events import m2m_token_generation_event
from claimflow.store._rows import utcnow
from claimflow.workflows.event import Trigger, event_from_wire, event_to_wire


def customer(of_organization: bool) -> BillingCustomer:
    return BillingCustomer(
        id="customer_1",
        email=None,
        org_code="org_1" if of_organization else None,
        user_id=None if of_organization else "kp_1",
        created_on=utcnow(),
    )


text = st.text(max_size=30)
maybe = st.none() | text


@given(
    client_id=text,
    name=maybe,
    org=maybe,
    audience=st.lists(text, max_size=3),
    scope=st.lists(text, max_size=3),
    ip=maybe,
)
def test_m2m_events_round_trip(
    client_id: str,
    name: str | None,
    org: str | None,
    audience: list[str],
    scope: list[str],
    ip: str | None,
) -> None:
    event = m2m_token_generation_event(
        issuer="http://claimflow.test",
        client_id=client_id,
        application_name=name,
        org_code=org or None,
        audience=tuple(audience),
        scope=tuple(scope),
        ip=ip,
    )
    wire = json.loads(json.dumps(event_to_wire(event)))
    assert event_from_wire(wire) == event
    assert event.subject == (None, org or None)


@given(ips=st.lists(st.none() | st.ip_addresses().map(str), min_size=2, max_size=6))
def test_a_kept_m2m_event_is_the_event_of_this_requests_arguments(ips: list[str | None]) -> None:
    """The events of an API key's requests are kept (``m2m_token_generation_event``): each
    request still gets an event of its own arguments, the address included, and the one built
    for equal arguments is equal."""
    for ip in ips + ips:
        event = m2m_token_generation_event(
            issuer="http://claimflow.test",
            client_id="m2m_key",
            org_code="org_1",
            audience=("http://claimflow.test/api",),
            scope=("read:users",),
            ip=ip,
            user_agent="client/1",
        )
        assert event.request.ip == ip and event.context.organization is not None
        assert event.context.organization.code == "org_1"
        assert event.request.auth.scope == ("read:users",)


@given(
    trigger=st.sampled_from([Trigger.USER_PLAN_SELECTION, Trigger.USER_PLAN_CANCELLATION_REQUEST]),
    org=st.booleans(),
    current=maybe,
    requested=maybe,
    agreement=maybe,
)
def test_plan_events_round_trip(
    trigger: Trigger, org: bool, current: str | None, requested: str | None, agreement: str | None
) -> None:
    event = plan_change_event(
        trigger,
        issuer="http://claimflow.test",
        customer=customer(org),
        current_plan_code=current,
        requested_plan_code=requested,
        agreement_id=agreement,
        user_agent="ua",
    )
    wire = json.loads(json.dumps(event_to_wire(event)))
    rebuilt = event_from_wire(wire)
    assert rebuilt == event and rebuilt.context.workflow.trigger is trigger
