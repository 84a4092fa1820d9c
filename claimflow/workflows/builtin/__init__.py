"""Built-in workflows: ``org_billing`` (B2B) and ``user_billing`` (B2C)."""
