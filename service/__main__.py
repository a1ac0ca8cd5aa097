"""`python -m service [--flags]`: settings from flags and GATEWAY_* variables, then uvicorn."""

from __future__ import annotations

import sys


def main() -> int:
    import uvicorn
    from pydantic_settings import CliApp

    from service.app import create_app
    from service.config import Settings
    from service.logs import configure_logging

    settings = CliApp.run(Settings)
    configure_logging(settings)  # before vLLM is imported: it reads its logging set-up then
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's loggers go through ours (configure_logging)
            access_log=False,  # service.access writes one richer line per request
        )
    )

    def stop_server() -> None:
        server.should_exit = True

    state = app.state.engine_state
    state.on_fatal = stop_server
    server.run()
    return 1 if state.failure is not None else 0


if __name__ == "__main__":  # the engine core is spawned: nothing may run at import
    sys.exit(main())
