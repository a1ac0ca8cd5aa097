"""Tenants: what each key used (usage reports) and may use (budgets), and the keys admins manage
at runtime (docs/tenants.md). No FastAPI here; the HTTP side is `service/http/tenancy.py`
(budgets and usage per request) and `service/http/keyring.py` (the keys the middleware accepts).

    windows.py       the budgets' UTC days and months
    meter.py         usage counted in memory, written to the store in the background; budgets
    usage_report.py  /v1/organization/usage/*: OpenAI's buckets from the store's minutes

Runtime keys (`/v1/organization/admin_api_keys`) are the HTTP edge's: `service/http/admin_keys.py`
beside the key store they feed.
"""

from service.services.tenants.meter import SURFACES, Budget, UsageMeter

__all__ = ["SURFACES", "Budget", "UsageMeter"]
