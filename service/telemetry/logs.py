"""Logging: one JSON object per line by default (`log_format: text` for local use).

Every record made while a request is being served carries that request's id (`request_id`), set
by a log-record factory from the request contextvar, so a library's log line inside a request is
as traceable as ours. Structured fields go in `extra={"fields": {...}}`; both formatters print
them. Prompts and outputs are never logged unless `log_prompts` is set (a debugging aid).

`configure_logging` is the one place that sets handlers, called by `python -m service`. Apps built
in tests only install the record factory (`install_request_ids`), so their records carry ids too.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.telemetry.context import current_request_id

if TYPE_CHECKING:
    from service.config import Settings

_installed = False
_MISSING = object()


def install_request_ids() -> None:
    """Add `request_id` to log records made inside a request (idempotent, process-wide)."""
    global _installed
    if _installed:
        return
    inner: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        # Only inside a request: outside one, `extra={"request_id": ...}` stays possible.
        request_id = current_request_id()
        if request_id is not None:
            record.request_id = request_id
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


# Libraries that log request or response payloads at DEBUG (sse-starlette: every chunk sent).
_PAYLOAD_LOGGERS = ("sse_starlette",)


def keep_payloads_out(*, log_prompts: bool) -> None:
    """Cap payload-logging libraries at INFO, so `log_level: debug` alone logs no outputs."""
    for name in _PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if log_prompts else logging.INFO)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "request_id"?, ...fields, "exc_info"?}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message key=value ...` for reading in a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # The record is shared with other handlers: fill the placeholder in, then take it out.
        placeholder = getattr(record, "request_id", None) is None
        if placeholder:
            saved = record.__dict__.get("request_id", _MISSING)
            record.request_id = "-"
        try:
            line = super().format(record)
        finally:
            if placeholder:
                if saved is _MISSING:
                    delattr(record, "request_id")
                else:
                    record.request_id = saved
        fields = _fields(record)
        if not fields:
            return line
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {pairs}{newline}{rest}"


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(settings: Settings) -> None:
    """Root handler on stderr in the chosen format; uvicorn's loggers go through it.

    uvicorn is then started with `log_config=None, access_log=False`: its error log propagates
    here, and its access log is off because ours (`service.access`) says more.
    """
    install_request_ids()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.setLevel(logging.NOTSET)  # uvicorn.Config sets its own log_level later
        uvicorn_logger.propagate = True
    if settings.log_format == "json":
        os.environ.update(vllm_logging_environment(settings.log_level))


def vllm_logging_environment(level: str) -> dict[str, str]:
    """Environment that makes vLLM log JSON lines through `JsonFormatter` as well.

    vLLM configures its `vllm` logger when it is first imported, from `VLLM_LOGGING_CONFIG_PATH`
    (a dictConfig file), in this process and in the engine-core processes it spawns, which
    inherit the environment. An operator's own vLLM logging settings win.
    """
    if "VLLM_LOGGING_CONFIG_PATH" in os.environ or os.environ.get("VLLM_CONFIGURE_LOGGING") == "0":
        return {}
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"vllm": {"handlers": ["json"], "level": level.upper(), "propagate": False}},
    }
    fd, path = tempfile.mkstemp(prefix="llm-gateway-vllm-logging-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(config, file)
    atexit.register(os.unlink, path)
    return {"VLLM_LOGGING_CONFIG_PATH": path}
