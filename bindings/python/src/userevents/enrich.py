"""The enrichment stage's pure pipeline: a thin layer over ``enr_pipeline_t`` (enrich.h).

Runs libenrich's configured stages (dedup, clock, session, profile, ...) and your own Python
stages on encoded events, without Kafka:

    from userevents.enrich import Pipeline, Stage

    class Tag(Stage):
        name = "tag"
        def process(self, event):
            event.set_string("tagged", "yes")
            return "keep"

    with Pipeline({"stages": "clock,tag,session"}, stages=[Tag()]) as p:
        verdict, enriched, reason = p.process(event_bytes, received_at_ms=now_ms)

Everything that matters (decoding, validation, the stages, encoding the EnrichedEvent) is the
C library's. A pipeline belongs to one thread, like ``enr_pipeline_t``.
"""

from __future__ import annotations

import ctypes
import enum
import logging
import weakref
from collections.abc import Mapping, Sequence
from ctypes import byref, c_char_p, c_double, c_int64, c_size_t, c_ubyte, c_void_p
from ctypes import create_string_buffer, string_at
from typing import Any, NoReturn, Optional, Union

from . import _conf, _drive, _enr
from ._conf import cstr as _cstr
from ._enr import lib as _L
from .errors import EnrichError, ErrorCode, UserEventsError, error_class

__all__ = ["Pipeline", "Processor", "Stage", "StageEvent", "Verdict", "STATS", "version"]

_ERRSTR_SIZE = _conf.ERRSTR_SIZE
_REASON_SIZE = 512
_INT64_MAX = 2**63 - 1

# enr_stat_t, by the library's own names ("consumed", "enriched", ...)
STATS: dict[str, int] = {}
for _i in range(64):
    _n = _L.enr_stat_name(_i)
    if not _n:
        break
    STATS[_n.decode()] = _i


def version() -> str:
    """libenrich's version string."""
    return _L.enr_version_str().decode()


class Verdict(str, enum.Enum):
    """``enr_verdict_t``; equal to the plain strings "keep", "drop" and "fail"."""

    KEEP = "keep"
    DROP = "drop"
    FAIL = "fail"


_VERDICTS = {_enr.KEEP: Verdict.KEEP, _enr.DROP: Verdict.DROP, _enr.FAIL: Verdict.FAIL}


def _raise(code: int, what: str) -> NoReturn:
    """An enr_err_t as an exception (codes -1..-4 mean the same as libuserevents' ones)."""
    name = _enr.err_name(code)
    message = f"{what}: {_enr.err_str(code)}"
    if code in (ErrorCode.INVALID_ARG, ErrorCode.CONF_UNKNOWN, ErrorCode.CONF_INVALID,
                ErrorCode.NOMEM):
        raise error_class(code)(code, name, message)
    raise EnrichError(code, name, message)


class StageEvent:
    """The event a stage is processing (``enr_event_t``), valid only during ``process()``."""

    __slots__ = ("_ev",)

    def __init__(self, ev: int) -> None:
        self._ev = ev

    def _ptr(self) -> int:
        if not self._ev:
            raise RuntimeError("the event is only valid inside Stage.process()")
        return self._ev

    @property
    def type(self) -> str:
        return (_L.enr_event_type(self._ptr()) or b"").decode()

    @property
    def user_id(self) -> str:
        return (_L.enr_event_user_id(self._ptr()) or b"").decode()

    @property
    def anonymous_id(self) -> str:
        return (_L.enr_event_anonymous_id(self._ptr()) or b"").decode()

    @property
    def session_id(self) -> str:
        return (_L.enr_event_session_id(self._ptr()) or b"").decode()

    @property
    def event_id(self) -> bytes:
        buf = (c_ubyte * 16)()
        _L.enr_event_id(self._ptr(), buf)
        return bytes(buf)

    @property
    def time_ms(self) -> int:
        return int(_L.enr_event_time_ms(self._ptr()))

    def context(self, field: str) -> str:
        return (_L.enr_event_context(self._ptr(), _cstr(field, "field")) or b"").decode()

    def get_string(self, key: str) -> Optional[str]:
        """The string property ``key``, or None when absent or of another type."""
        out = c_char_p()
        if _L.enr_event_get_string(self._ptr(), _cstr(key, "key"), byref(out)):
            return None
        return (out.value or b"").decode()

    def get_int(self, key: str) -> Optional[int]:
        out = c_int64()
        if _L.enr_event_get_int(self._ptr(), _cstr(key, "key"), byref(out)):
            return None
        return out.value

    def get_double(self, key: str) -> Optional[float]:
        out = c_double()
        if _L.enr_event_get_double(self._ptr(), _cstr(key, "key"), byref(out)):
            return None
        return out.value

    def set_string(self, key: str, value: str) -> None:
        rc = _L.enr_event_set_string(self._ptr(), _cstr(key, "key"), _cstr(value, "value"))
        if rc:
            _raise(rc, f"set_string({key!r})")

    def set_int(self, key: str, value: int) -> None:
        rc = _L.enr_event_set_int(self._ptr(), _cstr(key, "key"), value)
        if rc:
            _raise(rc, f"set_int({key!r})")

    def set_double(self, key: str, value: float) -> None:
        rc = _L.enr_event_set_double(self._ptr(), _cstr(key, "key"), value)
        if rc:
            _raise(rc, f"set_double({key!r})")


StageResult = Union[str, Verdict, tuple]


class Stage:
    """A custom stage written in Python. Subclass it, set ``name`` ([a-z0-9_], at most 32; the
    name "stages" in the configuration refers to) and implement ``process``.

    ``process(event)`` returns "keep", "drop" or ("fail", reason). An exception raised by
    it fails the event (ENR_FAIL) with the exception's text as the reason.
    """

    name: str = ""

    def process(self, event: StageEvent) -> StageResult:
        raise NotImplementedError


def _make_process_fn(stage: Stage) -> Any:
    def process(_state: Any, ev: int, ctx: int, _opaque: Any) -> int:
        event = StageEvent(ev)
        try:
            result = stage.process(event)
            if isinstance(result, tuple) and len(result) == 2 and result[0] == "fail":
                _L.enr_ctx_fail(ctx, str(result[1]).encode(errors="replace"))
                return _enr.FAIL
            if result == "keep":
                return _enr.KEEP
            if result == "drop":
                return _enr.DROP
            if result == "fail":
                _L.enr_ctx_fail(ctx, f"stage {stage.name} failed".encode())
                return _enr.FAIL
            raise ValueError(f"stage {stage.name} returned {result!r}, not "
                             "'keep', 'drop' or ('fail', reason)")
        except BaseException as e:  # never let an exception cross into C
            text = str(e) or type(e).__name__
            _L.enr_ctx_fail(ctx, text.encode(errors="replace"))
            return _enr.FAIL
        finally:
            event._ev = 0  # the C event is borrowed for the call only
    return _enr.PROCESS_FN(process)


def _new_conf(config: Mapping[str, Any], stages: Sequence[Stage], keep: list[Any]) -> int:
    """An ``enr_conf_t`` with the custom ``stages`` added and ``config`` applied; the C
    callbacks it holds are appended to ``keep``. The caller owns the returned conf."""
    if not isinstance(config, Mapping):
        raise TypeError("config must be a mapping of str keys to values")
    conf = _L.enr_conf_new()
    if not conf:
        raise MemoryError("enr_conf_new failed")
    try:
        for stage in stages:
            if not isinstance(stage, Stage):
                raise TypeError(f"{stage!r} is not a userevents.enrich.Stage")
            fn = _make_process_fn(stage)
            keep.append(fn)
            handle = _L.enr_stage_new(_cstr(stage.name, "stage name"), fn, None)
            if not handle:
                raise ValueError(f"invalid stage name {stage.name!r} ([a-z0-9_], at most "
                                 "32 characters)")
            rc = _L.enr_conf_add_stage(conf, handle)  # takes the stage, also on failure
            if rc:
                _raise(rc, f"cannot add stage {stage.name!r}")
        _conf.apply(conf, config, _L.enr_conf_set, "ENR")
    except BaseException:
        _L.enr_conf_destroy(conf)
        raise
    return int(conf)


def _destroy(handle: int) -> None:
    _L.enr_pipeline_destroy(handle)


class Pipeline:
    """libenrich's stages without Kafka (``enr_pipeline_t``).

    Args:
        config: configuration keys and values (CONFIGURATION.md of libenrich), e.g.
            ``{"stages": "dedup,clock,session"}``. Each is validated by the library now.
        stages: custom ``Stage`` objects, which the "stages" key may then name.

    Raises:
        ConfigError: a key the library does not know, or a value it refuses.
        UserEventsError: the pipeline could not be built (e.g. an unknown stage).
    """

    def __init__(self, config: Mapping[str, Any], stages: Sequence[Stage] = ()) -> None:
        self._handle: Optional[int] = None
        self._callbacks: list[Any] = []  # the C stages call these: they live as long as it
        conf = _new_conf(config, stages, self._callbacks)
        errstr = create_string_buffer(_ERRSTR_SIZE)
        try:
            handle = _L.enr_pipeline_new(conf, errstr, _ERRSTR_SIZE)
        finally:
            _L.enr_conf_destroy(conf)  # enr_pipeline_new() does not take conf
        if not handle:
            text = errstr.value.decode(errors="replace") or "unknown reason"
            raise UserEventsError(None, "", f"cannot create pipeline: {text}")
        self._handle = int(handle)
        self._finalizer = weakref.finalize(self, _destroy, self._handle)

    def _h(self) -> int:
        if self._handle is None:
            raise UserEventsError(None, "", "the pipeline is closed")
        return self._handle

    def process(self, event: bytes, received_at_ms: int) -> tuple[Verdict, Optional[bytes], str]:
        """Runs the stages on one encoded Event (proto/userevents.proto).

        Returns (verdict, encoded EnrichedEvent when kept else None, reason when failed).
        A record that does not decode is ``Verdict.FAIL``.
        """
        event = bytes(event)
        out, out_len = c_void_p(), c_size_t()
        reason = create_string_buffer(_REASON_SIZE)
        v = _L.enr_pipeline_process(self._h(), event, len(event), received_at_ms,
                                    byref(out), byref(out_len), reason, _REASON_SIZE)
        data = None
        if out.value:
            try:
                data = string_at(out.value, out_len.value)
            finally:
                _L.enr_free(out)
        return _VERDICTS.get(v, Verdict.FAIL), data, reason.value.decode(errors="replace")

    def put_profile(self, profile: bytes) -> None:
        """Feeds one encoded UserProfile (proto/enriched.proto) to the profile stage."""
        profile = bytes(profile)
        rc = _L.enr_pipeline_put_profile(self._h(), profile, len(profile))
        if rc:
            _raise(rc, "put_profile")

    def flush(self, watermark_ms: int = _INT64_MAX) -> list[tuple[str, bytes, bytes]]:
        """Runs the stages' flush with ``watermark_ms`` as the newest event time; returns the
        emitted records (aggregates, alerts) as (topic, key, value)."""
        records: list[tuple[str, bytes, bytes]] = []

        def on_record(topic: bytes, key: int, key_len: int, value: int, value_len: int,
                      _opaque: Any) -> None:
            records.append(((topic or b"").decode(),
                            string_at(key, key_len) if key else b"",
                            string_at(value, value_len) if value else b""))

        cb = _enr.RECORD_CB(on_record)
        _L.enr_pipeline_flush(self._h(), watermark_ms, cb, None)
        return records

    def stat(self, name: str) -> int:
        """A counter by its name ("consumed", "enriched", "dropped", "dead_letters", ...)."""
        try:
            which = STATS[name]
        except KeyError:
            raise ValueError(f"unknown statistic {name!r}; one of {sorted(STATS)}") from None
        return int(_L.enr_pipeline_stat(self._h(), which))

    def close(self) -> None:
        """Frees the pipeline; further calls raise. Idempotent."""
        if self._handle is not None:
            self._handle = None
            self._finalizer()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the Kafka processor ---------------------------------------------------------------------

def _destroy_processor(handle: int, _keep: list[Any]) -> None:
    # Garbage-collected without close(): no time for a commit; the open transaction is
    # aborted by the broker and redone by the next instance (nothing lost or doubled).
    _enr.blocking.enr_processor_destroy(handle, 0)


class Processor:
    """libenrich's stream stage (``enr_processor_t``): consumes the raw topics, runs the
    configured stages (your Python ones too) and writes the enriched topic, aggregates,
    alerts and dead letters in Kafka transactions, exactly once.

        with Processor({"kafka.bootstrap.servers": "127.0.0.1:9092",
                        "input.topics": "^events\\\\..*", "stages": "dedup,clock,tag,session"},
                       stages=[Tag()]) as p:
            p.run()  # until p.stop() from another thread, or Ctrl-C

    Args:
        config: libenrich's configuration (CONFIGURATION.md), validated key by key now.
        stages: custom ``Stage`` objects the "stages" key may name. They run on the thread
            that calls ``poll()`` or ``run()``.
        logger: where the library's log lines go (default ``logging.getLogger(
            "userevents.enrich")``), from whichever thread logs.

    Threading: one thread drives the processor (``poll()``, ``run()``); ``stop()``,
    ``stat()``, ``stats()`` and ``kafka_stats()`` are safe from any thread. ``close()`` stops
    a ``run()`` in another thread and waits for it.

    Raises:
        ConfigError: a configuration key or value the library refused.
        UserEventsError: the processor could not start (broker unreachable, bad stage, ...).
    """

    def __init__(self, config: Mapping[str, Any], stages: Sequence[Stage] = (), *,
                 logger: Optional[logging.Logger] = None) -> None:
        self._handle: Optional[int] = None
        self._driver = _drive.Driver("a stage")
        keep: list[Any] = [_drive.log_callback(_enr.LOG_CB, logger or
                                               logging.getLogger("userevents.enrich"))]
        conf = _new_conf(config, stages, keep)
        _L.enr_conf_set_log_cb(conf, keep[0], None)
        errstr = create_string_buffer(_ERRSTR_SIZE)
        handle = _enr.blocking.enr_processor_new(conf, errstr, _ERRSTR_SIZE)
        if not handle:
            _L.enr_conf_destroy(conf)  # on failure the caller still owns conf
            text = errstr.value.decode(errors="replace") or "unknown reason"
            raise UserEventsError(None, "", f"cannot create processor: {text}")
        self._handle = int(handle)
        self._finalizer = weakref.finalize(self, _destroy_processor, self._handle, keep)

    def _h(self) -> int:
        if self._handle is None:
            raise EnrichError(None, "", "the processor is closed")
        return self._handle

    def poll(self, timeout: float = 1.0) -> int:
        """One step: consumes what arrives within ``timeout`` seconds, runs the stages, and
        commits the transaction when it is due (txn.max.events, txn.max.ms). Returns the
        number of input records processed.

        Raises:
            EnrichError: ENR_ERR_STOPPED after ``stop()``; ENR_ERR_FENCED when another
                instance took over; ENR_ERR_KAFKA_FATAL on any other fatal Kafka error.
        """
        self._driver.begin("poll")
        try:
            rc = _enr.blocking.enr_poll(self._h(), _drive.timeout_ms(timeout))
        finally:
            self._driver.end()
        if rc < 0:
            _raise(rc, "poll")
        return int(rc)

    def run(self) -> None:
        """Polls until ``stop()`` (from another thread or a stage); returns then. Ctrl-C
        raises KeyboardInterrupt within a fraction of a second (the C call is short).

        Raises:
            EnrichError: a fatal error (fenced, Kafka); call ``close()`` next.
        """
        self._driver.begin("run")
        try:
            handle = self._h()
            while True:
                rc = _enr.blocking.enr_poll(handle, 200)
                if rc == _enr.ERR_STOPPED:
                    return
                if rc < 0:
                    _raise(rc, "run")
        finally:
            self._driver.end()

    def stop(self) -> None:
        """Asks ``run()`` to return; ``poll()`` then raises ENR_ERR_STOPPED. Any thread."""
        if self._handle is not None:
            _L.enr_stop(self._handle)

    def stat(self, name: str) -> int:
        """A counter by its name: "consumed", "enriched", "dropped", "dead_letters",
        "aggregates", "txn_commits", ... (``STATS``). Any thread."""
        try:
            which = STATS[name]
        except KeyError:
            raise ValueError(f"unknown statistic {name!r}; one of {sorted(STATS)}") from None
        return int(_L.enr_stat(self._h(), which))

    def stats(self) -> dict[str, int]:
        """Every counter by name. Any thread."""
        handle = self._h()
        return {name: int(_L.enr_stat(handle, which)) for name, which in STATS.items()}

    def kafka_stats(self) -> Optional[dict[str, Any]]:
        """librdkafka's latest statistics of the group consumer (consumer lag per partition,
        broker state), or None before the first (kafka.consumer.statistics.interval.ms)."""
        return _drive.kafka_stats(_L.enr_kafka_stats_json, self._h())

    def under_replicated_partitions(self, timeout: float = 10.0) -> int:
        """Under-replicated partitions of the topics the processor depends on (one metadata
        round trip)."""
        rc = _enr.blocking.enr_under_replicated_partitions(self._h(),
                                                           _drive.timeout_ms(timeout))
        if rc < 0:
            _raise(rc, "under_replicated_partitions")
        return int(rc)

    def close(self, timeout: float = 30.0) -> None:
        """Commits what was processed (within ``timeout`` seconds), leaves the group and
        frees the processor; uncommitted work is redone by the next instance. A ``run()`` in
        another thread is stopped and waited for. Closing twice is a no-op.

        Raises:
            RuntimeError: called from inside a stage.
            EnrichError: the last commit failed (its work will be redone: nothing is lost).
        """
        if self._handle is None:
            return
        if self._driver.is_me():
            raise RuntimeError("close() cannot be called from inside a stage")
        self.stop()
        with self._driver:  # a run() in another thread returns within one poll
            handle, self._handle = self._handle, None
            if handle is None:
                return
            keep = self._finalizer.detach()  # the callbacks: destroy may still log
            rc = _enr.blocking.enr_processor_destroy(handle, _drive.timeout_ms(timeout))
            del keep
        if rc:
            _raise(rc, "close")

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Processor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<userevents.enrich.Processor {'closed' if self.closed else 'open'}>"
