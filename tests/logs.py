"""Log capture for tests about what reaches the logs."""

import logging

from core.logging import JsonFormatter, RequestIdFilter


class JsonLines(logging.Handler):
    """Every record, formatted as the production console handler formats it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
