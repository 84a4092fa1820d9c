"""claimflow extension: the billing catalogue (features, plans with prices) and customers.

Kinde keeps these in its dashboard; we expose them under ``/api/v1/billing/`` in Kinde's style
(snake_case, ``{"errors": [{"code", "message"}]}``, scopes ``read:billing``/``write:billing``)
and document them as ours with the OpenAPI tag "claimflow extension". Any change to what a
customer is entitled to is published to ``billing_changes`` after its transaction commits.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, model_validator

from claimflow.domain import BillingCustomer, Feature, FeatureKind, Plan
from claimflow.events import outbox
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import (
    Amount,
    Code,
    CodePath,
    Email,
    Name,
    StrictModel,
    iso,
)
from claimflow.store import billing

EXTENSION_TAG = "claimflow extension"

router = APIRouter(prefix="/billing", tags=[EXTENSION_TAG])

read_billing = Depends(require_scope("read:billing"))
write_billing = Depends(require_scope("write:billing"))

Kind = Literal["boolean", "limit", "metered"]


class NewFeature(BaseModel):
    model_config = StrictModel

    code: Code
    name: Name
    kind: Kind


class FeatureChanges(BaseModel):
    model_config = StrictModel

    name: Name | None = None
    kind: Kind | None = None


class Price(BaseModel):
    """One feature's price and limits on a plan; amounts in the currency's minor unit."""

    model_config = StrictModel

    feature_code: Code
    price_name: Name
    fixed_charge: Amount | None = None
    unit_amount: Amount | None = None
    entitlement_limit_min: Amount | None = None
    entitlement_limit_max: Amount | None = None

    def as_input(self) -> billing.PriceInput:
        return billing.PriceInput(**self.model_dump())


class NewPlan(BaseModel):
    model_config = StrictModel

    code: Code
    name: Name
    prices: list[Price] = Field(default_factory=list, max_length=200)


class PlanChanges(BaseModel):
    model_config = StrictModel

    name: Name | None = None
    prices: list[Price] | None = Field(default=None, max_length=200)


class NewCustomer(BaseModel):
    """A billing customer owned by exactly one organization or one user."""

    model_config = StrictModel

    org_code: Code | None = None
    user_id: Code | None = None
    email: Email
    plan_code: Code | None = None

    @model_validator(mode="after")
    def one_owner(self) -> NewCustomer:
        if (self.org_code is None) == (self.user_id is None):
            raise ValueError("give exactly one of org_code or user_id")
        return self


class FeatureOut(BaseModel):
    code: str
    name: str
    kind: Kind


class PriceOut(BaseModel):
    feature_code: str
    price_name: str
    fixed_charge: int | None
    unit_amount: int | None
    entitlement_limit_min: int | None
    entitlement_limit_max: int | None


class PlanOut(BaseModel):
    code: str
    name: str
    created_on: str | None = Field(description="RFC 3339 with an offset.")
    prices: list[PriceOut]


class CustomerOut(BaseModel):
    id: str
    email: str | None
    org_code: str | None
    user_id: str | None
    created_on: str | None


class CreatedCustomer(BaseModel):
    id: str


class FeatureResponse(BaseModel):
    feature: FeatureOut


class FeaturesResponse(BaseModel):
    features: list[FeatureOut]


class PlanResponse(BaseModel):
    plan: PlanOut


class PlansResponse(BaseModel):
    plans: list[PlanOut]


class CustomerResponse(BaseModel):
    customer: CustomerOut


class CreatedCustomerResponse(BaseModel):
    customer: CreatedCustomer


def feature_json(feature: Feature) -> dict[str, Any]:
    return {"code": feature.code, "name": feature.name, "kind": feature.kind.value}


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "code": plan.code,
        "name": plan.name,
        "created_on": iso(plan.created_on),
        "prices": [
            {
                "feature_code": p.feature_code,
                "price_name": p.price_name,
                "fixed_charge": p.fixed_charge,
                "unit_amount": p.unit_amount,
                "entitlement_limit_min": p.entitlement_limit_min,
                "entitlement_limit_max": p.entitlement_limit_max,
            }
            for p in plan.prices
        ],
    }


def customer_json(customer: BillingCustomer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "email": customer.email,
        "org_code": customer.org_code,
        "user_id": customer.user_id,
        "created_on": iso(customer.created_on),
    }


@router.post(
    "/features", status_code=201, response_model=FeatureResponse, summary="Create a feature"
)
async def create_feature(request: Request, body: NewFeature, _: object = write_billing) -> Any:
    async with services_of(request).db.transaction() as conn:
        feature = await billing.create_feature(
            conn, code=body.code, name=body.name, kind=FeatureKind(body.kind)
        )
    return {"feature": feature_json(feature)}


@router.get("/features", response_model=FeaturesResponse, summary="List features")
async def list_features(request: Request, _: object = read_billing) -> Any:
    async with services_of(request).db.connect() as conn:
        features = await billing.list_features(conn)
    return {"features": [feature_json(f) for f in features]}


@router.get("/features/{code}", response_model=FeatureResponse, summary="Get a feature")
async def get_feature(request: Request, code: CodePath, _: object = read_billing) -> Any:
    async with services_of(request).db.connect() as conn:
        feature = await billing.get_feature(conn, code)
    return {"feature": feature_json(feature)}


@router.patch("/features/{code}", response_model=FeatureResponse, summary="Update a feature")
async def update_feature(
    request: Request, code: CodePath, body: FeatureChanges, _: object = write_billing
) -> Any:
    services = services_of(request)
    async with services.db.transaction() as conn:
        feature = await billing.update_feature(
            conn, code, name=body.name, kind=FeatureKind(body.kind) if body.kind else None
        )
        affected = await billing.customers_with_feature(conn, code)
    await services.billing_changes.publish(affected)
    return {"feature": feature_json(feature)}


@router.post(
    "/plans", status_code=201, response_model=PlanResponse, summary="Create a plan with its prices"
)
async def create_plan(request: Request, body: NewPlan, _: object = write_billing) -> Any:
    async with services_of(request).db.transaction() as conn:
        plan = await billing.create_plan(
            conn, code=body.code, name=body.name, prices=[p.as_input() for p in body.prices]
        )
    return {"plan": plan_json(plan)}


@router.get("/plans", response_model=PlansResponse, summary="List plans")
async def list_plans(request: Request, _: object = read_billing) -> Any:
    async with services_of(request).db.connect() as conn:
        plans = await billing.list_plans(conn)
    return {"plans": [plan_json(p) for p in plans]}


@router.get("/plans/{code}", response_model=PlanResponse, summary="Get a plan")
async def get_plan(request: Request, code: CodePath, _: object = read_billing) -> Any:
    async with services_of(request).db.connect() as conn:
        plan = await billing.get_plan(conn, code)
    return {"plan": plan_json(plan)}


@router.patch(
    "/plans/{code}", response_model=PlanResponse, summary="Rename a plan or replace its prices"
)
async def update_plan(
    request: Request, code: CodePath, body: PlanChanges, _: object = write_billing
) -> Any:
    """``prices``, when given, replaces the plan's whole price list; customers see it at once."""
    services = services_of(request)
    prices = None if body.prices is None else [p.as_input() for p in body.prices]
    async with services.db.transaction() as conn:
        plan = await billing.update_plan(conn, code, name=body.name, prices=prices)
        affected = await billing.customers_on_plan(conn, code)
    await services.billing_changes.publish(affected)
    return {"plan": plan_json(plan)}


@router.post(
    "/customers",
    status_code=201,
    response_model=CreatedCustomerResponse,
    summary="Create a billing customer",
)
async def create_customer(request: Request, body: NewCustomer, _: object = write_billing) -> Any:
    services = services_of(request)
    async with services.db.transaction() as conn:
        customer = await billing.create_customer(
            conn, org_code=body.org_code, user_id=body.user_id, email=body.email
        )
        if body.plan_code is not None:
            agreement = await billing.create_agreement(
                conn, customer_id=customer.id, plan_code=body.plan_code
            )
            await outbox.agreement_created(conn, agreement)
    if body.plan_code is not None:
        await services.billing_changes.publish([customer.id])
    return {"customer": {"id": customer.id}}


@router.get(
    "/customers/{customer_id}", response_model=CustomerResponse, summary="Get a billing customer"
)
async def get_customer(request: Request, customer_id: CodePath, _: object = read_billing) -> Any:
    async with services_of(request).db.connect() as conn:
        customer = await billing.get_customer(conn, customer_id)
    return {"customer": customer_json(customer)}
