"""Liveness and readiness, for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.errors import EngineDeadError
from service.http.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive and serving HTTP (the engine may still be loading)."""
    return {"status": "ok"}


@router.get("/ready", response_model=None)
async def ready(state: StateDep) -> dict[str, str] | JSONResponse:
    """200 once every configured engine (generation, and embeddings when on) has served its
    warm-up and is still healthy; 503 while they start, from the first moment of a drain
    (SIGTERM), and after any engine's failure."""
    if state.engine is None or not state.ready:
        raise state.unavailable_error()
    try:
        await state.check_health()
    except EngineDeadError as err:  # found before the watchdog's next look
        state.fail("the engine is not healthy", err)
        raise
    return {"status": "ready"}
