"""One log line per kind of failure per interval, instead of one traceback per request.

A dependency that is down fails every request the same way; logging each one buries the log (and
the disk) in identical tracebacks. ``ThrottledLog`` lets the first failure of a kind through,
counts the rest, and reports the count with the next line of that kind after the interval.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

DEFAULT_INTERVAL_SECONDS = 10.0


@dataclass
class ThrottledLog:
    """``warning(kind, message, *args)`` logs at most once per ``interval_seconds`` per kind."""

    logger: logging.Logger
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def log(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Log unless ``kind`` was logged within the interval; True when it was logged."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_seconds:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d more like it in the last %.0f s)"
            args = (*args, suppressed, self.interval_seconds)
        self.logger.log(level, message, *args)
        return True

    def warning(self, kind: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, kind, message, *args)

    def error(self, kind: str, message: str, *args: object) -> bool:
        return self.log(logging.ERROR, kind, message, *args)

    def recovered(self, kind: str) -> bool:
        """Forget ``kind`` (it works again); True when it had been failing."""
        self._suppressed.pop(kind, None)
        return self._last.pop(kind, None) is not None
