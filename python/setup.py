"""Build of the C extension dirstorage._engine.

The extension links libdirstorage.a from the project's CMake build. Where
that library is found:

  DS_LIB_DIR        a CMake build directory holding libdirstorage.a
                    (e.g. build-asan/ for the sanitizer configuration)
  otherwise         <checkout>/build/, configured and built here with
                    cmake + ninja when libdirstorage.a is missing there.

DS_SANITIZE=1 adds the AddressSanitizer/UBSan runtime to the link (for a
library built with -DDS_SANITIZE=ON).

The package's version is the project's, read from the project() line of
<checkout>/CMakeLists.txt (where it is defined once).
"""
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"^project\(dirstorage VERSION ([0-9]+\.[0-9]+\.[0-9]+)",
                      f.read(), re.M)
    if m is None:
        sys.exit("setup.py: no project(dirstorage VERSION X.Y.Z) line in "
                 "%s/CMakeLists.txt" % ROOT)
    return m.group(1)


def libdir():
    d = os.environ.get("DS_LIB_DIR")
    if d:
        d = os.path.abspath(d)
        if not os.path.exists(os.path.join(d, "libdirstorage.a")):
            sys.exit("setup.py: DS_LIB_DIR=%s has no libdirstorage.a" % d)
        return d
    d = os.path.join(ROOT, "build")
    if not os.path.exists(os.path.join(d, "libdirstorage.a")):
        if not shutil.which("cmake") or not shutil.which("ninja"):
            sys.exit("setup.py: %s/libdirstorage.a is missing and cmake/ninja "
                     "are not installed (scripts/setup-deps.sh)" % d)
        subprocess.check_call(["cmake", "-S", ROOT, "-B", d, "-G", "Ninja"])
        subprocess.check_call(["ninja", "-C", d, "dirstorage"])
    return d


def ext():
    d = libdir()
    sanitize = os.environ.get("DS_SANITIZE") == "1"
    extra_link = [os.path.join(d, "libdirstorage.a"),
                  "-larchive", "-lcrypto", "-lpthread", "-lm", "-ldl"]
    extra_compile = ["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                     "-Wno-missing-field-initializers",
                     "-Wno-cast-function-type"]
    if sanitize:
        extra_compile += ["-fsanitize=address,undefined",
                          "-fno-omit-frame-pointer"]
        extra_link += ["-fsanitize=address,undefined"]
    return Extension(
        "dirstorage._engine",
        sources=["src/dirstorage/_engine.c"],
        include_dirs=[os.path.join(ROOT, "include")],
        extra_compile_args=extra_compile,
        extra_link_args=extra_link,
        depends=[os.path.join(ROOT, "include", "dirstorage.h"),
                 os.path.join(d, "libdirstorage.a")],
    )


setup(version=version(), ext_modules=[ext()])
