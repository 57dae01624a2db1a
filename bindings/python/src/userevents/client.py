"""The SDK client: a thin layer over ``ue_client_t`` (userevents.h).

Everything that matters (validation, encoding, queueing, spooling, sending, retries) is the
C library's; this module converts Python values to C calls and C results to Python objects.

Threads:
  * A ``Client`` may be used from any number of threads at once (so may the C client).
    ``close()`` waits for calls other threads are making, then refuses new ones.
  * Delivery reports are produced on the library's background thread. The C callback only
    puts them in a queue; your ``on_delivery`` runs on *your* thread, from ``poll()``,
    ``flush()`` and ``close()`` (the confluent-kafka model). Call ``poll()`` regularly when
    you pass ``on_delivery``, or reports pile up in memory.
  * Log lines of the library go to the ``logging`` logger "userevents" (or the one you pass),
    from whichever thread logs.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import numbers
import queue
import threading
import time
import uuid
import weakref
from ctypes import create_string_buffer, string_at
from collections.abc import Mapping
from typing import Any, Callable, NoReturn, Optional, Union

from . import _ue
from ._conf import conf_value as _conf_value
from ._conf import cstr as _cstr
from ._ue import lib as _L
from .errors import ClientClosedError, ErrorCode, TimedOutError, UserEventsError

__all__ = ["Client", "DeliveryReport", "Outcome", "PropertyValue", "version"]

PropertyValue = Union[str, int, float, bool]
ConfigValue = Union[str, int, float, bool]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# What the C delivery callback queues: event id, type, outcome, reason, reason text.
_RawReport = tuple[bytes, bytes, int, int, Optional[bytes]]
_ERRSTR_SIZE = 512
_log_levels = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL, 3: logging.ERROR,
               4: logging.WARNING, 5: logging.INFO, 6: logging.INFO, 7: logging.DEBUG}


_reset = _ue.lib_gil.ue_event_reset
_set_user_id = _ue.lib_gil.ue_event_set_user_id
_prop_string = _ue.lib_gil.ue_event_prop_string
_prop_int = _ue.lib_gil.ue_event_prop_int
_prop_double = _ue.lib_gil.ue_event_prop_double
_prop_bool = _ue.lib_gil.ue_event_prop_bool
_get_event_id = _ue.lib_gil.ue_event_get_event_id
_track = _L.ue_track  # may wait (queue.full.policy=block): releases the GIL


def _closed_error() -> ClientClosedError:
    return ClientClosedError(ErrorCode.SHUTDOWN, "UE_ERR_SHUTDOWN", "the client is closed")


def _uuid_fast(raw: Any) -> uuid.UUID:
    """uuid.UUID(bytes=raw) without its argument parsing (half the cost per event); raw is
    16 bytes or any buffer of them (the ctypes id array)."""
    u = object.__new__(uuid.UUID)
    object.__setattr__(u, "int", int.from_bytes(raw, "big"))
    object.__setattr__(u, "is_safe", uuid.SafeUUID.unknown)
    return u


def _pick_uuid_maker() -> Callable[[Any], uuid.UUID]:
    probe = bytes(range(16))
    try:
        if _uuid_fast(probe) == uuid.UUID(bytes=probe) and str(_uuid_fast(probe)):
            return _uuid_fast
    except (AttributeError, TypeError):  # another uuid implementation
        pass
    return lambda raw: uuid.UUID(bytes=bytes(raw))


_uuid_from_bytes = _pick_uuid_maker()


def version() -> str:
    """The version of the loaded libuserevents, e.g. "0.1.0" (``ue_version_str()``)."""
    return str(_L.ue_version_str().decode())


class Outcome(enum.IntEnum):
    """``ue_outcome_t``: what happened to one event."""

    DELIVERED = 0      #: acknowledged by Kafka (acks=all)
    FAILED_RETRY = 1   #: a send failed; the event will be sent again
    FAILED = 2         #: failed permanently (e.g. too large); not retried
    DROPPED = 3        #: dropped by a local policy (queue full, spool cap, shutdown)


@dataclasses.dataclass(frozen=True)
class DeliveryReport:
    """One outcome of one event, as the library's delivery callback reported it."""

    event_id: uuid.UUID            #: the id ``track()`` returned
    type: str                      #: the event type
    outcome: Outcome
    error: Optional[UserEventsError]  #: None when delivered

    @property
    def delivered(self) -> bool:
        return self.outcome == Outcome.DELIVERED


# ---- argument conversion --------------------------------------------------------------------

def _check(rc: int, what: str) -> None:
    if rc:
        raise _ue.make_error(rc, what)


class _EventSlot:
    """One reusable ``ue_event_t`` per thread (ue_event_reset() is the cheap way to track
    many events; an event belongs to one thread at a time)."""

    __slots__ = ("ptr", "id_buf", "busy", "__weakref__")

    def __init__(self) -> None:
        self.ptr = _L.ue_event_new(b"event")
        if not self.ptr:
            raise MemoryError("ue_event_new failed")
        self.id_buf = _ue.EventId()
        self.busy = False

    def __del__(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr and _L is not None:
            _L.ue_event_destroy(ptr)


_tls = threading.local()


def _event_slot() -> _EventSlot:
    slot: Optional[_EventSlot] = getattr(_tls, "slot", None)
    if slot is None:
        slot = _tls.slot = _EventSlot()
    elif slot.busy:  # re-entered on this thread (e.g. a log handler that tracks): own event
        return _EventSlot()
    return slot


def _set_property(ev: int, key: object, value: object) -> None:
    """One property, any accepted Python type (the slow, general path)."""
    k = _cstr(key, "property key")
    t = type(value)
    if t is str:
        rc = _prop_string(ev, k, _cstr(value, f"property {key!r}"))
    elif t is bool:
        rc = _prop_bool(ev, k, 1 if value else 0)
    elif t is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise OverflowError(f"property {key!r} = {value} does not fit in 64 bits")
        rc = _prop_int(ev, k, value)
    elif t is float:
        rc = _prop_double(ev, k, value)
    else:
        return _set_property_other(ev, k, key, value)
    if rc:
        raise _ue.make_error(rc, f"property {key!r} = {value!r} refused")


_key_cache: dict[str, bytes] = {}  # property key or event type -> its checked UTF-8 bytes; they repeat


def _key_bytes(key: str, what: str = "property key") -> bytes:
    k = _cstr(key, what)
    if len(_key_cache) >= 4096:
        _key_cache.clear()
    _key_cache[key] = k
    return k


def _set_properties(ev: int, properties: Mapping[str, Any], _str: Any = str, _int: Any = int,
                    _float: Any = float, _bool: Any = bool, _dict: Any = dict,
                    _keys: dict[str, bytes] = _key_cache, _ps: Any = _prop_string,
                    _pi: Any = _prop_int, _pd: Any = _prop_double, _pb: Any = _prop_bool,
                    _lo: int = _INT64_MIN, _hi: int = _INT64_MAX) -> None:
    """The hot loop of track(): exact str/int/float/bool values inline (names bound as
    defaults: locals are the fastest lookups), anything else and every error through
    _set_property(), which raises the precise exception."""
    if properties.__class__ is not _dict and not isinstance(properties, Mapping):
        raise TypeError("properties must be a mapping of str to str, int, float or bool")
    for key, value in properties.items():
        k = _keys.get(key)
        if k is None:
            if key.__class__ is not _str:
                _set_property(ev, key, value)  # raises TypeError
            k = _key_bytes(key)
        c = value.__class__
        if c is _str:
            try:
                v = value.encode()
            except UnicodeEncodeError:
                v = b"\0"
            rc = 1 if b"\0" in v else _ps(ev, k, v)
        elif c is _int:
            rc = _pi(ev, k, value) if _lo <= value <= _hi else 1
        elif c is _float:
            rc = _pd(ev, k, value)
        elif c is _bool:
            rc = _pb(ev, k, value)
        else:
            rc = 1
        if rc:
            _set_property(ev, key, value)  # the general path: converts or raises precisely


def _set_property_other(ev: int, k: bytes, key: object, value: object) -> None:
    """Subclasses and look-alikes (IntEnum, numpy scalars, ...); nested values refused."""
    if isinstance(value, str):
        return _set_property(ev, key, str(value))
    if isinstance(value, bool):
        return _set_property(ev, key, bool(value))
    if isinstance(value, numbers.Integral):
        return _set_property(ev, key, int(value))
    if isinstance(value, numbers.Real):
        return _set_property(ev, key, float(value))
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        raise TypeError(
            f"property {key!r}: nested values ({type(value).__name__}) are not supported: "
            "the C API takes only str, int, float and bool; flatten it (e.g. 'cart.total') "
            "or encode it as a JSON string")
    raise TypeError(f"property {key!r}: a {type(value).__name__} is not a property value "
                    "(str, int, float or bool)")


def _fill_event(ev: int, context: Optional[Mapping[str, Any]], anonymous_id: Optional[str],
                session_id: Optional[str], timestamp_ms: Optional[int],
                event_id: Union[uuid.UUID, bytes, None]) -> None:
    if anonymous_id is not None:
        _check(_L.ue_event_set_anonymous_id(ev, _cstr(anonymous_id, "anonymous_id")),
               "anonymous_id refused")
    if session_id is not None:
        _check(_L.ue_event_set_session_id(ev, _cstr(session_id, "session_id")),
               "session_id refused")
    if timestamp_ms is not None:
        if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
            raise TypeError("timestamp_ms must be an int (Unix milliseconds)")
        _check(_L.ue_event_set_timestamp_ms(ev, timestamp_ms),
               f"timestamp_ms={timestamp_ms} refused")
    if event_id is not None:
        raw = event_id.bytes if isinstance(event_id, uuid.UUID) else bytes(event_id)
        if len(raw) != 16:
            raise ValueError("event_id must be a uuid.UUID or 16 bytes")
        _check(_L.ue_event_set_event_id(ev, _ue.EventId.from_buffer_copy(raw)),
               "event_id refused")
    if context:
        if not isinstance(context, Mapping):
            raise TypeError("context must be a mapping of field name to value")
        for field, value in context.items():
            f = _cstr(field, "context field")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise TypeError(f"context {field!r} must be a str (or int for screen sizes)")
            rc = _L.ue_event_set_context(ev, f, _cstr(str(value), f"context {field!r}"))
            if rc:
                raise _ue.make_error(
                    rc, f"context {field!r} = {value!r} refused (unknown field, or a screen "
                        "size that is not a number)")


# ---- the client -----------------------------------------------------------------------------

def _destroy(handle: int, keep: tuple[Any, ...]) -> None:
    """Finalizer: ue_client_destroy() (flushes up to shutdown.timeout.ms). ``keep`` holds the
    ctypes callbacks alive until the C library can no longer call them."""
    _L.ue_client_destroy(handle)


class Client:
    """A libuserevents client (``ue_client_t``).

    Args:
        config: configuration keys and values (see CONFIGURATION.md), e.g.
            ``{"kafka.bootstrap.servers": "127.0.0.1:9092", "spool.dir": "/var/lib/app/ev"}``.
            Values may be str, int, float or bool; each is validated by the library now.
        on_delivery: called with a ``DeliveryReport`` for every outcome of every event, from
            ``poll()``, ``flush()`` and ``close()`` on the calling thread.
        logger: where the library's log lines go (default: ``logging.getLogger("userevents")``).

    Raises:
        ConfigError: a key the library does not know, or a value it refuses.
        UserEventsError: the client could not be created (spool locked, transport, ...).

    Use it as a context manager, or call ``close()``: both flush (up to
    ``shutdown.timeout.ms``) and free the client. A client never closed is closed when it is
    garbage-collected or at interpreter exit.
    """

    def __init__(self, config: Mapping[str, ConfigValue], *,
                 on_delivery: Optional[Callable[[DeliveryReport], Any]] = None,
                 logger: Optional[logging.Logger] = None) -> None:
        self._handle: Optional[int] = None
        self._on_delivery = on_delivery
        self._reports: queue.SimpleQueue[_RawReport] = queue.SimpleQueue()
        self._inflight: list[None] = []
        self._close_lock = threading.Lock()
        self._closing = False
        self._callbacks = self._make_callbacks(logger or logging.getLogger("userevents"))
        self._handle = self._create(config)
        self._finalizer = weakref.finalize(self, _destroy, self._handle, self._callbacks)

    def _make_callbacks(self, logger: logging.Logger) -> tuple[Any, Any]:
        reports = self._reports  # not self: the C callbacks must not keep the client alive

        def on_delivery(event_id: int, type_: bytes, outcome: int, reason: int,
                        reason_str: Optional[bytes], _opaque: Any) -> None:  # C thread
            reports.put((string_at(event_id, 16), type_, outcome, reason, reason_str))

        def on_log(level: int, message: bytes, _opaque: Any) -> None:  # any thread
            logger.log(_log_levels.get(level, logging.INFO), "%s",
                       message.decode(errors="replace"))

        dr = _ue.DELIVERY_CB(on_delivery) if self._on_delivery else None
        return (dr, _ue.LOG_CB(on_log))

    def _create(self, config: Mapping[str, ConfigValue]) -> int:
        if not isinstance(config, Mapping):
            raise TypeError("config must be a mapping of str keys to values")
        conf = _L.ue_conf_new()
        if not conf:
            raise MemoryError("ue_conf_new failed")
        errstr = create_string_buffer(_ERRSTR_SIZE)
        try:
            for key, value in config.items():
                k = _cstr(key, "configuration key")
                rc = _L.ue_conf_set(conf, k, _conf_value(key, value), errstr, _ERRSTR_SIZE)
                if rc == _ue.CONF_UNKNOWN:
                    self._raise(ErrorCode.CONF_UNKNOWN, errstr, f"configuration {key!r}")
                if rc != _ue.CONF_OK:
                    self._raise(ErrorCode.CONF_INVALID, errstr, f"configuration {key!r}")
            dr, log = self._callbacks
            if dr is not None:
                _L.ue_conf_set_delivery_cb(conf, dr, None)
            _L.ue_conf_set_log_cb(conf, log, None)
            handle = _L.ue_client_new(conf, errstr, _ERRSTR_SIZE)
        except BaseException:
            _L.ue_conf_destroy(conf)
            raise
        if not handle:
            _L.ue_conf_destroy(conf)  # on failure the caller still owns conf
            self._raise(None, errstr, "cannot create client")
        return int(handle)

    @staticmethod
    def _raise(code: Optional[int], errstr: Any, what: str) -> NoReturn:
        text = errstr.value.decode(errors="replace") or "unknown reason"
        if code is None:
            # ue_client_new() reports a reason but no code (spool locked, transport, ...).
            raise UserEventsError(None, "", f"{what}: {text}")
        raise _ue.make_error(code, f"{what}: {text}", describe=False)

    # ---- call bracketing: close() waits for calls in progress, then refuses new ones ----
    # Every call appends to _inflight, then checks _closing; close() sets _closing, then waits
    # for _inflight to empty. list.append/pop are atomic, so a call either sees _closing or is
    # waited for, and this costs two list operations instead of two lock round trips.

    def _enter(self) -> int:
        self._inflight.append(None)
        if self._closing:
            self._inflight.pop()
            raise _closed_error()
        return self._handle  # type: ignore[return-value]

    def _leave(self) -> None:
        self._inflight.pop()

    # ---- the API ----

    def track(self, type: str, user_id: Optional[str] = None,
              properties: Optional[Mapping[str, PropertyValue]] = None,
              context: Optional[Mapping[str, Union[str, int]]] = None, *,
              anonymous_id: Optional[str] = None, session_id: Optional[str] = None,
              timestamp_ms: Optional[int] = None,
              event_id: Union[uuid.UUID, bytes, None] = None) -> uuid.UUID:
        """Tracks one event (``ue_track()``): never blocks on I/O.

        Args:
            type: the event type ([A-Za-z0-9._-], 1..200 characters; part of the topic).
            user_id: the user (and Kafka key); default: the one given to ``identify()``.
            properties: str -> str, int (64-bit), float (finite) or bool. Nested values are
                refused with TypeError (the C API has only scalars).
            context: per-event context fields by name ("app.name", "os.version",
                "screen.width", ...); the client's configured context fills the rest.
            anonymous_id, session_id, timestamp_ms, event_id: optional envelope fields.

        Returns:
            the event id (UUIDv7) the library stamped, as in the delivery report.

        Raises:
            TypeError / ValueError / OverflowError: a value Python cannot pass to C.
            InvalidArgumentError: a value the library refused (bad type name, NaN, ...).
            QueueFullError: the in-memory queue is full; the event was dropped (counted).
            EventTooLargeError, ClientClosedError.
        """
        slot = getattr(_tls, "slot", None)
        if slot is None or slot.busy:
            slot = _event_slot()
        slot.busy = True
        try:
            ev = slot.ptr
            tb = _key_cache.get(type)  # types repeat like property keys: same cache
            if tb is None:
                tb = _key_bytes(type, "event type")
            rc = _reset(ev, tb)
            if rc:
                raise _ue.make_error(rc, f"event type {type!r} refused "
                                         "([A-Za-z0-9._-], 1..200 characters)")
            if user_id is not None:
                rc = _set_user_id(ev, _cstr(user_id, "user_id"))
                if rc:
                    raise _ue.make_error(rc, "user_id refused")
            if properties:
                _set_properties(ev, properties)
            if (context or anonymous_id is not None or session_id is not None
                    or timestamp_ms is not None or event_id is not None):
                _fill_event(ev, context, anonymous_id, session_id, timestamp_ms, event_id)
            inflight = self._inflight
            inflight.append(None)  # before the check: close() waits for it (see close())
            try:
                if self._closing:
                    raise _closed_error()
                rc = _track(self._handle, ev)
            finally:
                inflight.pop()
            if rc:
                raise _ue.make_error(rc, f"event {type!r} not tracked")
            _get_event_id(ev, slot.id_buf)
            return _uuid_from_bytes(slot.id_buf)
        finally:
            slot.busy = False

    def identify(self, user_id: Optional[str]) -> None:
        """Sets the user id of later events that carry none (None or "" clears it)."""
        uid = None if user_id is None else _cstr(user_id, "user_id")
        handle = self._enter()
        try:
            rc = _L.ue_identify(handle, uid)
        finally:
            self._leave()
        _check(rc, "identify failed")

    @property
    def anonymous_id(self) -> str:
        """The anonymous id of this client (``anonymous.id`` or generated)."""
        handle = self._enter()
        try:
            return str(_L.ue_anonymous_id(handle).decode())
        finally:
            self._leave()

    def flush(self, timeout: Optional[float] = None) -> None:
        """Waits until every event tracked so far is delivered, failed or dropped, then serves
        the delivery reports waiting (``on_delivery``).

        Args:
            timeout: seconds; None waits without limit.
        Raises:
            TimedOutError: the timeout passed first (reports so far are still served).
        """
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        handle = self._enter()
        try:
            rc = _L.ue_flush(handle, ms)
        finally:
            self._leave()
        self.poll(0)
        _check(rc, f"flush did not finish within {timeout}s")

    def poll(self, timeout: float = 0) -> int:
        """Calls ``on_delivery`` for the delivery reports waiting, on this thread.

        Args:
            timeout: seconds to wait for the first report when none is waiting.
        Returns:
            the number of reports served. An exception from ``on_delivery`` propagates;
            the reports after it stay queued for the next call.
        """
        cb = self._on_delivery
        if cb is None:
            return 0
        n = 0
        try:
            item = self._reports.get(timeout=timeout) if timeout > 0 else \
                self._reports.get_nowait()
        except queue.Empty:
            return 0
        while True:
            cb(self._report(item))
            n += 1
            try:
                item = self._reports.get_nowait()
            except queue.Empty:
                return n

    @staticmethod
    def _report(item: _RawReport) -> DeliveryReport:
        raw_id, type_, outcome, reason, reason_str = item
        error = None
        if reason:
            detail = (reason_str or b"").decode(errors="replace")
            error = _ue.make_error(reason, detail or None)
        return DeliveryReport(_uuid_from_bytes(raw_id), type_.decode(errors="replace"),
                              Outcome(outcome), error)

    def stats(self) -> dict[str, int]:
        """Every statistic of the client (``ue_stats_json()``), e.g. ``{"tracked": 3,
        "delivered": 3, "dropped_queue_full": 0, ...}``."""
        handle = self._enter()
        try:
            size = _L.ue_stats_json(handle, None, 0) + 1
            buf = create_string_buffer(size)
            _L.ue_stats_json(handle, buf, size)
        finally:
            self._leave()
        stats: dict[str, int] = json.loads(buf.value)
        return stats

    def close(self) -> None:
        """Flushes for up to ``shutdown.timeout.ms``, stops and frees the client
        (``ue_client_destroy()``), then serves the last delivery reports. Events not
        acknowledged by then stay in the spool (with ``spool.dir``) or are reported DROPPED.
        Waits for calls other threads are making; later calls raise ClientClosedError.
        Closing twice is a no-op."""
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
            delay = 0.0001
            while self._inflight:  # calls that started before _closing was set
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
        self._finalizer()  # ue_client_destroy(); the C thread is gone when it returns
        self.poll(0)

    @property
    def closed(self) -> bool:
        """True once close() started."""
        return self._closing

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        return f"<userevents.Client {state} at {id(self):#x}>"

