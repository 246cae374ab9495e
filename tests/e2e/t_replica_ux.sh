#!/bin/bash
# ds replica's operator output and its last robustness checks:
#  - "Replica complete" on stderr by default, nothing at all with -q (and
#    a message with -q when it fails), -v says what it did (transactions,
#    files, increment size, how long the master held snapshot mode, total
#    time) with figures that match what the master committed;
#  - the progress line: only when stderr is a terminal (script -qc gives
#    it one) and the transfer lasts over a second (a fake master through
#    -e that pauses mid-stream);
#  - --timeout: a master side that hangs without closing its output is
#    given up on (exit 3, try again later), the replica unchanged;
#  - an increment whose x.oid is below the replica's is refused (exit 1,
#    needs a human), the replica unchanged.
. "$(dirname "$0")/lib.sh"

# the replica's state without the lock files (they hold the last pid)
state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' -e ' \./misc/replica\.state '
}
no_spool() {
	[ ! -e "$1/misc/.replica.incoming" ] || fail "spool left in $1"
	assert_eq 0 "$(ls -A "$1/journal" | wc -l)" "entries in $1/journal"
}
same_A() {
	[ "$(tree_md5 "$1/A")" = "$(tree_md5 "$2/A")" ] ||
		fail "A/ of $2 differs from $1"
}

M=$SCRATCH/master
R=$SCRATCH/replica
must_pass ds gen -q --objects 60 --transactions 20 --per-txn 4 "$M"
must_pass ds replica --init "$M" "$R"
assert_contains "$LAST_STDERR" "Replica complete"

# ---- default: Replica complete, nothing on stdout
must_pass ds gen -q --objects 10 --transactions 5 --per-txn 2 --seed 2 "$M"
must_pass ds replica "$M" "$R"
assert_contains "$LAST_STDERR" "ds replica: Replica complete"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "stdout bytes (default)"
assert_not_contains "$LAST_STDERR" "total time"
same_A "$M" "$R"

# ---- -q: silent on success, even with something to apply
must_pass ds gen -q --objects 10 --transactions 5 --per-txn 2 --seed 3 "$M"
must_pass ds replica -q "$M" "$R"
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "stderr bytes with -q (success)"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "stdout bytes with -q (success)"
same_A "$M" "$R"
# and the no-op
must_pass ds replica -q "$M" "$R"
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "stderr bytes with -q (no-op)"
# -q still speaks when it fails: another storage is a different identity
must_pass ds mkds "$SCRATCH/other"
must_fail 1 ds replica -q "$SCRATCH/other" "$R"
assert_contains "$LAST_STDERR" "different identity"
# and when the replica is not a storage
mkdir "$SCRATCH/empty"
must_fail 1 ds replica -q "$M" "$SCRATCH/empty"
[ -s "$LAST_STDERR" ] || fail "-q printed nothing on failure"

# ---- -v: what it did, with the master's snapshot hold time
must_pass ds gen -q --objects 12 --transactions 7 --per-txn 3 --seed 4 "$M"
must_pass ds replica -v "$M" "$R"
v=$LAST_STDERR
# ds gen wrote 7 transactions of 3 objects: 7 transaction files, 21
# revisions, their .c pointers, x.serial and x.oid
assert_contains "$v" "applied: 7 transactions, "
files=$(sed -n 's/.*applied: 7 transactions, \([0-9]*\) files (\([0-9]*\) object revisions).*/\1 \2/p' "$v")
assert_eq "21" "${files#* }" "object revisions reported"
[ "${files% *}" -ge $((7 + 21 + 2)) ] ||
	fail "files reported (${files% *}) below transactions+revisions+x files"
bytes=$(sed -n 's/.*increment .* (\([0-9]*\) bytes).*/\1/p' "$v")
tarbytes=$(wc -c <"$R/misc/replica.previous")
assert_eq "$tarbytes" "$bytes" "increment size reported vs misc/replica.previous"
grep -Eq '^ds replica: master held in snapshot mode: [0-9]+\.[0-9]{3} s; total time [0-9]+\.[0-9]{2} s$' "$v" ||
	{ cat "$v" >&2; fail "-v does not report hold time and total time"; }
# the figure is the master's own (relayed as "master: ...")
held=$(sed -n 's/^ds replica: master held in snapshot mode: \([0-9.]*\) s.*/\1/p' "$v")
assert_contains "$v" "ds replica: master: Transferring increment...."
assert_contains "$v" "snapshot mode held $held s)"
assert_contains "$v" "ds replica: Replica complete"
newest=$(ds log -n 1 "$M" | awk 'NR == 1 { print $1 }')
assert_contains "$v" "replica at $newest"
same_A "$M" "$R"

# ---- the progress line: a terminal and a transfer over a second
must_pass ds gen -q --objects 30 --transactions 6 --per-txn 5 --seed 5 "$M"
cat >"$SCRATCH/slow-master" <<EOF
#!/bin/sh
# a master that pauses 2 s after the first 64 KiB of its answer
"$DS_BIN" replica + "$M" >"$SCRATCH/answer.tar" || exit \$?
head -c 65536 "$SCRATCH/answer.tar"
sleep 2
tail -c +65537 "$SCRATCH/answer.tar"
EOF
chmod +x "$SCRATCH/slow-master"
cp -a "$R" "$SCRATCH/r-tty"
# not a terminal: no progress line
must_pass ds replica -e "$SCRATCH/slow-master" h:/ignored "$R"
assert_not_contains "$LAST_STDERR" "receiv"
assert_contains "$LAST_STDERR" "Replica complete"
same_A "$M" "$R"
# on a terminal (script gives the command a pty; its output is ours)
echo "+ script -qc 'ds replica -e slow-master h:/ignored r-tty'" >&2
script -qec "'$DS_BIN' replica -e '$SCRATCH/slow-master' h:/ignored '$SCRATCH/r-tty'" \
	/dev/null >"$SCRATCH/tty.out" 2>&1 || fail "ds replica on a pty failed"
tr '\r' '\n' <"$SCRATCH/tty.out" >"$SCRATCH/tty.lines"
assert_contains "$SCRATCH/tty.lines" "ds replica: receiving "
grep -Eq '^ds replica: received [0-9.]+ MiB in [0-9.]+ s' "$SCRATCH/tty.lines" ||
	{ cat "$SCRATCH/tty.lines" >&2; fail "no final progress line on the tty"; }
assert_contains "$SCRATCH/tty.lines" "Replica complete"
same_A "$M" "$SCRATCH/r-tty"
# -q on a terminal: still nothing
must_pass ds gen -q --objects 30 --transactions 6 --per-txn 5 --seed 6 "$M"
script -qec "'$DS_BIN' replica -q -e '$SCRATCH/slow-master' h:/ignored '$SCRATCH/r-tty'" \
	/dev/null >"$SCRATCH/tty.out" 2>&1 || fail "ds replica -q on a pty failed"
assert_eq 0 "$(tr -d '\r\n' <"$SCRATCH/tty.out" | wc -c)" "bytes shown by -q on a tty"
same_A "$M" "$SCRATCH/r-tty"

# ---- --timeout: a master that hangs without closing its output
must_pass ds replica -q "$M" "$R"
must_pass ds gen -q --objects 5 --transactions 3 --per-txn 2 --seed 7 "$M"
before=$(state "$R")
printf '#!/bin/sh\n# says nothing, closes nothing\nexec sleep 60\n' >"$SCRATCH/hung-master"
chmod +x "$SCRATCH/hung-master"
start=$(date +%s)
must_fail 3 ds replica -q --timeout 2 -e "$SCRATCH/hung-master" h:/x "$R"
took=$(($(date +%s) - start))
[ "$took" -ge 2 ] && [ "$took" -le 8 ] || fail "--timeout 2 took $took s"
assert_contains "$LAST_STDERR" "sent nothing for 2 s"
assert_contains "$LAST_STDERR" "try again later"
assert_eq "$before" "$(state "$R")" "replica after a timeout"
no_spool "$R"
# a master that sends part of its answer and then hangs
cat >"$SCRATCH/stuck-master" <<EOF
#!/bin/sh
"$DS_BIN" replica -q + "$M" >"$SCRATCH/answer2.tar" || exit \$?
head -c 2048 "$SCRATCH/answer2.tar"
exec sleep 60
EOF
chmod +x "$SCRATCH/stuck-master"
must_fail 3 ds replica --timeout 2 -e "$SCRATCH/stuck-master" h:/x "$R"
assert_contains "$LAST_STDERR" "sent nothing for 2 s"
assert_eq "$before" "$(state "$R")" "replica after a stream that stalled"
no_spool "$R"
# bad values are usage errors
must_fail 2 ds replica --timeout 0 "$M" "$R"
must_fail 2 ds replica --timeout soon "$M" "$R"
# a master operand with an empty part: user, host or directory
for bad in "@dshost:$M" "dshost:" ":$M" "ds@:$M"; do
	must_fail 2 ds replica "$bad" "$R"
	assert_contains "$LAST_STDERR" "bad master \"$bad\": expected [user@]HOST:DIR"
done
# the same master, not hung: the increment arrives
must_pass ds replica -q --timeout 30 "$M" "$R"
same_A "$M" "$R"

# ---- an increment whose x.oid is below the replica's
# oids allocated on the replica (as if a client wrote to it) put its x.oid
# above the master's; the master then commits: refused, needs a human
must_pass ds new-oid -q "$R" 500
must_pass ds gen -q --objects 5 --transactions 3 --per-txn 2 --seed 8 "$M"
before=$(state "$R")
must_fail 1 ds replica "$M" "$R"
assert_contains "$LAST_STDERR" "x.oid"
assert_contains "$LAST_STDERR" "is lower than the replica's"
assert_eq "$before" "$(state "$R")" "replica after an x.oid refusal"
no_spool "$R"
# -q does not hide it
must_fail 1 ds replica -q "$M" "$R"
assert_contains "$LAST_STDERR" "is lower than the replica's"
