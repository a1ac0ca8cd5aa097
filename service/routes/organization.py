"""`/v1/organization/*`: API keys managed at runtime by admin keys, and usage reports (thin
handlers; docs/tenants.md)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from service.http.admin_keys import AdminKeysDep
from service.http.deps import CallerDep, GatewayDep
from service.schemas.organization import (
    AdminApiKey,
    AdminApiKeyCreate,
    AdminApiKeyCreated,
    AdminApiKeyDeleted,
    AdminApiKeyList,
    AdminApiKeyUpdate,
    UsagePage,
)
from service.services.tenants import usage_report
from service.store.usage import Surface

router = APIRouter(prefix="/v1/organization", tags=["organization"])


@router.post("/admin_api_keys")
async def create_key(
    request: AdminApiKeyCreate, keys: AdminKeysDep, caller: CallerDep
) -> AdminApiKeyCreated:
    """A new API key; its value is in this answer only."""
    return await keys.create(request, caller)


@router.get("/admin_api_keys")
async def list_keys(
    keys: AdminKeysDep,
    after: str | None = None,
    limit: int = 20,
    order: Literal["asc", "desc"] = "asc",
) -> AdminApiKeyList:
    """Every key: the configured ones (read-only), then those made at runtime."""
    return await keys.list(after=after, limit=limit, order=order)


@router.get("/admin_api_keys/{key_id}")
async def get_key(key_id: str, keys: AdminKeysDep) -> AdminApiKey:
    return await keys.get(key_id)


@router.post("/admin_api_keys/{key_id}")
async def update_key(key_id: str, request: AdminApiKeyUpdate, keys: AdminKeysDep) -> AdminApiKey:
    """Change a runtime key's limits, priority, weight, budgets or admin right."""
    return await keys.update(key_id, request)


@router.delete("/admin_api_keys/{key_id}")
async def delete_key(key_id: str, keys: AdminKeysDep) -> AdminApiKeyDeleted:
    """Revoke a runtime key: 401 from then on, on every replica within a sync."""
    await keys.delete(key_id)
    return AdminApiKeyDeleted(id=key_id)


async def _usage(
    surface: Surface, request: Request, gateway: GatewayDep, caller: CallerDep
) -> UsagePage:
    params = usage_report.parse(surface, request.query_params.multi_items())
    await gateway.tenants.meter.sync()  # this replica's latest usage too, not a second old
    names = gateway.tenants.keyring.names()
    return await usage_report.report(gateway.store.usage, surface, params, caller, names=names)


@router.get("/usage/completions")
async def usage_completions(request: Request, gateway: GatewayDep, caller: CallerDep) -> UsagePage:
    """Tokens and requests of chat, completions, Responses, Messages and the task API."""
    return await _usage("completions", request, gateway, caller)


@router.get("/usage/embeddings")
async def usage_embeddings(request: Request, gateway: GatewayDep, caller: CallerDep) -> UsagePage:
    """Tokens and requests of embeddings and rerank."""
    return await _usage("embeddings", request, gateway, caller)
