#!/bin/bash
# The ds command line behaves the same way in every subcommand: getopt's
# own errors carry the "ds SUBCOMMAND:" prefix, options are accepted after
# the operands as GNU tools accept them, no message repeats its prefix, and
# the same option means the same thing everywhere (-n 0 in log and history).
. "$(dirname "$0")/lib.sh" || exit 1

# every subcommand `ds --help` lists
must_pass ds --help
subs=$(sed -n '/^Subcommands:/,/^$/p' "$LAST_STDOUT" | awk 'NF > 1 { print $1 }')
[ "$(echo "$subs" | wc -w)" -ge 14 ] || fail "ds --help lists too few: $subs"

# getopt's messages (unknown option, missing argument) name the subcommand
# as every other message does: "ds SUB: ..."
for sub in $subs; do
	must_fail 2 ds "$sub" --no-such-option
	first=$(head -n 1 "$LAST_STDERR")
	case $first in
	"ds $sub: "*"no-such-option"*) ;;
	*) fail "ds $sub --no-such-option: first line '$first'" ;;
	esac
	must_fail 2 ds "$sub" -Z
	first=$(head -n 1 "$LAST_STDERR")
	case $first in
	"ds $sub: "*"'Z'"*) ;;
	*) fail "ds $sub -Z: first line '$first'" ;;
	esac
done
must_fail 2 ds log -n
assert_contains "$LAST_STDERR" "ds log: option requires an argument -- 'n'"

# Options after operands, as GNU tools accept them (getopt_long permutes;
# only ds snapshot stops at COMMAND, whose options are its own).
D=$SCRATCH/st
must_pass ds mkds "$D" -q
assert_eq "" "$(cat "$LAST_STDOUT" "$LAST_STDERR")" "mkds DIR -q output"
printf 'pickle one' >"$SCRATCH/p1"
must_pass ds commit "$D" -u alice new="$SCRATCH/p1" -m "first one" -q
assert_eq "" "$(cat "$LAST_STDOUT")" "commit ... -q output"
must_pass ds log "$D" --json -n 1
tid1=$(jq -r '.transactions[0].tid' "$LAST_STDOUT")
assert_eq alice "$(jq -r '.transactions[0].user' "$LAST_STDOUT")" "user of -u after DIR"
assert_eq "first one" "$(jq -r '.transactions[0].description' "$LAST_STDOUT")" "-m after the operands"
assert_eq 1 "$(jq -r '.count' "$LAST_STDOUT")" "log DIR --json -n 1: count"
must_pass ds new-oid "$D" 2 -q
assert_eq "" "$(cat "$LAST_STDOUT")" "new-oid DIR N -q output"
oid=0000000000000001
printf 'pickle two' >"$SCRATCH/p2"
must_pass ds commit "$D" $oid="$SCRATCH/p2" -m second
tid2=$(head -n 1 "$LAST_STDOUT")
must_pass ds history "$D" $oid --json -n 1
assert_eq 1 "$(jq 'length' "$LAST_STDOUT")" "history DIR OID --json -n 1"
must_pass ds cat "$D" $oid --serial "$tid1" -v
assert_eq "pickle one" "$(cat "$LAST_STDOUT")" "cat DIR OID --serial TID"
must_pass ds undo "$D" "$tid2" -m "undone" -q
must_pass ds log "$D" --json -n 1
assert_eq undone "$(jq -r '.transactions[0].description' "$LAST_STDOUT")" "undo DIR TID -m"
must_pass ds whatsnew "$tid1" --storage "$D" -q
assert_contains "$LAST_STDOUT" "A/"
must_pass ds dump "$D/A/x/serial" --json
jq -e . "$LAST_STDOUT" >/dev/null || fail "dump FILE --json is not JSON"
must_pass ds check "$D" -q
must_pass ds replica "$D" "$SCRATCH/rep" --init -q
assert_eq "" "$(cat "$LAST_STDOUT" "$LAST_STDERR")" "replica ... --init -q output"
must_pass ds check --compare "$D" "$SCRATCH/rep" -q
must_pass ds gen "$SCRATCH/g" --objects 4 --transactions 2 --per-txn 2 -q --nosync
must_pass ds pack "$SCRATCH/g" -q
assert_eq "" "$(cat "$LAST_STDOUT")" "pack DIR -q output"
# "--" ends the options: an operand that begins with '-'
must_fail 1 ds dump -- -no-such-file
assert_contains "$LAST_STDERR" "-no-such-file"
# ds snapshot passes COMMAND's options to COMMAND
must_pass ds snapshot --storage "$D" ls -d "$D"
assert_contains "$LAST_STDOUT" "$D"

# -n 0 means the same in log and history: nothing shown (and the storage
# or the object must still exist); -n -1 is refused by both
must_pass ds log -n 0 --json "$D"
assert_eq 0 "$(jq -r '.count' "$LAST_STDOUT")" "log -n 0: count"
must_pass ds history -n 0 --json "$D" $oid
assert_eq 0 "$(jq 'length' "$LAST_STDOUT")" "history -n 0: revisions"
must_pass ds history -n 0 "$D" $oid
assert_eq "" "$(cat "$LAST_STDOUT")" "history -n 0 text"
must_fail 1 ds history -n 0 "$D" 00000000000000FF
for sub in log history; do
	must_fail 2 ds $sub -n -1 "$D" $oid
	assert_contains "$LAST_STDERR" "ds $sub: -n wants a count"
done

# ds gen: the default --per-txn (5) is clamped to a small --objects; a
# --per-txn given larger than --objects is still refused
must_pass ds gen --objects 2 --nosync -q "$SCRATCH/g2"
must_pass ds log --json "$SCRATCH/g2"
assert_eq 2 "$(jq -r '.transactions[-1].objects' "$LAST_STDOUT")" "objects of gen's first transaction"
must_fail 2 ds gen --objects 2 --per-txn 3 --nosync "$SCRATCH/g3"
assert_contains "$LAST_STDERR" "ds gen: --per-txn must be 1 to --objects"

# No doubled prefix: the library names the operation at the start of some
# messages ("snapshot: resolve DIR"), which must not follow the same
# subcommand's own prefix ("ds snapshot: snapshot: ...").
no_doubled() {
	if grep -E '^ds ([a-z-]+): \1: ' "$LAST_STDERR" >&2; then
		fail "doubled prefix in: $*"
	fi
}
must_fail 1 ds snapshot --storage "$SCRATCH/none" true
assert_contains "$LAST_STDERR" "ds snapshot: resolve $SCRATCH/none:"
no_doubled snapshot
# under another subcommand the operation's name stays
must_fail 1 ds check "$SCRATCH/none"
assert_contains "$LAST_STDERR" "ds check: snapshot: resolve $SCRATCH/none:"
must_fail 1 ds whatsnew --storage "$SCRATCH/none" "$tid1"
no_doubled whatsnew
must_fail 1 ds check --compare "$D" "$SCRATCH/none"
no_doubled check --compare
must_fail 1 ds mkds "$D"
no_doubled mkds
must_fail 1 ds undo "$D" 0000000000000001
no_doubled undo
must_fail 1 ds history "$D" 00000000000000FF
no_doubled history
must_fail 1 ds pack "$SCRATCH/none"
no_doubled pack
must_fail 1 ds replica "$SCRATCH/none" "$SCRATCH/rep"
no_doubled replica
must_fail 1 ds replica "$D" "$SCRATCH/none"
no_doubled replica

# A master side's refusal reads "master side: REASON (exit N)", without
# the Python exception class the wire protocol carries ("ReplicaError:")
must_pass ds mkds -q "$SCRATCH/other"
must_fail 1 ds replica "$SCRATCH/other" "$SCRATCH/rep"
assert_contains "$LAST_STDERR" "ds replica: master side: different identity (exit 1)"
assert_not_contains "$LAST_STDERR" "Error:"
assert_not_contains "$LAST_STDERR" "Error from remote replica"

# ds replica -v (and ds snapshot -v): config/snapshot.conf is optional;
# without it the default methods are used, and that is not a failure
[ ! -e "$D/config/snapshot.conf" ] || fail "test storage has a snapshot.conf"
must_pass ds replica -v "$D" "$SCRATCH/rep"
assert_contains "$LAST_STDERR" "master: no $(realpath "$D")/config/snapshot.conf: trying the control socket, then direct access"
assert_not_contains "$LAST_STDERR" "failed"
assert_not_contains "$LAST_STDERR" "line 1 of"
must_pass ds snapshot -v --storage "$D" true
assert_contains "$LAST_STDERR" "snapshot.conf: trying the control socket"
assert_not_contains "$LAST_STDERR" "failed"

# --wait SECONDS for commit, new-oid and check: a storage in use (here held
# by a ds snapshot) is retried until it is free; without --wait, or when
# the wait runs out, exit 3 as before. No timing is asserted: each waiter
# is seen waiting (its -v message) before the storage is let go.
W=$SCRATCH/w
must_pass ds mkds -q "$W"
rm -f "$SCRATCH/held" "$SCRATCH/release"
"$DS_BIN" snapshot -q --storage "$W" sh -c \
	'touch "$0/held"; i=0; while [ ! -e "$0/release" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done' \
	"$SCRATCH" &
holder=$!
until_file() {   # FILE [TEXT]: wait (at most 5 minutes) until FILE exists (and has TEXT)
	local i=0
	while [ $i -lt 3000 ]; do
		if [ -e "$1" ] && { [ -z "${2-}" ] || grep -qF -- "$2" "$1"; }; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	fail "waited 5 minutes for $1 ${2-}"
}
until_file "$SCRATCH/held"
must_fail 3 ds commit "$W" new="$SCRATCH/p1"
must_fail 3 ds new-oid "$W"
must_fail 3 ds check -q "$W"
must_fail 3 ds commit --wait 1 "$W" new="$SCRATCH/p1"
assert_contains "$LAST_STDERR" "ds commit: open $W: storage is locked by another process"
must_fail 2 ds commit --wait soon "$W" new="$SCRATCH/p1"
assert_contains "$LAST_STDERR" "ds commit: --wait wants a number of seconds"
"$DS_BIN" commit -v --wait 300 "$W" new="$SCRATCH/p1" >"$SCRATCH/c.out" 2>"$SCRATCH/c.err" &
cpid=$!
"$DS_BIN" new-oid -v --wait 300 "$W" >"$SCRATCH/n.out" 2>"$SCRATCH/n.err" &
npid=$!
"$DS_BIN" check -v -v --wait 300 "$W" >"$SCRATCH/k.out" 2>"$SCRATCH/k.err" &
kpid=$!
until_file "$SCRATCH/c.err" "waiting up to 300 s"
until_file "$SCRATCH/n.err" "waiting up to 300 s"
until_file "$SCRATCH/k.err" "Retrying snapshot"
touch "$SCRATCH/release"
wait $holder || fail "the holding ds snapshot failed"
wait $cpid || fail "commit --wait: exit $?: $(cat "$SCRATCH/c.err")"
wait $npid || fail "new-oid --wait: exit $?: $(cat "$SCRATCH/n.err")"
wait $kpid || fail "check --wait: exit $?: $(cat "$SCRATCH/k.err")"
grep -Eq '^[0-9A-F]{16}$' "$SCRATCH/n.out" || fail "new-oid --wait printed: $(cat "$SCRATCH/n.out")"
must_pass ds log --json "$W"
assert_eq "$(head -n 1 "$SCRATCH/c.out")" "$(jq -r '.transactions[0].tid' "$LAST_STDOUT")" "tid of commit --wait"

# --keep-previous / --no-keep-previous: misc/replica.previous is kept by
# default (as the original), not at all with --no-keep-previous (also
# after --init, where it is the whole storage), and an older one goes too
K=$SCRATCH/keep
must_pass ds replica -q --init --no-keep-previous "$D" "$K"
[ ! -e "$K/misc/replica.previous" ] || fail "--init --no-keep-previous kept misc/replica.previous"
assert_eq "" "$(ls -A "$K/journal")" "journal/ after --no-keep-previous"
must_pass ds check -q --compare "$D" "$K"
must_pass ds commit -q "$D" new="$SCRATCH/p1"
must_pass ds replica -q "$D" "$K"
[ -s "$K/misc/replica.previous" ] || fail "the default did not keep misc/replica.previous"
must_pass ds commit -q "$D" new="$SCRATCH/p2"
must_pass ds replica -q "$D" "$K" --no-keep-previous
[ ! -e "$K/misc/replica.previous" ] || fail "--no-keep-previous left the older misc/replica.previous"
assert_eq "" "$(ls -A "$K/journal")" "journal/ after --no-keep-previous"
must_pass ds check -q "$K"
must_pass ds check -q --compare "$D" "$K"
must_pass ds commit -q "$D" new="$SCRATCH/p2"
must_pass ds replica -q --no-keep-previous --keep-previous "$D" "$K"
[ -s "$K/misc/replica.previous" ] || fail "--keep-previous (the last one given) did not keep it"

# ds check summarises a cascade: one missing transaction file in the
# middle of the history is one problem; the older transaction files and
# revisions it cuts off are counted in one line (listed one by one at -v)
G=$SCRATCH/cascade
must_pass ds gen --nosync -q --objects 40 --transactions 20 --per-txn 4 "$G"
must_pass ds log --json "$G"
mid=$(jq -r '.transactions[10].tid' "$LAST_STDOUT")
older_txns=$(jq '.transactions | length - 11' "$LAST_STDOUT")
mid_file=$(ds dump --json $(find "$G/A" -type f -path "$G/A/t*") 2>/dev/null |
	jq -r --arg t "$mid" 'select(.tid == $t and .kind == "transaction") | .file' | head -n 1)
[ -f "$mid_file" ] || fail "transaction file of $mid not found ($mid_file)"
rm "$mid_file"
must_fail 1 ds check "$G"
assert_contains "$LAST_STDERR" "ds check: broken history: transaction file missing: A/"
assert_contains "$LAST_STDERR" "consequences of the broken history at A/"
assert_contains "$LAST_STDERR" ": $older_txns older transaction files and "
assert_contains "$LAST_STDERR" "1 problem found"
[ "$(wc -l <"$LAST_STDERR")" -le 4 ] || fail "ds check printed $(wc -l <"$LAST_STDERR") lines for one missing file"
grep -Eq '^ +1 problems$' "$LAST_STDOUT" || fail "problems: $(grep problems "$LAST_STDOUT")"
cut=$(awk '/files cut off by a broken history/ { print $1 }' "$LAST_STDOUT")
[ "${cut:-0}" -gt "$older_txns" ] || fail "cut off: '$cut'"
must_fail 1 ds check -v "$G"
assert_eq "$cut" "$(grep -c 'behind the broken history at A/' "$LAST_STDERR")" "files listed at -v"
