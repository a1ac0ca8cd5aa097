"""Pure ASGI middleware: API keys, per-caller rate limits, the body size limit; and CORS.

Per HTTP request, in this order, each refusal answered at once in OpenAI's error shape (in
Anthropic's under `/v1/messages`, `service/http/encode.py`):
1. API key (when `api_keys` or `api_key_file` is set): `Authorization: Bearer <key>`, or
   `x-api-key: <key>` (what Anthropic's SDK sends; it wins when both are sent), looked up in
   constant time (`service/http/keys.py`); no key or a wrong one: 401 `invalid_api_key` with
   `WWW-Authenticate: Bearer`. The key becomes the request's `Caller` (key id and name, admin,
   priority), left in the ASGI scope for `CallerDep`; its hashed id and name go on the access
   log line (`key_id`, `key_name`); the key itself never goes anywhere.
2. Body size: a `Content-Length` over `max_body_bytes`: 413 before the body is read. A body
   without one (chunked) is counted as it streams in, and answered 413 once it passes the limit.
3. Rate limits (`service/http/ratelimit.py`), per key, or per client IP when authentication is off:
   429 `rate_limit_exceeded` with `Retry-After`. The request is charged when admitted, its
   tokens when it ends (read from the request context). The buckets live in this process, or in
   Redis when `redis_url` is set (`service/http/ratelimit_redis.py`: one limit across replicas).
   Behind `trusted_proxies`, the client IP comes from `X-Forwarded-For` (`client_ip.py`).

`OPEN_PATHS` (probes, the scrape, the API docs) and the playground's static files need no key
and are not rate limited; the body limit applies to every path. The observability middleware
must be outside this one: it opens the request context read here, and counts and logs the
refusals (with the request id).
With no keys and no limits, only the body limit runs (a header scan per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service.caller import Caller
from service.config import Settings
from service.errors import (
    AuthenticationError,
    GatewayError,
    RateLimitError,
)
from service.http.body_limit import BodyLimit, too_large
from service.http.client_ip import TrustedProxies
from service.http.encode import send_error
from service.http.keys import ApiKey, KeyStore, build_key_store
from service.http.paths import PROBE_PATHS, UNCHARGED_PATHS
from service.http.ratelimit import Limiter, LocalLimiter, Refusal, Ticket
from service.telemetry import context
from service.telemetry.context import RequestContext
from service.telemetry.metrics import GatewayMetrics

# Reachable without a key, never rate limited: probes, the scrape, and the docs (the schema is
# the API's public shape; a browser opening /docs cannot send a key for /openapi.json anyway).
OPEN_PATHS = PROBE_PATHS

# Where the middleware leaves the authenticated caller for `CallerDep` (the ASGI scope's state).
CALLER_STATE = "gateway.caller"

# Any request header: the OpenAI JS SDK in a browser sends its own x-stainless-* headers.
CORS_ALLOW_HEADERS = ("*",)
CORS_EXPOSE_HEADERS = ("x-request-id", "request-id", "Retry-After")

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or in an x-api-key header."
)
_NOT_BEARER = "The Authorization header must use Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
_WRONG_KEY = "Incorrect API key provided."


@dataclass(slots=True)
class SecurityPolicy:
    """What the middleware enforces; one per app (`GatewayState.security`)."""

    max_body_bytes: int
    keys: KeyStore | None = None  # None: authentication off
    limiter: Limiter | None = None  # None: no limit for anybody
    requests_per_minute: int | None = None  # defaults: per key, or per IP with auth off
    tokens_per_minute: int | None = None
    open_paths: frozenset[str] = OPEN_PATHS
    trusted_proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(()))

    def attach_metrics(self, metrics: GatewayMetrics) -> None:
        """Count the shared limiter's backend failures in the app's metrics."""
        if self.limiter is not None:
            self.limiter.count_errors_in(metrics.ratelimit_backend_errors)

    async def aclose(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()


def build_limiter(settings: Settings) -> Limiter:
    """Redis when `redis_url` is set (imported only then), else the in-process buckets."""
    if settings.redis_url is None:
        return LocalLimiter()
    from service.http.ratelimit_redis import RedisLimiter

    return RedisLimiter(
        settings.redis_url.get_secret_value(),
        failure=settings.redis_failure,
        timeout=settings.redis_timeout_seconds,
    )


def docs_paths(app: FastAPI) -> set[str]:
    paths = {app.openapi_url, app.docs_url, app.redoc_url}
    if app.docs_url and app.swagger_ui_oauth2_redirect_url:
        paths.add(app.swagger_ui_oauth2_redirect_url)
    return {path for path in paths if path}


def build_policy(settings: Settings, open_paths: frozenset[str] = OPEN_PATHS) -> SecurityPolicy:
    """The policy for `settings`; `KeyFileError` (a ValueError) for an unusable key setting."""
    keys = build_key_store(settings.api_keys, settings.api_key_file)
    limited = bool(settings.requests_per_minute or settings.tokens_per_minute) or (
        keys is not None and any(k.requests_per_minute or k.tokens_per_minute for k in keys)
    )
    return SecurityPolicy(
        max_body_bytes=settings.max_body_bytes,
        keys=keys,
        limiter=build_limiter(settings) if limited else None,
        requests_per_minute=settings.requests_per_minute,
        tokens_per_minute=settings.tokens_per_minute,
        open_paths=open_paths,
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
    )


def install_security(
    app: FastAPI, settings: Settings, *, page_paths: frozenset[str] = frozenset()
) -> SecurityPolicy:
    """Add the security middleware (and CORS, when origins are configured) to `app`.

    `page_paths` are static pages that need no key either (the playground: a browser opening
    it cannot send one; the API calls it makes carry the key typed into it). Call it before
    `install_observability`, which must stay outermost. Raises `KeyFileError` when the key
    settings are unusable, so that a misconfigured gateway does not start.
    """
    policy = build_policy(settings, OPEN_PATHS | docs_paths(app) | page_paths)
    app.add_middleware(SecurityMiddleware, policy=policy)
    if settings.cors_allow_origins:
        # Outside the key check: preflights carry no key, and browsers need CORS headers on
        # 401 and 429 to show them to the page.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
        )
    return policy


def _is_open(scope: Scope, open_paths: frozenset[str]) -> bool:
    path: str = scope["path"]
    if path in open_paths:
        return True
    root: str = scope.get("root_path", "")
    return bool(root) and path.startswith(root) and path[len(root) :] in open_paths


def _bearer(authorization: bytes) -> bytes | None:
    scheme, _, token = authorization.strip().partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else None


@dataclass(slots=True)
class _Headers:
    """The request headers this middleware reads, found in one pass."""

    length: bytes | None = None
    authorization: bytes | None = None
    api_key: bytes | None = None  # x-api-key
    forwarded_for: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, scope: Scope) -> _Headers:
        found = cls()
        for name, value in scope["headers"]:
            if name == b"content-length":
                found.length = value
            elif name == b"authorization" and found.authorization is None:
                found.authorization = value
            elif name == b"x-api-key" and found.api_key is None:
                found.api_key = value
            elif name == b"x-forwarded-for":
                found.forwarded_for.append(value)
        return found


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def client_address(scope: Scope, trusted_proxies: TrustedProxies) -> str:
    """The client's address: the peer, or the forwarded one behind trusted proxies."""
    peer = _peer(scope)
    if not trusted_proxies:
        return peer
    forwarded = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
    return trusted_proxies.client(peer, forwarded)


def caller_of(scope: Scope) -> Caller | None:
    """The caller the middleware authenticated (None: authentication off, or an open path)."""
    state: dict[str, Any] = scope.get("state") or {}
    caller: Caller | None = state.get(CALLER_STATE)
    return caller


def _remember(scope: Scope, caller: Caller, ctx: RequestContext | None) -> None:
    """Hand the caller to the app (`CallerDep`) and its key to the access log."""
    scope.setdefault("state", {})[CALLER_STATE] = caller
    if ctx is not None:
        ctx.log_fields["key_id"] = caller.key_id
        if caller.key_name is not None:
            ctx.log_fields["key_name"] = caller.key_name


def _rate_limited(refusal: Refusal, limiter: Limiter) -> RateLimitError:
    message = (
        f"Rate limit reached for {refusal.limit} per minute (limit "
        f"{refusal.per_minute} {limiter.scope}). Please try again in "
        f"{refusal.retry_after}s."
    )
    return RateLimitError(message, retry_after=refusal.retry_after, limit=refusal.limit)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy
        self.guarded = policy.keys is not None or policy.limiter is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy
        headers = _Headers.of(scope)
        ctx = context.current()
        guarded = self.guarded and not _is_open(scope, policy.open_paths)
        key: ApiKey | None = None
        if guarded and policy.keys is not None:
            key = await self._authenticate(policy.keys, headers, scope, send, ctx)
            if key is None:
                return
            _remember(scope, self._caller(key, scope, headers), ctx)
        if headers.length is not None:
            if headers.length.isdigit() and int(headers.length) > policy.max_body_bytes:
                await send_error(send, too_large(policy.max_body_bytes), ctx, scope)
                return
        else:  # chunked, or no body: count what comes in
            body = BodyLimit(scope, receive, send, policy.max_body_bytes, ctx)
            receive, send = body.receive, body.send
        ticket: Ticket | None = None
        if guarded and policy.limiter is not None and not _is_open(scope, UNCHARGED_PATHS):
            admitted = await self._charge(policy.limiter, key, scope, headers, send, ctx)
            if admitted is False:
                return
            ticket = admitted
        if ticket is None:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if ctx is not None and ctx.open_work:  # its tokens are charged when that ends
                ctx.deferred_charge = ticket.finish
            else:
                await ticket.finish(ctx.tokens if ctx is not None else 0)

    def _caller(self, key: ApiKey, scope: Scope, headers: _Headers) -> Caller:
        peer = _peer(scope)
        if self.policy.trusted_proxies:
            peer = self.policy.trusted_proxies.client(peer, headers.forwarded_for)
        return Caller(
            key_id=key.key_id,
            key_name=key.name,
            admin=key.admin,
            priority=key.priority,
            client=peer,
        )

    async def _charge(
        self,
        limiter: Limiter,
        key: ApiKey | None,
        scope: Scope,
        headers: _Headers,
        send: Send,
        ctx: RequestContext | None,
    ) -> Ticket | Literal[False] | None:
        """The request's rate-limit ticket (None: not limited); False once refused (sent)."""
        try:
            admitted = await self._admit(self.policy, limiter, key, scope, headers.forwarded_for)
        except GatewayError as unchecked:  # the shared limits cannot be checked (closed)
            await send_error(send, unchecked, ctx, scope)
            return False
        if isinstance(admitted, Refusal):
            await send_error(send, _rate_limited(admitted, limiter), ctx, scope)
            return False
        return admitted

    @staticmethod
    async def _authenticate(
        keys: KeyStore, headers: _Headers, scope: Scope, send: Send, ctx: RequestContext | None
    ) -> ApiKey | None:
        authorization = headers.authorization
        if headers.api_key is not None:
            presented: bytes | None = headers.api_key.strip()
        else:
            presented = _bearer(authorization) if authorization is not None else None
        key = keys.find(presented) if presented else None
        if key is None:
            if authorization is None and headers.api_key is None:
                message = _NO_KEY
            elif presented is None:
                message = _NOT_BEARER
            else:
                message = _WRONG_KEY  # never echo any part of what was sent
            await send_error(send, AuthenticationError(message), ctx, scope)
            return None
        return key

    @staticmethod
    async def _admit(
        policy: SecurityPolicy,
        limiter: Limiter,
        key: ApiKey | None,
        scope: Scope,
        forwarded_for: list[bytes],
    ) -> Ticket | Refusal | None:
        if key is not None:
            name = "key:" + key.digest.hex()
            rpm = key.requests_per_minute or policy.requests_per_minute
            tpm = key.tokens_per_minute or policy.tokens_per_minute
        else:
            peer = _peer(scope)
            if policy.trusted_proxies:
                peer = policy.trusted_proxies.client(peer, forwarded_for)
            name = "ip:" + peer
            rpm, tpm = policy.requests_per_minute, policy.tokens_per_minute
        if not (rpm or tpm):
            return None
        return await limiter.admit(name, rpm, tpm)
