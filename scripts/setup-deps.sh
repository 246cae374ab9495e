#!/bin/bash
# setup-deps.sh - install what the project needs to build and test on
# Debian 12 (bookworm): compiler, CMake + Ninja, the libraries it links
# (libarchive, OpenSSL libcrypto, jansson, libcurl), cmocka for unit tests,
# and what the end-to-end tests run (OpenSSH server and client for the
# loopback sshd, jq to read the fixture manifests), and clang with its
# libFuzzer runtime for the bounded fuzzing runs.
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
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	     grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
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
