"""Logs as one JSON object a line (TIDELOG_LOG_FORMAT=json, docker's default), each carrying the
id of the request it was written for: the `X-Request-ID` the caller or nginx sent, or one made
here, and sent back in the answer's `X-Request-ID`. With nginx's `$request_id` in its access
log, one id joins nginx's line, the app's lines and the client's report."""

import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final

REQUEST_ID: ContextVar[str | None] = ContextVar("tidelog_request_id", default=None)
_SANE: Final = re.compile(r"[A-Za-z0-9._:-]{1,200}")
HEADER: Final = "X-Request-ID"


def request_id_from(header: str | None) -> str:
    """The caller's id when it is a sane token (it ends up in logs: no spaces, no control
    characters, at most 200 characters), else a new one."""
    if header and _SANE.fullmatch(header):
        return header
    return os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, in a quarter of its time


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "request_id", "process", "exception"?}."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if (request_id := getattr(record, "request_id", "-")) == "-" else request_id,
            "process": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
