"""`python -m service [--flags]`: settings from flags and GATEWAY_* variables, then the server
(`service/runtime/server.py`: uvicorn, with SIGTERM draining in-flight requests first)."""

from __future__ import annotations

import sys


def main() -> int:
    import uvicorn
    from pydantic_settings import CliApp

    from service.app import create_app
    from service.config import Settings
    from service.http.client_ip import TrustedProxies
    from service.http.deps import gateway_state
    from service.runtime.server import CLOSE_GRACE_SECONDS, GatewayServer
    from service.telemetry.logs import configure_logging

    settings = CliApp.run(Settings)
    configure_logging(settings)  # before vLLM is imported: it reads its logging set-up then
    app = create_app(settings)
    state = gateway_state(app).engine_state
    server = GatewayServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's loggers go through ours (configure_logging)
            access_log=False,  # service.access writes one richer line per request
            timeout_graceful_shutdown=CLOSE_GRACE_SECONDS,
            # uvicorn rewrites the client address (logs, traces) from X-Forwarded-For by the
            # same trusted proxies as the rate limits; unset, its own default (localhost).
            forwarded_allow_ips=TrustedProxies(settings.trusted_proxies).as_strings() or None,
        ),
        state,
        settings.drain_timeout_seconds,
    )

    def stop_server() -> None:
        server.should_exit = True

    state.on_fatal = stop_server
    server.run()
    return 1 if state.failure is not None else 0


if __name__ == "__main__":  # the engine core is spawned: nothing may run at import
    sys.exit(main())
