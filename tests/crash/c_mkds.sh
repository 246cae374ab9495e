#!/bin/bash
# ds mkds killed, or failing with ENOSPC/EIO, at each of its durable I/O
# calls. mkds is all-or-nothing when it can clean up (an injected error
# once: nothing is left). A kill, or an error that persists through the
# cleanup (sticky), may leave debris: then every later ds command refuses it
# with a message naming it instead of misreading it (as a storage, a
# replica or a master), mkds refuses to overwrite it, and after it is
# removed mkds succeeds. A kill after the last file was written leaves a
# complete storage: byte-identical, but for its random identity, to a clean
# mkds's (which passes ds check).
. "$(dirname "$0")/lib.sh"

CRASH_SUB=mkds
CRASH_DESC="ds mkds \$RUN/s"
CRASH_KIND_BUDGET=1000   # about 30 calls: every one (errors once too)
CRASH_STICKY_BUDGET=6
CRASH_POWERLOSS=1          # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=12

# The reference layout: a clean mkds, with the random identity masked.
layout() {
	tree_md5 "$1" | sed -E 's#^(f [0-7]+ \./config/identity) [0-9a-f]{32}$#\1 IDENTITY#'
}
REF=$SCRATCH/layout-ref
must_pass ds mkds "$SCRATCH/refstore"
layout "$SCRATCH/refstore" >"$REF"
must_pass ds check -q "$SCRATCH/refstore"
grep -q '^f 644 ./config/identity IDENTITY$' "$REF" ||
	fail "reference layout: config/identity not masked: $(cat "$REF")"
GOOD=$SCRATCH/refstore

crash_setup() { :; }
crash_cmd() { "$DS_BIN" mkds "$1/s"; }

# The tree without the lock files a refusing command may create (empty,
# harmless: flock needs a file).
unlocked_tree() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' || true
}

identity_ok() {
	grep -qE '^[0-9a-f]{32}$' "$1/config/identity" 2>/dev/null &&
		[ "$(wc -c <"$1/config/identity")" -eq 32 ]
}

# A complete storage: exactly the reference layout and a valid identity.
complete() {
	layout "$1" | cmp -s - "$REF" && identity_ok "$1"
}

# refused SUB ARGS...: ds SUB must exit non-zero (not by a signal) with a
# "ds SUB: " line naming the debris directory $D.
refused() {
	local sub=$1 rc=0
	shift
	"$DS_BIN" "$sub" "$@" >"$LAST_STDOUT" 2>"$LAST_STDERR" </dev/null || rc=$?
	[ "$rc" -ne 0 ] || fail "ds $sub $* accepted debris $D"
	[ "$rc" -lt 128 ] || fail "ds $sub $* died by signal $((rc - 128))"
	[ "$rc" -ne 2 ] || fail "ds $sub $* called the debris a usage error"
	grep "^ds $sub: " "$LAST_STDERR" | grep -qF "$D" ||
		fail "ds $sub $*: no 'ds $sub: ... $D ...' message:" \
		     "$(head -c 600 "$LAST_STDERR")"
}

# Debris of the same layout was already shown refused by every command
# (a kill and a sticky error at the same call leave the same debris):
# remember the verdicts by layout, to keep the suite's time bounded.
DEBRIS_SEEN=$SCRATCH/debris-seen
: >"$DEBRIS_SEEN"

debris_refused() {
	local d=$1 key
	D=$d
	key=$({ layout "$d" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' || true
	        identity_ok "$d" && echo identity-ok || true; } | md5sum | cut -c1-32)
	if grep -qx "$key" "$DEBRIS_SEEN"; then
		return 0
	fi
	printf 'x' >"$SCRATCH/pickle"
	unlocked_tree "$d" >"$SCRATCH/debris.before"
	refused log "$d"
	refused check "$d"
	refused commit "$d" new="$SCRATCH/pickle"
	refused new-oid "$d"
	refused cat "$d" 0000000000000000
	refused history "$d" 0000000000000000
	refused undo "$d" 0000000000000001
	refused whatsnew --storage "$d" 0000000000000000
	refused snapshot --storage "$d" -- true
	# as a replica of a good storage, and as a master
	refused replica -q "$GOOD" "$d"
	rm -rf "$SCRATCH/newreplica"
	refused replica -q --init "$d" "$SCRATCH/newreplica"
	[ ! -e "$SCRATCH/newreplica" ] ||
		fail "ds replica --init from debris $d left $SCRATCH/newreplica"
	# refusing it did not turn it into something else
	unlocked_tree "$d" >"$SCRATCH/debris.after"
	diff "$SCRATCH/debris.before" "$SCRATCH/debris.after" >&2 ||
		fail "refusing debris $d changed it"
	echo "$key" >>"$DEBRIS_SEEN"
}

# (ds check passed on the reference; a storage byte-identical to it but
# for the identity needs no second opinion)
crash_check_done() {
	local s=$1/s
	[ -d "$s" ] || fail "mkds succeeded but made no $s"
	complete "$s" || { layout "$s" | diff "$REF" - >&2;
		fail "mkds succeeded but $s is not the reference layout"; }
	crash_outcome complete
}

# nothing, a complete storage, or debris that every command refuses
killed_or_stuck() {
	local s=$1/s
	if [ ! -e "$s" ]; then
		crash_outcome none
	elif complete "$s"; then
		crash_outcome complete
	else
		debris_refused "$s"
		crash_outcome debris
	fi
}

crash_check_killed() { killed_or_stuck "$1"; }

crash_check_failed() {
	local s=$1/s
	case $CRASH_KIND in
	*-sticky)
		# the cleanup failed too: what is left must be refused
		killed_or_stuck "$1" ;;
	*)
		# one failed call: the cleanup removed everything
		[ ! -e "$s" ] || fail "a failed mkds left $s: $(cd "$s" && find . | sort | tr '\n' ' ')"
		crash_outcome none ;;
	esac
}

crash_rerun() {
	local s=$1/s
	if [ -e "$s" ]; then
		must_fail 1 ds mkds "$s"
		assert_contains "$LAST_STDERR" "already exists"
		rm -rf "$s"
	fi
	must_pass ds mkds "$s"
	crash_check_done "$1"
}

crash_enumerate
