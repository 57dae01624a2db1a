"""ctypes declarations of libwhsink's public API (libwhsink/include/whsink.h).

Only prototypes and the callback types live here: every behaviour is the C library's.
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, c_char_p, c_int, c_int32, c_int64, c_size_t, c_void_p

from . import _native

SONAME = "libwhsink.so.0"
ABI_MAJOR = 0  # WHS_VERSION >> 24 these bindings were written for

# void (*)(const char *topic, int32_t partition, int64_t next_offset, int64_t rows,
#          int64_t dead_letters, void *opaque)
COMMIT_CB = CFUNCTYPE(None, c_char_p, c_int32, c_int64, c_int64, c_int64, c_void_p)
# void (*)(whs_err_t err, int retriable, const char *reason, void *opaque)
ERROR_CB = CFUNCTYPE(None, c_int, c_int, c_char_p, c_void_p)
# void (*)(int level, const char *message, void *opaque)
LOG_CB = CFUNCTYPE(None, c_int, c_char_p, c_void_p)

# whs_err_t values the bindings act on
ERR_TIMED_OUT, ERR_CLOSED = -5, -7

_PROTOTYPES = {
    # name: (restype, argtypes)
    "whs_version": (c_int, []),
    "whs_version_str": (c_char_p, []),
    "whs_err2str": (c_char_p, [c_int]),
    "whs_err2name": (c_char_p, [c_int]),
    "whs_conf_new": (c_void_p, []),
    "whs_conf_destroy": (None, [c_void_p]),
    "whs_conf_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "whs_conf_set_commit_cb": (None, [c_void_p, COMMIT_CB, c_void_p]),
    "whs_conf_set_error_cb": (None, [c_void_p, ERROR_CB, c_void_p]),
    "whs_conf_set_log_cb": (None, [c_void_p, LOG_CB, c_void_p]),
    "whs_sink_new": (c_void_p, [c_void_p, c_char_p, c_size_t]),
    "whs_sink_destroy": (c_int, [c_void_p]),
    "whs_poll": (c_int, [c_void_p, c_int]),
    "whs_stop": (None, [c_void_p]),
    "whs_flush": (c_int, [c_void_p, c_int]),
    "whs_close": (c_int, [c_void_p, c_int]),
    "whs_stat": (c_int64, [c_void_p, c_int]),
    "whs_stat_name": (c_char_p, [c_int]),
    "whs_kafka_stats_json": (c_size_t, [c_void_p, c_char_p, c_size_t]),
}


def _load() -> ctypes.CDLL:
    # A CDLL releases the GIL around each call: the sink's calls wait on the network and the
    # warehouse. Its callbacks run on the calling thread and take the GIL back for the call.
    lib = _native.load("userwhsink", SONAME)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    major = lib.whs_version() >> 24
    if major != ABI_MAJOR:
        raise ImportError(
            f"{_native.library_path(lib)} is libwhsink {lib.whs_version_str().decode()} "
            f"(major {major}); these bindings need major {ABI_MAJOR}"
        )
    return lib


lib = _load()


def err_name(code: int) -> str:
    return (lib.whs_err2name(code) or b"WHS_ERR_%d" % code).decode()


def err_str(code: int) -> str:
    return (lib.whs_err2str(code) or b"").decode()
