"""What the long-running objects (``enrich.Processor``, ``whsink.Sink``) share: the rule that
one thread drives them, timeouts in seconds, log lines to ``logging``, and librdkafka's
statistics JSON read from C."""

from __future__ import annotations

import json
import logging
import threading
from ctypes import create_string_buffer
from typing import Any, Callable, Optional

# syslog levels of the libraries' log callbacks
_LOG_LEVELS = {3: logging.ERROR, 4: logging.WARNING, 5: logging.INFO, 6: logging.INFO,
               7: logging.DEBUG}


def timeout_ms(timeout: Optional[float]) -> int:
    """Seconds (None: no limit) as the C libraries' milliseconds (-1: no limit)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be >= 0 seconds, or None")
    return min(int(timeout * 1000), 2**31 - 1)


def log_callback(cb_type: Any, logger: logging.Logger) -> Any:
    """A C log callback of ``cb_type`` that logs to ``logger``, from any library thread."""
    def on_log(level: int, message: bytes, _opaque: Any) -> None:
        logger.log(_LOG_LEVELS.get(level, logging.ERROR), "%s",
                   (message or b"").decode(errors="replace"))
    return cb_type(on_log)


def kafka_stats(read: Callable[[int, Any, int], int], handle: int) -> Optional[dict[str, Any]]:
    """librdkafka's statistics through ``read`` (``*_kafka_stats_json``, snprintf-like), or
    None before the first."""
    size = 1 << 16
    while True:
        buf = create_string_buffer(size)
        need = read(handle, buf, size)
        if need == 0:
            return None
        if need < size:
            stats: dict[str, Any] = json.loads(buf.value)
            return stats
        size = need + 1  # it grew since the last look: once more, larger


class Driver:
    """The thread driving a processor or sink (``poll()``, ``run()``...). A second driver
    is refused rather than left to race in C; ``close()`` waits for the driver with
    ``with driver:``."""

    def __init__(self, inside: str) -> None:
        self._lock = threading.Lock()
        self._thread: Optional[int] = None
        self._inside = inside  # "a stage", "a callback": what runs on the driving thread

    def begin(self, what: str) -> None:
        if not self._lock.acquire(blocking=False):
            if self.is_me():
                raise RuntimeError(f"{what}() cannot be called from inside {self._inside}")
            raise RuntimeError(f"{what}(): another thread is driving it")
        self._thread = threading.get_ident()

    def end(self) -> None:
        self._thread = None
        self._lock.release()

    def is_me(self) -> bool:
        return self._thread == threading.get_ident()

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> "Driver":
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
