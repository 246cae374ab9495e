#!/bin/bash
# setup-deps.sh - install what the project needs to build and test on
# Debian 12 (bookworm): compiler, CMake + Ninja, the libraries it links
# (libarchive, OpenSSL libcrypto, jansson, libcurl), cmocka for unit tests,
# and what the end-to-end tests run (OpenSSH server and client for the
# loopback sshd, jq to read the fixture manifests), and clang with its
# libFuzzer runtime for the bounded fuzzing runs. Then the project's Python
# virtualenv (.venv/ in the checkout, or $DS_VENV): ZODB, ZEO and friends
# from PyPI, and the dirstorage package (python/) built against the
# project's libdirstorage (build/, configured and built when missing).
#
# Quick no-op when everything is already installed. Uses sudo when not
# run as root. Non-interactive (CI runs it with no stdin).
set -euo pipefail

PACKAGES=(
	build-essential cmake ninja-build pkg-config
	libarchive-dev libssl-dev libcmocka-dev libjansson-dev
	libcurl4-openssl-dev
	openssh-server openssh-client util-linux
	jq tar gzip coreutils findutils sed mawk
	strace rsync hyperfine time bc python3 bsdutils valgrind
	clang libclang-rt-14-dev
	python3-venv python3-dev
)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${DS_VENV:-$ROOT/.venv}
# What the Python suite imports (ZODB's conformance mixins need
# zope.testing; zodbconvert comes with RelStorage).
PY_PACKAGES=(ZODB ZEO ZConfig persistent BTrees transaction zodbpickle
             pytest zope.testing RelStorage setuptools wheel)
PY_IMPORTS="ZODB, ZEO, ZConfig, persistent, BTrees, transaction, zodbpickle, pytest, zope.testing, relstorage, setuptools"

# setup_python: the virtualenv, its packages, and dirstorage (reinstalled
# only when its sources or the engine's changed: a stamp of their md5s)
setup_python() {
	local py=python3 stamp want
	if [ ! -x "$VENV/bin/python" ]; then
		echo "setup-deps: creating the virtualenv $VENV"
		"$py" -m venv "$VENV"
	fi
	if ! "$VENV/bin/python" -c "import $PY_IMPORTS" 2>/dev/null; then
		echo "setup-deps: pip install ${PY_PACKAGES[*]}"
		"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
			"${PY_PACKAGES[@]}" </dev/null
	fi
	stamp=$VENV/.dirstorage-stamp
	want=$(cd "$ROOT" && cat python/setup.py python/pyproject.toml \
	       python/src/dirstorage/* include/*.h src/*.c src/*.h CMakeLists.txt \
	       2>/dev/null | md5sum | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
	   "$VENV/bin/python" -c "import dirstorage._engine" 2>/dev/null; then
		echo "setup-deps: virtualenv $VENV up to date"
		return 0
	fi
	echo "setup-deps: building dirstorage into $VENV"
	cmake -S "$ROOT" -B "$ROOT/build" -G Ninja >/dev/null &&
	ninja -C "$ROOT/build" dirstorage >/dev/null &&
	(cd "$ROOT/python" &&
	 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
		--no-build-isolation --force-reinstall --no-deps . </dev/null) &&
	echo "$want" >"$stamp"
}

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	     grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
	setup_python
	exit $?
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "setup-deps: not root and no sudo; install these as root:" \
	     "${missing[*]}" >&2
	exit 1
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update </dev/null
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
setup_python
