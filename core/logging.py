"""Structured JSON logs: one object per line, with the request id of the current request.

Only what is passed in `extra=` is added: callers log model, version and latency, never
feature values.
"""

import contextvars
import json
import logging
import traceback
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def exception_outline(exc: BaseException) -> str:
    """The traceback of `exc` and of the exceptions it came from, without their messages.

    For errors met while serving a request: a message may quote the request's values (a scikit-learn
    or database error naming what it could not handle), and feature values never go to the logs
    (docs/api.md#errors). The frames and exception types still locate the fault.
    """
    chain = []
    outline: traceback.TracebackException | None = traceback.TracebackException.from_exception(exc)
    while outline is not None:
        chain.append(outline)
        outline = outline.__cause__ or (None if outline.__suppress_context__
                                        else outline.__context__)
    lines = []
    for outline in reversed(chain):
        kind = outline.exc_type
        name = kind.__qualname__ if kind.__module__ == "builtins" else (
            f"{kind.__module__}.{kind.__qualname__}")
        lines += ["Traceback (most recent call last):\n", *outline.stack.format(),
                  f"{name} (message not logged)\n"]
    return "".join(lines)
