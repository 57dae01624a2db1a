"""Finds and loads the toolkit's C libraries (libuserevents, libenrich, libwhsink), one
``ctypes.CDLL`` per library, cached.

Where a library comes from, first match wins:

1. the environment variable ``<NAME>_LIB`` (``USEREVENTS_LIB=/path/libuserevents.so.0``,
   ``USERENRICH_LIB=/path/libenrich.so.0``, ``USERWHSINK_LIB=/path/libwhsink.so.0``);
2. the copy bundled into this package when it was built from the repository
   (``userevents/_lib/libuserevents.so.0``, see ``setup.py``);
3. imported straight from a source checkout (``PYTHONPATH=bindings/python/src``, or an
   editable install): the repository's ``build/libuserevents.so.0`` after ``make libs``;
4. the system loader: ``libuserevents.so.0`` after ``make install`` (and ``ldconfig``).

``ctypes.CDLL`` releases the GIL around every foreign call, so a slow C call (flush, close)
never blocks other Python threads, and the library's background thread can run our
callbacks (ctypes takes the GIL for them).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_cache: dict[str, ctypes.CDLL] = {}
_lock = threading.Lock()


class LibraryNotFoundError(ImportError):
    """No copy of a C library could be loaded; the message lists where we looked."""


def _candidates(name: str, soname: str) -> list[str]:
    env = os.environ.get(f"{name.upper()}_LIB")
    if env:
        return [env]  # an explicit choice: no silent fallback to another copy
    local = [_HERE / "_lib" / soname]
    if _HERE.parent.name == "src" and _HERE.parents[2].name == "bindings":
        local.append(_HERE.parents[3] / "build" / soname)  # <repo>/bindings/python/src/userevents
    return [str(p) for p in local if p.exists()] + [soname]


def load(name: str, soname: str) -> ctypes.CDLL:
    """Returns the loaded C library ``name`` (e.g. "userevents", "libuserevents.so.0")."""
    with _lock:
        lib = _cache.get(name)
        if lib is not None:
            return lib
        errors = []
        for path in _candidates(name, soname):
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                errors.append(f"  {path}: {e}")
        else:
            raise LibraryNotFoundError(
                f"cannot load {soname}; tried:\n" + "\n".join(errors) + "\n"
                f"Set {name.upper()}_LIB to the library, run `make install` in the userevents "
                "repository, or reinstall this package from the repository so it bundles one."
            )
        _cache[name] = lib
        return lib


def library_path(lib: ctypes.CDLL) -> str:
    """The path a loaded library came from (for diagnostics)."""
    return str(lib._name)
