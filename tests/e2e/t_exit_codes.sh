#!/bin/bash
# One cause, one exit code, whichever subcommand meets it (README "Exit
# codes", tools/ds.c cli_exit_for):
#  - permission denied is 4 (local system error) in every subcommand,
#    ds replica included, whether the replica or the master side is
#    refused;
#  - a storage that does not exist is 1 everywhere;
#  - a symlink where the storage must have a file says "is a symlink"
#    (not "Too many levels of symbolic links") and is 1.
. "$(dirname "$0")/lib.sh" || exit 1

S=$SCRATCH/s
R=$SCRATCH/r
must_pass ds mkds "$S"
printf 'one' >"$SCRATCH/p1"
must_pass ds commit "$S" new="$SCRATCH/p1"
T1=$(head -n1 "$LAST_STDOUT")
must_pass ds replica --init -q "$S" "$R"
must_pass ds commit "$S" 0000000000000001="$SCRATCH/p1"

# Permission denied: as root, run ds as another user (root passes every
# permission check); as anyone else, take the write permission away.
chmod 755 "$SCRATCH"
chmod 644 "$SCRATCH/p1"
cp "$DS_BIN" "$SCRATCH/ds"
chmod 755 "$SCRATCH/ds"
if [ "$(id -u)" = 0 ]; then
	other() { setpriv --reuid=65534 --regid=65534 --clear-groups \
	                  "$SCRATCH/ds" "$@"; }
	other --version >/dev/null || fail "cannot run ds as uid 65534"
	readers_denied=1
else
	other() { "$SCRATCH/ds" "$@"; }
	chmod a-w "$S/misc/lock" "$S/misc/sublock" "$R/misc/lock" \
	          "$R/misc/sublock" "$S/misc" "$R/misc"
	readers_denied=0
fi
denied() {
	must_fail 4 other "$@"
	assert_contains "$LAST_STDERR" "Permission denied"
}
denied cat "$S" 0000000000000001
denied history "$S" 0000000000000001
denied commit "$S" new="$SCRATCH/p1"
denied undo "$S" "$T1"
denied new-oid "$S"
denied check "$S"
denied check --compare "$S" "$R"
denied whatsnew --storage "$S" "$T1"
denied snapshot --storage "$S" true
denied replica "$S" "$R"               # the replica's lock
if [ "$readers_denied" = 1 ]; then
	denied log "$S"                 # A's files are 0640
	denied dump "$S/A/x/serial"
	# the master side refused (it exits 4): still 4 for the replica
	mkdir -m 777 "$SCRATCH/w"
	denied replica --init "$S" "$SCRATCH/w/r2"
	assert_contains "$LAST_STDERR" "(exit 4)"
	assert_contains "$LAST_STDERR" "ds replica: master side: "
fi
# an input file the user may not read: 4 too (was 1)
printf 'two' >"$SCRATCH/secret"
chmod 000 "$SCRATCH/secret"
denied commit "$S" new="$SCRATCH/secret"
assert_contains "$LAST_STDERR" "open $SCRATCH/secret"
if [ "$(id -u)" != 0 ]; then
	chmod u+w "$S/misc/lock" "$S/misc/sublock" "$S/misc" "$R/misc/lock" \
	          "$R/misc/sublock" "$R/misc"
fi

# No such storage: 1 everywhere
N=$SCRATCH/nothing
for cmd in "cat $N 0000000000000001" "history $N 0000000000000001" \
           "commit $N new=$SCRATCH/p1" "undo $N $T1" "new-oid $N" \
           "check $N" "log $N" "whatsnew --storage $N $T1" \
           "snapshot --storage $N true" "replica $S $N" "replica $N $R" \
           "check --compare $S $N"; do
	# shellcheck disable=SC2086
	must_fail 1 ds $cmd
done

# A symlink in the master's A where a revision file belongs: the master
# side refuses to follow it and says so
rev=$(cd "$S/A" && find o0 -type f ! -name c | sort | tail -n1)
mv "$S/A/$rev" "$SCRATCH/rev.saved"
ln -s "$SCRATCH/rev.saved" "$S/A/$rev"
must_fail 1 ds replica "$S" "$R"
assert_contains "$LAST_STDERR" "is a symlink"
assert_not_contains "$LAST_STDERR" "Too many levels of symbolic links"
