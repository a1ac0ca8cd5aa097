"""The process around the engine: its lifecycle and watchdog, admission control, deadlines and
the uvicorn server with its SIGTERM drain."""
