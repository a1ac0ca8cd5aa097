"""`GET /metrics`: vLLM's engine metrics and the gateway's, in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.http.deps import gateway_state
from service.telemetry.metrics import CONTENT_TYPE

router = APIRouter(tags=["observability"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Rendered in the thread pool: a scrape walks every series and should not hold the loop."""
    return Response(gateway_state(request.app).metrics.render(), media_type=CONTENT_TYPE)
