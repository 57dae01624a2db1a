"""ctypes declarations of libenrich's public API (libenrich/include/enrich.h): the pure
pipeline, custom stages, the event accessors stages use, and the Kafka processor.

Only prototypes and the callback types live here: every behaviour is the C library's.
"""

from __future__ import annotations

import ctypes
from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_double, c_int, c_int64, c_size_t,
                    c_ubyte, c_void_p)

from . import _native

SONAME = "libenrich.so.0"
ABI_MAJOR = 0  # ENR_VERSION >> 24 these bindings were written for

# enr_err_t values the bindings act on
ERR_TIMED_OUT, ERR_STOPPED = -9, -12
# enr_verdict_t (*)(void *state, enr_event_t *ev, enr_ctx_t *ctx, void *opaque)
PROCESS_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_void_p)
# void (*)(const char *topic, const void *key, size_t key_len, const void *value,
#          size_t value_len, void *opaque)
RECORD_CB = CFUNCTYPE(None, c_char_p, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p)
# void (*)(int level, const char *message, void *opaque)
LOG_CB = CFUNCTYPE(None, c_int, c_char_p, c_void_p)

# enr_err_t values the bindings act on
ERR_TIMED_OUT, ERR_STOPPED = -9, -12
# enr_verdict_t
KEEP, DROP, FAIL = 0, 1, 2
# enr_conf_res_t
CONF_OK, CONF_INVALID, CONF_UNKNOWN = 0, -1, -2

_PROTOTYPES = {
    # name: (restype, argtypes)
    "enr_version": (c_int, []),
    "enr_version_str": (c_char_p, []),
    "enr_err2str": (c_char_p, [c_int]),
    "enr_err2name": (c_char_p, [c_int]),
    "enr_event_type": (c_char_p, [c_void_p]),
    "enr_event_user_id": (c_char_p, [c_void_p]),
    "enr_event_anonymous_id": (c_char_p, [c_void_p]),
    "enr_event_session_id": (c_char_p, [c_void_p]),
    "enr_event_id": (None, [c_void_p, POINTER(c_ubyte)]),
    "enr_event_time_ms": (c_int64, [c_void_p]),
    "enr_event_context": (c_char_p, [c_void_p, c_char_p]),
    "enr_event_get_string": (c_int, [c_void_p, c_char_p, POINTER(c_char_p)]),
    "enr_event_get_int": (c_int, [c_void_p, c_char_p, POINTER(c_int64)]),
    "enr_event_get_double": (c_int, [c_void_p, c_char_p, POINTER(c_double)]),
    "enr_event_set_string": (c_int, [c_void_p, c_char_p, c_char_p]),
    "enr_event_set_int": (c_int, [c_void_p, c_char_p, c_int64]),
    "enr_event_set_double": (c_int, [c_void_p, c_char_p, c_double]),
    "enr_stage_new": (c_void_p, [c_char_p, PROCESS_FN, c_void_p]),
    "enr_stage_destroy": (None, [c_void_p]),
    "enr_ctx_emit": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t, c_void_p, c_size_t]),
    "enr_ctx_fail": (None, [c_void_p, c_char_p]),
    "enr_conf_new": (c_void_p, []),
    "enr_conf_destroy": (None, [c_void_p]),
    "enr_conf_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "enr_conf_add_stage": (c_int, [c_void_p, c_void_p]),
    "enr_conf_set_log_cb": (None, [c_void_p, LOG_CB, c_void_p]),
    "enr_pipeline_new": (c_void_p, [c_void_p, c_char_p, c_size_t]),
    "enr_pipeline_destroy": (None, [c_void_p]),
    "enr_pipeline_process": (c_int, [c_void_p, c_char_p, c_size_t, c_int64,
                                     POINTER(c_void_p), POINTER(c_size_t), c_char_p,
                                     c_size_t]),
    "enr_pipeline_put_profile": (c_int, [c_void_p, c_char_p, c_size_t]),
    "enr_pipeline_flush": (None, [c_void_p, c_int64, RECORD_CB, c_void_p]),
    "enr_pipeline_stat": (c_int64, [c_void_p, c_int]),
    "enr_stat_name": (c_char_p, [c_int]),
    "enr_free": (None, [c_void_p]),
    "enr_stop": (None, [c_void_p]),
    "enr_stat": (c_int64, [c_void_p, c_int]),
    "enr_kafka_stats_json": (c_size_t, [c_void_p, c_char_p, c_size_t]),
}

# The processor's calls that wait on the network: through a CDLL, which releases the GIL
# (other Python threads run meanwhile; Python stages take it back when the C code calls them).
_BLOCKING = {
    "enr_processor_new": (c_void_p, [c_void_p, c_char_p, c_size_t]),
    "enr_poll": (c_int, [c_void_p, c_int]),
    "enr_processor_destroy": (c_int, [c_void_p, c_int]),
    "enr_under_replicated_partitions": (c_int, [c_void_p, c_int]),
}


def _declare(lib: ctypes.CDLL, prototypes: dict) -> None:
    for name, (restype, argtypes) in prototypes.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _load() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    # PyDLL: a pipeline belongs to one thread and its calls are short and CPU-bound; keeping
    # the GIL also lets Python stages run inside enr_pipeline_process() without a re-acquire.
    blocking = _native.load("userenrich", SONAME)
    lib = ctypes.PyDLL(_native.library_path(blocking))
    _declare(lib, _PROTOTYPES)
    _declare(blocking, _BLOCKING)
    major = lib.enr_version() >> 24
    if major != ABI_MAJOR:
        raise ImportError(
            f"{_native.library_path(lib)} is libenrich {lib.enr_version_str().decode()} "
            f"(major {major}); these bindings need major {ABI_MAJOR}"
        )
    return lib, blocking


lib, blocking = _load()


def err_name(code: int) -> str:
    return (lib.enr_err2name(code) or b"ENR_ERR_%d" % code).decode()


def err_str(code: int) -> str:
    return (lib.enr_err2str(code) or b"").decode()
