"""`GET /metrics`: vLLM's engine metrics and the gateway's, in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.metrics import CONTENT_TYPE, GatewayMetrics

router = APIRouter(tags=["observability"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Rendered in the thread pool: a scrape walks every series and should not hold the loop."""
    gateway: GatewayMetrics = request.app.state.metrics
    return Response(gateway.render(), media_type=CONTENT_TYPE)
