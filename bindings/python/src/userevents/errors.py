"""Exceptions raised by the bindings. Every error from a C call carries the C error code
(``code``), its symbolic name (``name``, e.g. "UE_ERR_QUEUE_FULL") and a message.

The classes follow the code, and also derive from the built-in exception a Python user would
catch (``ValueError`` for a bad argument or configuration, ``TimeoutError`` for a deadline),
so ``except ValueError`` works as well as ``except userevents.InvalidArgumentError``.
"""

from __future__ import annotations

import enum
from typing import Any, Optional


class ErrorCode(enum.IntEnum):
    """``ue_err_t`` of userevents.h (same numbers; the tests check each name against
    ``ue_err2name()``). Negative codes are local failures, positive ones remote."""

    OK = 0
    INVALID_ARG = -1
    CONF_UNKNOWN = -2
    CONF_INVALID = -3
    NOMEM = -4
    QUEUE_FULL = -5
    TIMED_OUT = -6
    SPOOL = -7
    SPOOL_LOCKED = -8
    TRANSPORT = -9
    FORKED = -10
    RECURSIVE_CALL = -11
    ENCODE = -12
    TOO_LARGE = -13
    SHUTDOWN = -14
    SPOOL_FULL = -15
    SPOOL_EXPIRED = -16
    TYPE_RESERVED = -17
    BROKER = 1


class UserEventsError(Exception):
    """An error reported by a userevents C library.

    Attributes:
        code: the C error code (an ``ErrorCode`` when this version knows it, else an int);
            None only when ``Client()`` failed, since ``ue_client_new()`` gives a reason
            but no code.
        name: its symbolic name from the library, e.g. "UE_ERR_QUEUE_FULL".
        message: what went wrong, in words.
    """

    @staticmethod
    def _as_code(code: int) -> int:
        """libuserevents' numbering; the other libraries' errors keep the plain number."""
        return _as_code(code)

    def __init__(self, code: Optional[int], name: str, message: str) -> None:
        super().__init__(f"{message} ({name})" if name else message)
        self.code: Optional[int] = None if code is None else self._as_code(code)
        self.name = name
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        return (type(self), (self.code, self.name, self.message))


class InvalidArgumentError(UserEventsError, ValueError):
    """UE_ERR_INVALID_ARG: an argument the library refused (event type, property, ...); also
    UE_ERR_TYPE_RESERVED: an event type naming one of the pipeline's own topics."""


class ConfigError(UserEventsError, ValueError):
    """UE_ERR_CONF_UNKNOWN / UE_ERR_CONF_INVALID: a configuration key or value refused."""


class EventTooLargeError(UserEventsError, ValueError):
    """UE_ERR_TOO_LARGE: the encoded event exceeds ``event.max.bytes``."""


class QueueFullError(UserEventsError):
    """UE_ERR_QUEUE_FULL: the in-memory queue is full and the event was dropped (counted)."""


class TimedOutError(UserEventsError, TimeoutError):
    """UE_ERR_TIMED_OUT: a deadline passed before the work was done."""


class ClientClosedError(UserEventsError):
    """UE_ERR_SHUTDOWN: the client is closed or closing."""


class EnrichError(UserEventsError):
    """An ``enr_err_t`` of libenrich's processor: ``code`` is its number, ``name`` e.g.
    "ENR_ERR_FENCED" (another instance took over the transactional id)."""

    _as_code = staticmethod(int)


class SinkError(UserEventsError):
    """A ``whs_err_t`` of libwhsink: ``code`` is its number, ``name`` e.g.
    "WHS_ERR_KAFKA_FATAL"."""

    _as_code = staticmethod(int)


class SinkTimedOutError(SinkError, TimeoutError):
    """WHS_ERR_TIMED_OUT: flush or close passed its deadline (the work goes on, or is left
    for the next run; nothing is half-written)."""


_CLASSES: dict[int, type[UserEventsError]] = {
    ErrorCode.INVALID_ARG: InvalidArgumentError,
    ErrorCode.TYPE_RESERVED: InvalidArgumentError,
    ErrorCode.CONF_UNKNOWN: ConfigError,
    ErrorCode.CONF_INVALID: ConfigError,
    ErrorCode.TOO_LARGE: EventTooLargeError,
    ErrorCode.QUEUE_FULL: QueueFullError,
    ErrorCode.TIMED_OUT: TimedOutError,
    ErrorCode.SHUTDOWN: ClientClosedError,
}


def _as_code(code: int) -> int:
    try:
        return ErrorCode(code)
    except ValueError:
        return int(code)  # a code newer than these bindings: keep the number


def error_class(code: int) -> type[UserEventsError]:
    """The exception class for C error ``code``."""
    return _CLASSES.get(code, UserEventsError)
