"""Python values as C arguments, shared by the modules: strings as NUL-terminated UTF-8,
configuration values as the text the libraries parse, and a configuration mapping applied
key by key through a library's ``*_conf_set()`` with its refusal raised as ``ConfigError``."""

from __future__ import annotations

from collections.abc import Mapping
from ctypes import create_string_buffer
from typing import Any, Callable

from .errors import ConfigError, ErrorCode

ERRSTR_SIZE = 512


def cstr(value: object, what: str) -> bytes:
    """``value`` as NUL-terminated UTF-8 for a ``const char *`` parameter."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        b = value.encode()
    except UnicodeEncodeError as e:
        raise ValueError(f"{what} is not valid Unicode text: {e}") from None
    if b"\0" in b:
        raise ValueError(f"{what} must not contain NUL characters")
    return b


def conf_value(key: str, value: object) -> bytes:
    """A configuration value as the text the C library parses."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float)):
        return str(value).encode()
    return cstr(value, f"configuration value of {key!r}")


def apply(conf: int, config: Mapping[str, Any], conf_set: Callable[..., int],
          err_prefix: str) -> None:
    """Sets every key of ``config`` on the C ``conf`` with ``conf_set`` (the library's
    ``*_conf_set``, whose results are 0 OK, -1 invalid value, -2 unknown key).

    Raises:
        TypeError: ``config`` is not a mapping, or a key or value has the wrong type.
        ConfigError: the library refused a key or value; the message is the library's.
    """
    if not isinstance(config, Mapping):
        raise TypeError("config must be a mapping of str keys to values")
    errstr = create_string_buffer(ERRSTR_SIZE)
    for key, value in config.items():
        rc = conf_set(conf, cstr(key, "configuration key"), conf_value(key, value), errstr,
                      ERRSTR_SIZE)
        if rc:
            code = ErrorCode.CONF_UNKNOWN if rc == -2 else ErrorCode.CONF_INVALID
            text = errstr.value.decode(errors="replace") or "refused"
            raise ConfigError(code, f"{err_prefix}_ERR_{code.name}",
                              f"configuration {key!r}: {text}")
