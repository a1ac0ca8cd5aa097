"""`/v1/organization/admin_api_keys`: admin keys make, list, change and delete API keys at
runtime (the openai SDK's `admin.organization.admin_api_keys`, plus an update of a key's
limits, priority, weight and budgets).

Only admin keys may, and only while authentication is on: with it off these endpoints are 404
(a key made then would turn authentication on, or be ignored). A new key's plaintext is in the
create answer only; the store keeps its SHA-256. The keys of the settings and the key file are
listed but read-only (edit the file and restart). A change takes effect at once on this replica
(the keyring is refreshed before the answer) and on the others at their next sync.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Annotated, Any

from fastapi import Depends

from service.caller import Caller
from service.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from service.http.deps import CallerDep, GatewayDep
from service.http.keyring import Keyring
from service.http.keys import KEY_ID_CHARS, PRIORITIES, ApiKey
from service.schemas.organization import (
    AdminApiKey,
    AdminApiKeyCreate,
    AdminApiKeyCreated,
    AdminApiKeyList,
    AdminApiKeyUpdate,
    KeyOwner,
    PriorityName,
)
from service.store import Order, Store
from service.store.api_keys import DuplicateKeyError, KeyRecord

KEY_PREFIX = "sk-gw-"
LIST_LIMIT = 100
_PRIORITY_NAMES: dict[int, PriorityName] = {
    value: name  # type: ignore[misc]  # the names are PriorityName's
    for name, value in PRIORITIES.items()
}


def allowed(keyring: Keyring, caller: Caller) -> None:
    """404 while authentication is off; 403 for a key that is not an admin."""
    if not keyring.enabled:
        raise NotFoundError(
            "API keys are managed at runtime only while authentication is on (set api_keys or "
            "api_key_file); creating one never turns it on."
        )
    if not caller.admin:
        raise PermissionDeniedError("Only admin keys may manage API keys.")


def _configured(key: ApiKey, started: int) -> AdminApiKey:
    return AdminApiKey(
        id=key.key_id,
        name=key.name,
        redacted_value=f"(from {'the key file' if key.source == 'file' else 'api_keys'})",
        created_at=started,
        owner=KeyOwner(type="configuration"),
        source=key.source,
        admin=key.admin,
        priority=_PRIORITY_NAMES.get(key.priority, "normal"),
        weight=key.weight,
        requests_per_minute=key.requests_per_minute,
        tokens_per_minute=key.tokens_per_minute,
        tokens_per_day=key.tokens_per_day,
        tokens_per_month=key.tokens_per_month,
    )


def _runtime(record: KeyRecord, names: dict[str, str]) -> AdminApiKey:
    return AdminApiKey(
        id=record.id,
        name=record.name,
        redacted_value=record.redacted_value,
        created_at=record.created_at,
        expires_at=record.expires_at,
        owner=KeyOwner(type="api_key", id=record.owner, name=names.get(record.owner)),
        source="runtime",
        admin=record.admin,
        priority=_PRIORITY_NAMES.get(record.priority, "normal"),
        weight=record.weight,
        requests_per_minute=record.requests_per_minute,
        tokens_per_minute=record.tokens_per_minute,
        tokens_per_day=record.tokens_per_day,
        tokens_per_month=record.tokens_per_month,
    )


def _terms(request: AdminApiKeyUpdate, given: set[str]) -> dict[str, Any]:
    """The columns an update (or a create) sets: only the fields given."""
    terms: dict[str, Any] = {}
    for name in given & set(AdminApiKeyUpdate.model_fields):
        value = getattr(request, name)
        if name == "priority":
            value = PRIORITIES[value or "normal"]
        elif name == "weight":
            value = 1.0 if value is None else value
        elif name == "admin":
            value = bool(value)
        terms[name] = value
    return terms


class AdminKeys:
    """The operations, over the store and the keyring (`GatewayState.tenants.keyring`)."""

    def __init__(self, keyring: Keyring, store: Store) -> None:
        self._keyring = keyring
        self._store = store
        self._started = keyring.loaded_at  # the configured keys' created_at

    async def create(self, request: AdminApiKeyCreate, caller: Caller) -> AdminApiKeyCreated:
        if request.name in self._keyring.static_names():
            raise _duplicate(request.name)
        value = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hashlib.sha256(value.encode()).hexdigest()
        now = int(time.time())
        defaults: dict[str, Any] = {
            "admin": False,
            "priority": PRIORITIES["normal"],
            "weight": 1.0,
            "requests_per_minute": None,
            "tokens_per_minute": None,
            "tokens_per_day": None,
            "tokens_per_month": None,
        }
        record = KeyRecord(
            id=digest[:KEY_ID_CHARS],
            digest=digest,
            name=request.name,
            redacted_value=f"{KEY_PREFIX}...{value[-4:]}",
            owner=caller.owner,
            created_at=now,
            expires_at=None
            if request.expires_in_seconds is None
            else now + request.expires_in_seconds,
            **(defaults | _terms(request, request.model_fields_set)),
        )
        try:
            await self._store.runtime_keys.create(record)
        except DuplicateKeyError:
            raise _duplicate(request.name) from None
        await self._keyring.refresh()  # works at once here
        made = _runtime(record, self._keyring.names())
        return AdminApiKeyCreated(**made.model_dump(), value=value)

    async def list(self, *, after: str | None, limit: int, order: Order) -> AdminApiKeyList:
        if not 1 <= limit <= LIST_LIMIT:
            raise InvalidRequestError(f"'limit' must be from 1 to {LIST_LIMIT}.", param="limit")
        names = self._keyring.names()
        keys = [_configured(key, self._started) for key in self._keyring.static]
        keys += [_runtime(record, names) for record in await self._store.runtime_keys.active()]
        if order == "desc":
            keys.reverse()
        if after is not None:
            ids = [key.id for key in keys]
            keys = keys[ids.index(after) + 1 :] if after in ids else []
        page = keys[:limit]
        return AdminApiKeyList(
            data=page,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(keys) > limit,
        )

    async def get(self, key_id: str) -> AdminApiKey:
        record = await self._store.runtime_keys.get(key_id)
        if record is not None:
            return _runtime(record, self._keyring.names())
        configured = next((k for k in self._keyring.static if k.key_id == key_id), None)
        if configured is None:
            raise _unknown(key_id)
        return _configured(configured, self._started)

    async def update(self, key_id: str, request: AdminApiKeyUpdate) -> AdminApiKey:
        self._refuse_configured(key_id)
        record = await self._store.runtime_keys.change(
            key_id, _terms(request, request.model_fields_set)
        )
        if record is None:
            raise _unknown(key_id)
        await self._keyring.refresh()
        return _runtime(record, self._keyring.names())

    async def delete(self, key_id: str) -> None:
        self._refuse_configured(key_id)
        if not await self._store.runtime_keys.revoke(key_id, at=int(time.time())):
            raise _unknown(key_id)
        await self._keyring.refresh()  # 401 at once here

    def _refuse_configured(self, key_id: str) -> None:
        if any(key.key_id == key_id for key in self._keyring.static):
            raise InvalidRequestError(
                f"Key '{key_id}' comes from the operator's configuration (api_keys or the key "
                "file) and is read-only here: change it there and restart.",
                param="key_id",
            )


def _duplicate(name: str) -> InvalidRequestError:
    return InvalidRequestError(f"A key named '{name}' already exists.", param="name")


def _unknown(key_id: str) -> NotFoundError:
    return NotFoundError(f"No API key with id '{key_id}'.", param="key_id")


async def get_admin_keys(gateway: GatewayDep, caller: CallerDep) -> AdminKeys:
    """The operations, for an admin key while authentication is on (else 404 or 403)."""
    allowed(gateway.tenants.keyring, caller)
    return AdminKeys(gateway.tenants.keyring, gateway.store)


AdminKeysDep = Annotated[AdminKeys, Depends(get_admin_keys)]
