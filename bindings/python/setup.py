"""Build hook: bundles the C library into the package when built from the repository.

``pip install ./bindings/python`` runs ``make -C <repo> libs`` and copies
``build/libuserevents.so.0``, ``build/libenrich.so.0`` and ``build/libwhsink.so.0`` into
``userevents/_lib/``, so the installed package works
without ``make install``. Built elsewhere (an sdist), nothing is bundled and the package
uses the system's library (``make install``) or ``USEREVENTS_LIB``.

Environment:
  USEREVENTS_BUNDLE=0   do not build or bundle (use the system's library at run time)
  USEREVENTS_MAKE       the make command (default "make")
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# The C libraries to bundle, one per module (client, enrich, whsink).
LIBRARIES = ["libuserevents.so.0", "libenrich.so.0", "libwhsink.so.0"]


def in_repository() -> bool:
    return (REPO / "Makefile").is_file() and \
        (REPO / "libuserevents" / "include" / "userevents.h").is_file()


def make_libraries() -> None:
    """``make libs``: every library we bundle, built and up to date."""
    make = os.environ.get("USEREVENTS_MAKE", "make").split()
    cmd = make + ["-C", str(REPO), "-j2", "libs"]
    print("userevents: building the C libraries: " + " ".join(cmd), file=sys.stderr)
    if subprocess.call(cmd, stdout=sys.stderr) != 0:
        sys.exit("userevents: `make libs` failed in " + str(REPO) + ": install the build "
                 "dependencies (./setup.sh in the repository), or set USEREVENTS_BUNDLE=0 "
                 "to use the installed libraries instead")


def read_version() -> str:
    """The repository's file VERSION (the C libraries' version); in an sdist, the version the
    sdist was made with (its PKG-INFO)."""
    if in_repository():
        return (REPO / "VERSION").read_text().strip()
    for line in (HERE / "PKG-INFO").read_text().splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    sys.exit("userevents: no version: build from the repository or from an sdist")


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        if os.environ.get("USEREVENTS_BUNDLE", "1") == "0" or not in_repository():
            return
        make_libraries()
        dest = Path(self.build_lib) / "userevents" / "_lib"
        dest.mkdir(parents=True, exist_ok=True)
        for name in LIBRARIES:
            src = (REPO / "build" / name).resolve()  # the versioned file, not the symlink
            shutil.copyfile(src, dest / name)
            os.chmod(dest / name, 0o755)


class PlatformWheel(bdist_wheel):
    """ctypes needs no particular Python, but the bundled .so is for this platform."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        return "py3", "none", sysconfig.get_platform().replace("-", "_").replace(".", "_")


setup(version=read_version(),
      cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
