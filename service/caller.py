"""Who is calling: the identity and class a request's work runs under, passed explicitly.

The security middleware makes a `Caller` from the API key (`service/http/security.py`), routes
receive it as `CallerDep` (`service/http/deps.py`), and services take it as an argument: no
layer below `http/` reads it from the request context. Work that runs without a live request
(a batch line, a background response) rebuilds it from what was stored with that work
(`Caller.stored`), so it runs under the same key, priority and owner as the request that
created it. Imports nothing from the package, so every layer can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The owner of everything stored while authentication is off: one anonymous owner.
ANONYMOUS_OWNER = "anonymous"


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    # The API key's public id (a sha256 prefix, as the logs show it); None: authentication off.
    key_id: str | None = None
    key_name: str | None = None
    # Whether the caller may use admin endpoints. With authentication off every caller may
    # (there is nobody to tell apart); outside a request nothing may, as a Caller must be made.
    admin: bool = False
    # The priority class, vLLM's convention (lower runs earlier): high -10, normal 0, low 10.
    priority: int = 0
    # The client's address (behind trusted proxies, the forwarded one): the tenant when
    # authentication is off.
    client: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.key_id is not None

    @property
    def owner(self) -> str:
        """Who stored things belong to: the key, or the one anonymous owner."""
        return self.key_id or ANONYMOUS_OWNER

    @property
    def tenant(self) -> str:
        """Whose share of the gateway this request takes: the key, else the client address."""
        if self.key_id is not None:
            return "key:" + self.key_id
        return "ip:" + (self.client or "unknown")

    @classmethod
    def unauthenticated(cls, client: str | None = None) -> Caller:
        """A caller while API keys are off: any caller may do anything, at normal priority."""
        return cls(admin=True, client=client)

    def record(self) -> dict[str, Any]:
        """What to store beside work that runs later, to rebuild this caller (`stored`)."""
        return {
            "key_id": self.key_id,
            "key_name": self.key_name,
            "admin": self.admin,
            "priority": self.priority,
            "client": self.client,
        }

    @classmethod
    def stored(cls, record: dict[str, Any]) -> Caller:
        """The caller `record()` described (a batch line's, a background response's)."""
        return cls(
            key_id=record.get("key_id"),
            key_name=record.get("key_name"),
            admin=bool(record.get("admin", False)),
            priority=int(record.get("priority", 0)),
            client=record.get("client"),
        )
