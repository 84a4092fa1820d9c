"""The JSON Schemas of the claim forms ship with the package and are themselves valid."""

from __future__ import annotations

import jsonschema

from claimflow.claims import claim_schema, claim_schemas


def test_each_form_has_a_valid_draft_2020_12_schema_named_by_its_id() -> None:
    schemas = claim_schemas()
    assert set(schemas) == {
        "org_billing.full",
        "billingDetails.full",
        "billing.compact",
        "billing.reference",
    }
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/schemas/claims/{name}.json")


def test_an_unknown_name_has_no_schema() -> None:
    assert claim_schema("billing.tiny") is None
    assert claim_schema("billing.compact") is claim_schemas()["billing.compact"]
