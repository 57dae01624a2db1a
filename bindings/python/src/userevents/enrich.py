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
import weakref
from collections.abc import Mapping, Sequence
from ctypes import byref, c_char_p, c_double, c_int64, c_size_t, c_ubyte, c_void_p
from ctypes import create_string_buffer, string_at
from typing import Any, NoReturn, Optional, Union

from . import _enr
from ._enr import lib as _L
from .errors import ConfigError, ErrorCode, UserEventsError, error_class

__all__ = ["Pipeline", "Stage", "StageEvent", "Verdict", "STATS", "version"]

_ERRSTR_SIZE = 512
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


def _cstr(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{what} must be str, not {type(value).__name__}")


def _conf_value(key: str, value: object) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float)):
        return str(value).encode()
    return _cstr(value, f"configuration value of {key!r}")


def _raise(code: int, what: str) -> NoReturn:
    """An enr_err_t as an exception (codes -1..-4 mean the same as libuserevents' ones)."""
    name = _enr.err_name(code)
    message = f"{what}: {_enr.err_str(code)}"
    if code in (ErrorCode.INVALID_ARG, ErrorCode.CONF_UNKNOWN, ErrorCode.CONF_INVALID,
                ErrorCode.NOMEM):
        raise error_class(code)(code, name, message)
    raise UserEventsError(None, name, message)


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
        if not isinstance(config, Mapping):
            raise TypeError("config must be a mapping of str keys to values")
        # The C stages call these; they live as long as the pipeline.
        self._callbacks: list[Any] = []
        conf = _L.enr_conf_new()
        if not conf:
            raise MemoryError("enr_conf_new failed")
        errstr = create_string_buffer(_ERRSTR_SIZE)
        try:
            for stage in stages:
                if not isinstance(stage, Stage):
                    raise TypeError(f"{stage!r} is not a userevents.enrich.Stage")
                fn = _make_process_fn(stage)
                self._callbacks.append(fn)
                handle = _L.enr_stage_new(_cstr(stage.name, "stage name"), fn, None)
                if not handle:
                    raise ValueError(f"invalid stage name {stage.name!r} ([a-z0-9_], at most "
                                     "32 characters)")
                rc = _L.enr_conf_add_stage(conf, handle)  # takes the stage, also on failure
                if rc:
                    _raise(rc, f"cannot add stage {stage.name!r}")
            for key, value in config.items():
                rc = _L.enr_conf_set(conf, _cstr(key, "configuration key"),
                                     _conf_value(key, value), errstr, _ERRSTR_SIZE)
                if rc != _enr.CONF_OK:
                    code = (ErrorCode.CONF_UNKNOWN if rc == _enr.CONF_UNKNOWN
                            else ErrorCode.CONF_INVALID)
                    text = errstr.value.decode(errors="replace") or "refused"
                    raise ConfigError(code, "ENR_ERR_" + code.name,
                                      f"configuration {key!r}: {text}")
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
