#!/bin/bash
# ds commit and ds undo refuse to extend a broken history: x.serial naming
# a transaction whose file is missing or not a transaction file, or a tid
# more than a minute in the future. Exit 1, the message sends the user to
# ds check, and the storage is left byte for byte as it was.
. "$(dirname "$0")/lib.sh" || exit 1

S=$SCRATCH/s
must_pass ds mkds "$S"
printf 'one' >"$SCRATCH/p1"
printf 'two' >"$SCRATCH/p2"
must_pass ds commit "$S" new="$SCRATCH/p1"
must_pass ds commit "$S" new="$SCRATCH/p2"
T2=$(head -n1 "$LAST_STDOUT")
must_pass ds log -q "$S"
# bushy layout: t012345.6789ABCDEF -> A/t0/12/345/6789ABCDEF
tfile=$S/A/t${T2:0:1}/${T2:1:2}/${T2:3:3}/${T2:6:10}
[ -f "$tfile" ] || fail "no transaction file $tfile"

# The storage's files, but the pid a writing open leaves in misc/lock and
# misc/sublock (as the original does; it names the last holder only).
state() {
	tree_md5 "$S" | grep -v -e ' ./misc/lock ' -e ' ./misc/sublock '
}

# refused, exit 1, nothing changed
refused() {
	local what=$1
	state >"$SCRATCH/before"
	must_fail 1 ds commit "$S" new="$SCRATCH/p1"
	assert_contains "$LAST_STDERR" "ds commit: commit to $S refused: the history is broken"
	assert_contains "$LAST_STDERR" "ds check $S"
	assert_contains "$LAST_STDERR" "$what"
	state >"$SCRATCH/after"
	cmp -s "$SCRATCH/before" "$SCRATCH/after" ||
		fail "commit changed the storage ($what)"
	must_fail 1 ds undo "$S" "$T2"
	assert_contains "$LAST_STDERR" "ds undo: commit to $S refused: the history is broken"
	state >"$SCRATCH/after"
	cmp -s "$SCRATCH/before" "$SCRATCH/after" ||
		fail "undo changed the storage ($what)"
	# ds check says why
	must_fail 1 ds check "$S"
}

# 1. x.serial's transaction file is missing
mv "$tfile" "$SCRATCH/t.saved"
refused "whose file is missing"
# 2. ... or is not a transaction file
printf 'garbage' >"$tfile"
refused "whose file is not a valid transaction file"
mv "$SCRATCH/t.saved" "$tfile"
must_pass ds check "$S"

# 3. x.serial names a tid an hour in the future (its file is valid: the
# storage was written by a host whose clock ran ahead)
F=$SCRATCH/future
must_pass ds mkds "$F"
must_pass ds commit "$F" new="$SCRATCH/p1"
S=$F
xserial=$S/A/x/serial
# write x.serial by hand: minutes since 1900 in the high word
hi=$(python3 -c "
import calendar, time
t = time.gmtime(time.time() + 3600)
m = ((((t.tm_year-1900)*12+t.tm_mon-1)*31+t.tm_mday-1)*24+t.tm_hour)*60+t.tm_min
print('%08X00000000' % m)")
printf '%s' "$hi" | xxd -r -p >"$xserial"
refused "in the future"

# a tid within the tolerance (now) is fine: the storage commits again
must_pass ds mkds "$SCRATCH/ok"
must_pass ds commit "$SCRATCH/ok" new="$SCRATCH/p1"
must_pass ds commit "$SCRATCH/ok" new="$SCRATCH/p2"
must_pass ds check "$SCRATCH/ok"
