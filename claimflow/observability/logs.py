"""``CLAIMFLOW_LOG_FORMAT=json``: one JSON object per log line, with the request id.

Plain text stays the default (readable in a terminal); JSON is for log shippers. Each object
has ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``request_id`` when the line
was written while handling a request, and ``exception`` with the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from claimflow.observability.request_id import current_request_id

LOG_FORMAT_VARIABLE = "CLAIMFLOW_LOG_FORMAT"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def uvicorn_log_config(log_format: str | None = None) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for the chosen format; None keeps uvicorn's own (text)."""
    chosen = log_format or os.environ.get(LOG_FORMAT_VARIABLE, "text")
    if chosen != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            "": {"handlers": ["default"], "level": "INFO"},
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": True},
        },
    }
