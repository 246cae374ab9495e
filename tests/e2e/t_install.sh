#!/bin/bash
# cmake --install: what it puts where (GNUInstallDirs), the shared
# library's SONAME, and a program built against the installed library
# through the installed dirstorage.pc, once with the shared and once with
# the static library; the installed ds runs. Twice: into a --prefix, and
# with DESTDIR (as a package build does).
. "$(dirname "$0")/lib.sh" || exit 1
: "${DS_BUILD_DIR:?}" "${DS_SOURCE_DIR:?}"
command -v pkg-config >/dev/null || fail "pkg-config is needed (scripts/setup-deps.sh)"
grep -q '^DS_PIC:BOOL=ON' "$DS_BUILD_DIR/CMakeCache.txt" ||
	skip "configured with DS_PIC=OFF: no shared library to install"
# a library built with sanitizers needs their runtime in the program too
cflags=
if grep -q '^DS_SANITIZE:BOOL=ON' "$DS_BUILD_DIR/CMakeCache.txt"; then
	cflags="-fsanitize=address,undefined"
fi
version=$("$DS_BIN" --version | awk '{ print $3 }')
[ -n "$version" ] || fail "no version from ds --version"

# check_tree ROOT: the installed files under ROOT (a prefix)
check_tree() {
	local root=$1 libdir
	libdir=$(dirname "$(find "$root" -name dirstorage.pc -path '*/pkgconfig/*')")
	libdir=${libdir%/pkgconfig}
	[ -d "$libdir" ] || fail "no pkgconfig/dirstorage.pc under $root"
	[ -x "$root/bin/ds" ] || fail "no $root/bin/ds"
	[ -f "$root/include/dirstorage.h" ] || fail "no include/dirstorage.h"
	[ -f "$libdir/libdirstorage.a" ] || fail "no libdirstorage.a"
	[ -f "$libdir/libdirstorage.so.$version" ] || fail "no libdirstorage.so.$version"
	assert_eq "libdirstorage.so.$version" "$(readlink "$libdir/libdirstorage.so.${version%%.*}")" "SONAME link"
	assert_eq "libdirstorage.so.${version%%.*}" "$(readlink "$libdir/libdirstorage.so")" "development link"
	readelf -d "$libdir/libdirstorage.so.$version" >"$SCRATCH/dyn"
	assert_contains "$SCRATCH/dyn" "Library soname: [libdirstorage.so.${version%%.*}]"
	# every man page of the source tree, and the bash completion
	for page in "$DS_SOURCE_DIR"/man/*.1; do
		[ -f "$root/share/man/man1/$(basename "$page")" ] ||
			fail "man page $(basename "$page") not installed"
	done
	[ -f "$root/share/bash-completion/completions/ds" ] || fail "no bash completion"
	for f in systemd/ds-replica@.service systemd/ds-replica@.timer \
	         systemd/ds-replica-watch@.service cron/ds-replica.cron; do
		[ -f "$root/share/doc/dirstorage/contrib/$f" ] || fail "contrib/$f not installed"
	done

	# the installed ds
	must_pass "$root/bin/ds" --version
	assert_eq "ds (libdirstorage) $version" "$(cat "$LAST_STDOUT")" "installed ds --version"

	export PKG_CONFIG_PATH=$libdir/pkgconfig
	assert_eq "$version" "$(pkg-config --modversion dirstorage)" "pkg-config --modversion"

	# shared: the program needs libdirstorage.so.MAJOR at run time
	# shellcheck disable=SC2046
	cc $cflags -Wall -Werror -o "$SCRATCH/use_shared" "$DS_SOURCE_DIR/tests/install/use_lib.c" \
		$(pkg-config --cflags --libs dirstorage) ||
		fail "cannot build against the installed shared library"
	readelf -d "$SCRATCH/use_shared" >"$SCRATCH/dyn"
	assert_contains "$SCRATCH/dyn" "Shared library: [libdirstorage.so.${version%%.*}]"
	LD_LIBRARY_PATH="$libdir" ldd "$SCRATCH/use_shared" >"$SCRATCH/ldd"
	assert_contains "$SCRATCH/ldd" "$libdir/libdirstorage.so.${version%%.*}"
	must_pass env LD_LIBRARY_PATH="$libdir" "$SCRATCH/use_shared" "$SCRATCH/s1"
	assert_contains "$LAST_STDOUT" "libdirstorage $version tid "
	tid=$(awk '{ print $4 }' "$LAST_STDOUT")
	must_pass "$root/bin/ds" log --json "$SCRATCH/s1"
	assert_eq "$tid" "$(jq -r '.transactions[0].tid' "$LAST_STDOUT")" "tid in ds log"
	must_pass "$root/bin/ds" check -q "$SCRATCH/s1"

	# static: --static adds the private libraries; -l:libdirstorage.a
	# picks the archive over the .so beside it (contrib/README.md)
	libs=$(pkg-config --static --libs dirstorage |
	       sed 's/-ldirstorage/-l:libdirstorage.a/')
	# shellcheck disable=SC2086
	cc $cflags -Wall -Werror -o "$SCRATCH/use_static" "$DS_SOURCE_DIR/tests/install/use_lib.c" \
		$(pkg-config --cflags dirstorage) $libs ||
		fail "cannot build against the installed static library"
	readelf -d "$SCRATCH/use_static" >"$SCRATCH/dyn"
	assert_not_contains "$SCRATCH/dyn" "libdirstorage"
	must_pass "$SCRATCH/use_static" "$SCRATCH/s2"
	assert_contains "$LAST_STDOUT" "libdirstorage $version tid "
	must_pass "$root/bin/ds" check -q "$SCRATCH/s2"
	rm -rf "$SCRATCH/s1" "$SCRATCH/s2"
}

# 1. a prefix given at install time
must_pass cmake --install "$DS_BUILD_DIR" --prefix "$SCRATCH/prefix"
check_tree "$SCRATCH/prefix"

# 2. DESTDIR, as a package build installs: everything under DESTDIR/PREFIX
must_pass env DESTDIR="$SCRATCH/dest" cmake --install "$DS_BUILD_DIR" --prefix /opt/dirstorage
[ -z "$(find "$SCRATCH/dest" -mindepth 1 -maxdepth 1 ! -name opt)" ] ||
	fail "DESTDIR install wrote outside DESTDIR/opt: $(ls "$SCRATCH/dest")"
check_tree "$SCRATCH/dest/opt/dirstorage"
