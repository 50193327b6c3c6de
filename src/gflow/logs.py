"""The daemon's log: rotated at a size, and no line repeated without end.

``gflowd.log`` is rotated when it reaches ``log_max_mb`` (``gflowd.log.1`` …, at most
``log_backups`` old files), so the log never takes more than ``(log_backups + 1) *
log_max_mb``. A message that comes again and again from one place in the code (an
accept failure, a client that keeps sending garbage) is written at most ``BURST`` times
a minute; the next one written after a quiet minute says how many were left out.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from gflow.config import DaemonConfig, Paths

BURST = 5
WINDOW = 60.0
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(slots=True)
class _Seen:
    start: float
    count: int = 1
    dropped: int = 0


class RateLimit(logging.Filter):
    """Let ``burst`` records from one call site through per ``window`` seconds."""

    def __init__(
        self,
        burst: int = BURST,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, int, str, int], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.pathname, record.lineno)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen.start >= self.window:
            self._seen[key] = _Seen(now)
            if seen is not None and seen.dropped:
                record.msg = (
                    f"{record.getMessage()} ({seen.dropped} more like this in the "
                    f"{self.window:g} s before were not logged)"
                )
                record.args = None
            return True
        if seen.count < self.burst:
            seen.count += 1
            return True
        seen.dropped += 1
        return False


def setup(paths: Paths, config: DaemonConfig, foreground: bool) -> None:
    """Log to the rotated ``gflowd.log`` (and to a terminal in the foreground)."""
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            paths.daemon_log,
            maxBytes=int(config.log_max_mb * 1024 * 1024),
            backupCount=config.log_backups,
        )
    ]
    if foreground and os.isatty(2):
        handlers.append(logging.StreamHandler())
    limit = RateLimit()
    for handler in handlers:
        handler.addFilter(limit)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format=FORMAT,
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)


def apply(config: DaemonConfig) -> None:
    """Take new sizes from a reloaded configuration."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            handler.maxBytes = int(config.log_max_mb * 1024 * 1024)
            handler.backupCount = config.log_backups
