"""ctypes declarations of libuserevents' public API (libuserevents/include/userevents.h).

Only prototypes and the callback types live here: every behaviour is the C library's.
"""

from __future__ import annotations

import ctypes
from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_double, c_int, c_int64, c_size_t,
                    c_ubyte, c_void_p)

from . import _native
from .errors import UserEventsError, error_class

SONAME = "libuserevents.so.0"
ABI_MAJOR = 0  # UE_VERSION >> 24 these bindings were written for

# void (*)(const uint8_t *event_id, const char *type, ue_outcome_t, ue_err_t,
#          const char *reason_str, void *opaque)
DELIVERY_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_int, c_char_p, c_void_p)
# void (*)(int level, const char *message, void *opaque)
LOG_CB = CFUNCTYPE(None, c_int, c_char_p, c_void_p)

EventId = c_ubyte * 16

# ue_conf_res_t
CONF_OK, CONF_INVALID, CONF_UNKNOWN = 0, -1, -2

_PROTOTYPES = {
    # name: (restype, argtypes)
    "ue_version": (c_int, []),
    "ue_version_str": (c_char_p, []),
    "ue_err2str": (c_char_p, [c_int]),
    "ue_err2name": (c_char_p, [c_int]),
    "ue_conf_new": (c_void_p, []),
    "ue_conf_destroy": (None, [c_void_p]),
    "ue_conf_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "ue_conf_get": (c_int, [c_void_p, c_char_p, c_char_p, POINTER(c_size_t)]),
    "ue_conf_set_delivery_cb": (None, [c_void_p, DELIVERY_CB, c_void_p]),
    "ue_conf_set_log_cb": (None, [c_void_p, LOG_CB, c_void_p]),
    "ue_client_new": (c_void_p, [c_void_p, c_char_p, c_size_t]),
    "ue_client_destroy": (c_int, [c_void_p]),
    "ue_track": (c_int, [c_void_p, c_void_p]),
    "ue_flush": (c_int, [c_void_p, c_int]),
    "ue_identify": (c_int, [c_void_p, c_char_p]),
    "ue_anonymous_id": (c_char_p, [c_void_p]),
    "ue_stat": (c_int64, [c_void_p, c_int]),
    "ue_stat_name": (c_char_p, [c_int]),
    "ue_stats_json": (c_size_t, [c_void_p, c_char_p, c_size_t]),
    "ue_event_new": (c_void_p, [c_char_p]),
    "ue_event_destroy": (None, [c_void_p]),
    "ue_event_reset": (c_int, [c_void_p, c_char_p]),
    "ue_event_set_user_id": (c_int, [c_void_p, c_char_p]),
    "ue_event_set_anonymous_id": (c_int, [c_void_p, c_char_p]),
    "ue_event_set_session_id": (c_int, [c_void_p, c_char_p]),
    "ue_event_set_timestamp_ms": (c_int, [c_void_p, c_int64]),
    "ue_event_set_event_id": (c_int, [c_void_p, EventId]),
    "ue_event_get_event_id": (c_int, [c_void_p, EventId]),
    "ue_event_set_received_at_ms": (c_int, [c_void_p, c_int64]),
    "ue_event_prop_string": (c_int, [c_void_p, c_char_p, c_char_p]),
    "ue_event_prop_int": (c_int, [c_void_p, c_char_p, c_int64]),
    "ue_event_prop_double": (c_int, [c_void_p, c_char_p, c_double]),
    "ue_event_prop_bool": (c_int, [c_void_p, c_char_p, c_int]),
    "ue_event_set_context": (c_int, [c_void_p, c_char_p, c_char_p]),
}


# Calls that only touch a caller-owned ue_event_t: no lock, no I/O, never block. They run
# through a PyDLL view of the same library, which keeps the GIL (saves a release and
# re-acquire per call on track()'s hot path). Everything else releases the GIL (CDLL).
_GIL_KEPT = {"ue_event_reset", "ue_event_set_user_id", "ue_event_prop_string",
             "ue_event_prop_int", "ue_event_prop_double", "ue_event_prop_bool",
             "ue_event_get_event_id"}


def _declare(lib: ctypes.CDLL, names: object) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        if name in names:  # type: ignore[operator]
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes


def _load() -> ctypes.CDLL:
    lib = _native.load("userevents", SONAME)
    _declare(lib, _PROTOTYPES)
    major = lib.ue_version() >> 24
    if major != ABI_MAJOR:
        raise ImportError(
            f"{_native.library_path(lib)} is libuserevents "
            f"{lib.ue_version_str().decode()} (major {major}); these bindings need major "
            f"{ABI_MAJOR}"
        )
    return lib


lib = _load()
lib_gil = ctypes.PyDLL(_native.library_path(lib))  # the same loaded library, another view
_declare(lib_gil, _GIL_KEPT)


def err_name(code: int) -> str:
    return (lib.ue_err2name(code) or b"UE_ERR_%d" % code).decode()


def err_str(code: int) -> str:
    return (lib.ue_err2str(code) or b"").decode()


def make_error(code: int, what: str | None = None, describe: bool = True) -> UserEventsError:
    """The exception for C error ``code``: ``what`` says what failed; the library's own
    description (ue_err2str) follows unless ``describe`` is false."""
    text = err_str(code)
    if not describe and what:
        message = what
    else:
        message = f"{what}: {text}" if what else text
    return error_class(code)(code, err_name(code), message)
