"""Liveness and readiness, for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import StateDep
from service.errors import EngineUnavailableError

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive and serving HTTP (the engine may still be loading)."""
    return {"status": "ok"}


@router.get("/ready", response_model=None)
async def ready(state: StateDep) -> dict[str, str] | JSONResponse:
    """200 once the engine has produced its warm-up token and is still healthy."""
    if state.engine is None or not state.ready:
        raise EngineUnavailableError(state.unavailable_reason())
    await state.engine.check_health()
    return {"status": "ready"}
