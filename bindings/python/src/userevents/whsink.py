"""The warehouse sink: a thin layer over libwhsink's ``whs_sink_t`` (whsink.h).

Loads the enriched topic into a warehouse (SQLite, files, PostgreSQL, ClickHouse) exactly
once: the warehouse commits the rows and the Kafka offsets they came from together.

    from userevents.whsink import Sink

    def committed(c):
        print(f"{c.topic}[{c.partition}] up to {c.next_offset}: {c.rows} rows")

    with Sink({"kafka.bootstrap.servers": "127.0.0.1:9092",
               "warehouse.url": "sqlite:events.db"}, on_commit=committed) as sink:
        sink.run()  # until sink.stop() from another thread, or Ctrl-C

Everything that matters (mapping, batching, the warehouse protocol, the offsets) is the C
library's.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from ctypes import create_string_buffer
from typing import Any, Callable, NamedTuple, Optional

from . import _conf, _drive, _whs
from ._whs import lib as _L
from .errors import ConfigError, ErrorCode, SinkError, SinkTimedOutError

__all__ = ["Sink", "Commit", "STATS", "version"]

# whs_stat_t, by the library's own names ("consumed", "rows_loaded", ...)
STATS: dict[str, int] = {}
for _i in range(64):
    _n = _L.whs_stat_name(_i)
    if not _n:
        break
    STATS[_n.decode()] = _i

def version() -> str:
    """libwhsink's version string."""
    return _L.whs_version_str().decode()


class Commit(NamedTuple):
    """One input partition's share of a batch the warehouse committed."""

    topic: str
    partition: int
    next_offset: int   #: the warehouse now holds every record before this offset
    rows: int
    dead_letters: int  #: records of the batch sent to the dead-letter topic instead


def _error(code: int, what: str) -> SinkError:
    cls = SinkTimedOutError if code == _whs.ERR_TIMED_OUT else SinkError
    if code in (ErrorCode.CONF_UNKNOWN, ErrorCode.CONF_INVALID):  # same numbers in whsink.h
        cls = ConfigError  # type: ignore[assignment]
    return cls(code, _whs.err_name(code), f"{what}: {_whs.err_str(code)}")


def _destroy(handle: int, _keep: tuple[Any, ...]) -> None:
    _L.whs_sink_destroy(handle)  # closes first (shutdown.timeout.ms) if close() was not called


class Sink:
    """libwhsink's sink (``whs_sink_t``).

    Args:
        config: libwhsink's configuration (CONFIGURATION.md): ``warehouse.url`` is required;
            ``kafka.*`` keys go to librdkafka. Validated key by key now.
        on_commit: called with a ``Commit`` per partition of each batch the warehouse
            committed.
        on_error: called with ``(SinkError, retriable)`` for each failure the sink handles
            itself (a write it retries, a record it dead-letters, a fenced batch).
        logger: where the library's log lines go (default ``logging.getLogger(
            "userevents.whsink")``), from whichever thread logs.

    The callbacks run on the thread calling ``poll()``, ``run()``, ``flush()`` or
    ``close()``; an exception one raises is re-raised from that call once the library
    returns (the sink's own state is unaffected).

    Threading: one thread drives the sink (``poll()``, ``run()``, ``flush()``);
    ``stop()``, ``stat()``, ``stats()`` and ``kafka_stats()`` are safe from any thread;
    ``close()`` stops a ``run()`` in another thread and waits for it.

    Raises:
        ConfigError: a configuration key or value the library refused.
        SinkError: the sink could not start (warehouse unreachable, broker down, ...).
    """

    def __init__(self, config: Mapping[str, Any], *,
                 on_commit: Optional[Callable[[Commit], None]] = None,
                 on_error: Optional[Callable[[SinkError, bool], None]] = None,
                 logger: Optional[logging.Logger] = None) -> None:
        self._handle: Optional[int] = None
        self._driver = _drive.Driver("a callback")
        self._pending: Optional[BaseException] = None  # raised by a callback
        self._stopping = False
        callbacks = self._make_callbacks(on_commit, on_error,
                                         logger or logging.getLogger("userevents.whsink"))
        conf = _L.whs_conf_new()
        if not conf:
            raise MemoryError("whs_conf_new failed")
        errstr = create_string_buffer(_conf.ERRSTR_SIZE)
        try:
            _conf.apply(conf, config, _L.whs_conf_set, "WHS")
            commit_cb, error_cb, log_cb = callbacks
            if commit_cb is not None:
                _L.whs_conf_set_commit_cb(conf, commit_cb, None)
            if error_cb is not None:
                _L.whs_conf_set_error_cb(conf, error_cb, None)
            _L.whs_conf_set_log_cb(conf, log_cb, None)
            handle = _L.whs_sink_new(conf, errstr, _conf.ERRSTR_SIZE)
        except BaseException:
            _L.whs_conf_destroy(conf)
            raise
        if not handle:
            _L.whs_conf_destroy(conf)  # on failure the caller still owns conf
            text = errstr.value.decode(errors="replace") or "unknown reason"
            raise SinkError(None, "", f"cannot create sink: {text}")
        self._handle = int(handle)
        self._finalizer = weakref.finalize(self, _destroy, self._handle, callbacks)
        self._raise_pending()  # a callback that failed during start (a log line)

    def _make_callbacks(self, on_commit: Any, on_error: Any,
                        logger: logging.Logger) -> tuple[Any, Any, Any]:
        # The closures hold a weak reference: the finalizer keeps them, and must not keep
        # the sink alive.
        me = weakref.ref(self)

        def guarded(fn: Callable[..., None], *args: Any) -> None:
            try:
                fn(*args)
            except BaseException as e:  # never let an exception cross into C
                sink = me()
                if sink is not None and sink._pending is None:
                    sink._pending = e

        def on_commit_c(topic: bytes, partition: int, next_offset: int, rows: int,
                        dead_letters: int, _opaque: Any) -> None:
            guarded(on_commit, Commit((topic or b"").decode(errors="replace"), partition,
                                      next_offset, rows, dead_letters))

        def on_error_c(code: int, retriable: int, reason: bytes, _opaque: Any) -> None:
            text = (reason or b"").decode(errors="replace")
            guarded(on_error, SinkError(code, _whs.err_name(code), text), bool(retriable))

        return (_whs.COMMIT_CB(on_commit_c) if on_commit else None,
                _whs.ERROR_CB(on_error_c) if on_error else None,
                _drive.log_callback(_whs.LOG_CB, logger))

    def _raise_pending(self) -> None:
        e, self._pending = self._pending, None
        if e is not None:
            raise e

    def _h(self) -> int:
        if self._handle is None:
            raise SinkError(_whs.ERR_CLOSED, _whs.err_name(_whs.ERR_CLOSED), "the sink is closed")
        return self._handle

    def _check(self, rc: int, what: str) -> int:
        self._raise_pending()
        if rc < 0 or (what != "poll" and rc != 0):
            raise _error(rc, what)
        return rc

    def poll(self, timeout: float = 1.0) -> int:
        """One step of up to ``timeout`` seconds: reports commits and errors through the
        callbacks, consumes records and hands full or old batches to the warehouse. Returns
        the number of records consumed.

        Raises:
            SinkError: WHS_ERR_KAFKA_FATAL (the sink must stop), WHS_ERR_CLOSED.
        """
        self._driver.begin("poll")
        try:
            rc = _L.whs_poll(self._h(), _drive.timeout_ms(timeout))
        finally:
            self._driver.end()
        return self._check(rc, "poll")

    def run(self) -> None:
        """Polls until ``stop()``; returns then (call ``close()`` next). Ctrl-C raises
        KeyboardInterrupt within a fraction of a second.

        Raises:
            SinkError: a fatal error.
        """
        self._driver.begin("run")
        try:
            handle = self._h()
            while not self._stopping:
                self._check(_L.whs_poll(handle, 200), "poll")
        finally:
            self._driver.end()

    def stop(self) -> None:
        """Asks ``run()`` (and a ``poll()`` in progress) to return. Any thread."""
        self._stopping = True
        if self._handle is not None:
            _L.whs_stop(self._handle)

    def flush(self, timeout: Optional[float] = None) -> None:
        """Hands everything consumed so far to the warehouse and waits for its commit
        (``timeout`` seconds; None: no limit).

        Raises:
            SinkTimedOutError: the deadline passed (the work goes on in the background).
        """
        self._driver.begin("flush")
        try:
            rc = _L.whs_flush(self._h(), _drive.timeout_ms(timeout))
        finally:
            self._driver.end()
        self._check(rc, "flush")

    def stat(self, name: str) -> int:
        """A statistic by name: "consumed", "rows_loaded", "batches", "dead_letters", ...
        (``STATS``). Any thread."""
        try:
            which = STATS[name]
        except KeyError:
            raise ValueError(f"unknown statistic {name!r}; one of {sorted(STATS)}") from None
        return int(_L.whs_stat(self._h(), which))

    def stats(self) -> dict[str, int]:
        """Every statistic by name. Any thread."""
        handle = self._h()
        return {name: int(_L.whs_stat(handle, which)) for name, which in STATS.items()}

    def kafka_stats(self) -> Optional[dict[str, Any]]:
        """librdkafka's latest statistics of the consumer (lag per partition, brokers), or
        None before the first (kafka.statistics.interval.ms)."""
        return _drive.kafka_stats(_L.whs_kafka_stats_json, self._h())

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes, waits for the warehouse commit and leaves the group within ``timeout``
        seconds (None: shutdown.timeout.ms), then frees the sink. A ``run()`` in another
        thread is stopped and waited for. Closing twice is a no-op.

        Raises:
            SinkTimedOutError: the deadline passed; what was left is re-read by the next
                sink from the offsets the warehouse holds (nothing is half-written).
        """
        if self._handle is None:
            return
        if self._driver.is_me():
            raise RuntimeError("close() cannot be called from inside a callback")
        self.stop()
        with self._driver:
            handle, self._handle = self._handle, None
            if handle is None:
                return
            keep = self._finalizer.detach()  # the callbacks: close still reports commits
            try:
                rc = _L.whs_close(handle, _drive.timeout_ms(timeout))
            finally:
                _L.whs_sink_destroy(handle)
                del keep
        self._check(rc, "close")

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<userevents.whsink.Sink {'closed' if self.closed else 'open'}>"
