"""Liveness, readiness and load, for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.errors import EngineDeadError
from service.http.deps import GatewayDep, StateDep
from service.schemas.common import LoadReport

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


@router.get("/get_load")
async def get_load(gateway: GatewayDep) -> LoadReport:
    """This replica's load, where `vllm-router`'s load-aware policy (`power_of_two`) polls it:
    engine sequences waiting for admission plus those admitted, the sum of the
    `gateway_queue_depth` and `gateway_sequences_in_flight` gauges."""
    admission = gateway.admission
    return LoadReport(
        load=admission.queued + admission.in_flight,
        queue_depth=admission.queued,
        sequences_in_flight=admission.in_flight,
    )
