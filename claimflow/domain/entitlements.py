"""Entitlements are derived, never stored: active agreements x their plan's prices.

Deriving them at read time is what makes a plan change through ``POST /billing/agreements`` or a
price change show up in ``GET /billing/entitlements`` at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

from claimflow.domain.models import Agreement, Entitlement, Feature, Plan


def entitlement_id(agreement_id: str, feature_code: str) -> str:
    """A stable id for (agreement, feature), usable as a paging cursor."""
    digest = hashlib.sha256(f"{agreement_id}\x00{feature_code}".encode()).hexdigest()
    return "entitlement_" + digest[:32]


def derive_entitlements(
    agreements: Iterable[Agreement],
    plans: Mapping[str, Plan],
    features: Mapping[str, Feature],
    now: datetime,
) -> list[Entitlement]:
    """Entitlements of the active agreements, ordered by agreement start then feature code."""
    result: list[Entitlement] = []
    for agreement in sorted(agreements, key=lambda a: (a.started_on, a.id)):
        if not agreement.is_active(now):
            continue
        plan = plans.get(agreement.plan_code)
        if plan is None:
            continue
        for price in sorted(plan.prices, key=lambda p: p.feature_code):
            feature = features.get(price.feature_code)
            result.append(
                Entitlement(
                    id=entitlement_id(agreement.id, price.feature_code),
                    agreement_id=agreement.id,
                    plan_code=plan.code,
                    feature_code=price.feature_code,
                    feature_name=feature.name if feature else price.feature_code,
                    price_name=price.price_name,
                    fixed_charge=price.fixed_charge,
                    unit_amount=price.unit_amount,
                    entitlement_limit_min=price.entitlement_limit_min,
                    entitlement_limit_max=price.entitlement_limit_max,
                )
            )
    return result
