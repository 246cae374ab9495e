# lib.sh - the crash-point and error-injection driver, sourced by every
# scenario tests/crash/c_<scenario>.sh (registered as ctest crash/c_<...>
# when the build has -DDS_FAULT_INJECTION=ON; see tests/README.md).
#
# The idea is SQLite's: the library's durable I/O layer (src/io.c) numbers
# its calls (open for write, write, fsync, rename, mkdir, unlink, rmdir,
# flock, ftruncate, syncfs); the fault build can kill the process at call N
# or make call N (or every call from N on) fail with ENOSPC or EIO. For a
# command C and its invariants, this driver
#   1. runs C once on a fresh state with DS_FAULT_COUNT_FILE to learn the
#      number N of I/O calls, and checks the clean result;
#   2. for every call index i (or a sample when N is large), on a fresh
#      state: kills C at call i, then checks the invariants (the storage or
#      replica is at a transaction boundary: old state or new, nothing
#      half-written, the next open recovers) and that a rerun completes;
#   3. the same with ENOSPC and EIO at call i, once and from i on
#      ("sticky"): C must exit non-zero (not by a signal) with a message
#      "ds <sub>: ..." naming the operation's errno text and a path, the
#      state must be consistent, and a rerun without the fault succeeds;
#   4. where sampled kill points disagree about the outcome (old state at
#      one, new state at the next), bisects between them to find the exact
#      call where the outcome changes (the commit point) and tests it;
#   5. prints "crash points: N, kills: K, enospc: E, eio: I, ..." and either
#      "all invariants held" or every finding with its exact reproduction
#      (and, with gdb installed, the name of the call: crash_name_call).
# A sanitizer report in the command's stderr is a finding too (for runs
# against a -DDS_SANITIZE=ON -DDS_FAULT_INJECTION=ON build).
# A finding does not stop the enumeration: all of them are listed at the
# end and the scenario fails.
#
# A scenario sets these and defines these functions, then calls
# crash_enumerate:
#   CRASH_SUB          the ds subcommand whose messages are checked
#   CRASH_DESC         the command, for reproduction lines (with $RUN)
#   CRASH_ENV_PREFIX   prefix of the fault variables: DS_ (default) for the
#                      process under test, or e.g. DS_MASTER_ when a fake
#                      ssh (crash_fake_ssh) passes them to the master only
#   CRASH_KILL_CHILD   1 when the faults go to a child of the command (the
#                      master side): a kill is then not the command's death
#   CRASH_KIND_BUDGET  default sample size for kills (DS_CRASH_BUDGET
#                      overrides every budget)
#   CRASH_ERROR_BUDGET  the same for an error once (default: the kills')
#   CRASH_STICKY_BUDGET the same for a sticky error (default: the kills')
#   CRASH_POWERLOSS    1: the simulated power loss too (kind powerloss,
#                      see crash_powerloss below); CRASH_POWERLOSS_BUDGET
#                      (crash points), CRASH_POWERLOSS_VARIANTS (per point)
#   crash_setup DIR    make the starting state in the empty directory DIR
#   crash_cmd DIR      run the command under test on DIR
#   crash_check_killed DIR   the invariants after a kill; may call
#                      crash_outcome WORD (e.g. old/new) to classify
#   crash_check_failed DIR   the invariants after an injected error
#   crash_check_done DIR     the invariants after a clean run
#   crash_rerun DIR    the rerun without faults (must succeed) and its
#                      checks
# Each check runs in a subshell with set -e; `fail` (e2e lib) records a
# finding. Inside a check, $CRASH_OUT/$CRASH_ERR are the command's output
# and $CRASH_AT/$CRASH_KIND what was injected.
#
# Environment:
#   DS_CRASH_ALL=1       enumerate every call index (no sampling)
#   DS_CRASH_BUDGET=N    sample at most N indices per fault kind
#   DS_CRASH_OFFSET=K    shift the sample (0 = indices 1, 1+k, 1+2k, ...)
#   DS_CRASH_KINDS="kill enospc eio enospc-sticky eio-sticky powerloss"
#                        (default; powerloss only where CRASH_POWERLOSS=1)
#   DS_CRASH_PL_VARIANTS=N  power-loss variants per crash point (default
#                        4; 0: every distinct one)
#   DS_CRASH_TMPDIR      scratch location (default /dev/shm when writable:
#                        a kill does not need a disk; nor does the simulated
#                        power loss, which rebuilds states from a trace)
# and ctest's DS_BIN, DS_FIXTURE_DIR, DS_MANIFEST_DIR (see tests/e2e/lib.sh,
# whose helpers - must_pass, must_fail, assert_*, fail, fixture_copy,
# tree_md5 - this library reuses).

if [ -n "${DS_CRASH_TMPDIR:-}" ]; then
	export TMPDIR=$DS_CRASH_TMPDIR
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi
# shellcheck source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

CRASH_SUB=
CRASH_DESC=
CRASH_ENV_PREFIX=DS_
CRASH_KILL_CHILD=0
CRASH_KIND_BUDGET=60
CRASH_ERROR_BUDGET=
CRASH_STICKY_BUDGET=
CRASH_KINDS=${DS_CRASH_KINDS:-kill enospc eio enospc-sticky eio-sticky powerloss}
CRASH_POWERLOSS=0
CRASH_POWERLOSS_BUDGET=
CRASH_POWERLOSS_VARIANTS=${DS_CRASH_PL_VARIANTS:-4}
CRASH_PL_VARIANT=
CRASH_PL_REC=$SCRATCH/pl-rec
CRASH_PL_TRACE=$SCRATCH/pl-trace
CRASH_PL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/powerloss.py
CRASH_OUT=$SCRATCH/cmd.out
CRASH_ERR=$SCRATCH/cmd.err
CRASH_AT=0
CRASH_KIND=none
CRASH_OUTCOME_FILE=$SCRATCH/outcome
CRASH_FINDINGS=$SCRATCH/findings
CRASH_LAST=-
: >"$CRASH_FINDINGS"

declare -A crash_n         # per kind: points run
declare -A crash_absorbed  # per kind: list of indices where C still succeeded
declare -A crash_outcomes  # "kind outcome" -> count

# crash_outcome WORD: classify the state a check found (old, new, ...).
crash_outcome() {
	echo "$1" >"$CRASH_OUTCOME_FILE"
}

# The "ssh" for master-side scenarios: `ds replica -e "$(crash_fake_ssh)"
# h:DIR REPLICA` runs the master side locally with sh, as sshd would, with
# the DS_FAULT_* variables removed and DS_MASTER_FAULT_* passed on as its
# DS_FAULT_* (so a fault hits one side only).
crash_fake_ssh() {
	local f=$SCRATCH/fake-ssh
	if [ ! -x "$f" ]; then
		cat >"$f" <<-'EOF'
		#!/bin/sh
		# ssh [-l USER] HOST COMMAND: run COMMAND here
		while [ $# -gt 1 ]; do shift; done
		unset DS_FAULT_AT DS_FAULT_KIND DS_FAULT_STICKY DS_FAULT_COUNT_FILE
		unset DS_IO_TRACE DS_IO_TRACE_ROOT
		[ -n "${DS_MASTER_IO_TRACE:-}" ] &&
			export DS_IO_TRACE="$DS_MASTER_IO_TRACE"
		[ -n "${DS_MASTER_IO_TRACE_ROOT:-}" ] &&
			export DS_IO_TRACE_ROOT="$DS_MASTER_IO_TRACE_ROOT"
		[ -n "${DS_MASTER_FAULT_AT:-}" ] &&
			export DS_FAULT_AT="$DS_MASTER_FAULT_AT"
		[ -n "${DS_MASTER_FAULT_KIND:-}" ] &&
			export DS_FAULT_KIND="$DS_MASTER_FAULT_KIND"
		[ -n "${DS_MASTER_FAULT_STICKY:-}" ] &&
			export DS_FAULT_STICKY="$DS_MASTER_FAULT_STICKY"
		[ -n "${DS_MASTER_FAULT_COUNT_FILE:-}" ] &&
			export DS_FAULT_COUNT_FILE="$DS_MASTER_FAULT_COUNT_FILE"
		exec sh -c "$1"
		EOF
		chmod 755 "$f"
	fi
	echo "$f"
}

# crash_sample N BUDGET: the call indices to try, one per line.
crash_sample() {
	local n=$1 budget=$2 k off i
	if [ "${DS_CRASH_ALL:-0}" = 1 ] || [ "$n" -le "$budget" ]; then
		seq 1 "$n"
		return
	fi
	k=$(( (n + budget - 1) / budget ))
	off=$(( ${DS_CRASH_OFFSET:-0} % k ))
	{
		seq $((1 + off)) "$k" "$n"
		# the first and last calls are where setup and commit live
		seq 1 3
		seq $((n - 2)) "$n"
	} | sort -n -u
}

# crash_name_call AT: which durable I/O call is call AT of the command,
# e.g. "ds_io_flock(.../misc/sublock) from ds_lock_release", found by
# running it under gdb with the kill fault at AT and a breakpoint on the
# kill(2) it makes. Empty without gdb, or when the fault variables go to a
# master side (CRASH_ENV_PREFIX other than DS_). Cached per index.
declare -A crash_call_names
crash_name_call() {
	local at=$1 dir=$SCRATCH/naming w=$SCRATCH/gdb-ds name
	if [ -n "${crash_call_names[$at]+x}" ]; then
		echo "${crash_call_names[$at]}"
		return 0
	fi
	name=
	if [ "$CRASH_ENV_PREFIX" = DS_ ] && command -v gdb >/dev/null 2>&1; then
		cat >"$w" <<-EOF
		#!/bin/sh
		exec gdb -q -batch -ex 'set pagination off' -ex 'set print repeats unlimited' \
		    -ex 'break kill if \$rsi == 9' -ex run -ex 'bt 8' -ex kill \
		    --args "$DS_BIN" "\$@" >"$SCRATCH/gdb.out" 2>&1 </dev/null
		EOF
		chmod 755 "$w"
		: >"$SCRATCH/gdb.out"
		crash_fresh "$dir"
		(
			export DS_FAULT_AT="$at" DS_FAULT_KIND=kill
			DS_BIN=$w
			crash_cmd "$dir"
		) >/dev/null 2>&1 </dev/null || true
		name=$(awk '
			/^#[0-9]+ / && found == 1 {
				for (i = 1; i <= NF; i++)
					if ($i == "in") { caller = $(i + 1); break }
				if (caller == "") caller = $2
				print call " from " caller; exit
			}
			/^#[0-9]+ .* ds_io_[a-z_]+ \(/ && found == 0 {
				match($0, /ds_io_[a-z_]+/)
				call = substr($0, RSTART, RLENGTH)
				if (match($0, /(path|dir|from)=0x[0-9a-f]+ "[^"]*"/)) {
					p = substr($0, RSTART, RLENGTH)
					sub(/^[a-z]+=0x[0-9a-f]+ "/, "", p)
					sub(/"$/, "", p)
					call = call "(" p ")"
				}
				found = 1
			}' "$SCRATCH/gdb.out")
		rm -rf "$dir"
	fi
	crash_call_names[$at]=$name
	echo "$name"
}

# Record a finding with its reproduction; the enumeration goes on.
crash_finding() {
	local what=$1 log=$2 sticky= call
	case $CRASH_KIND in
	*-sticky) sticky=" ${CRASH_ENV_PREFIX}FAULT_STICKY=1" ;;
	esac
	{
		echo "FINDING: $what"
		if [ "$CRASH_KIND" = powerloss ]; then
			echo "  reproduce: (trace of one clean run in $CRASH_PL_TRACE," \
			     "recorded with ${CRASH_ENV_PREFIX}IO_TRACE=$CRASH_PL_TRACE" \
			     "${CRASH_ENV_PREFIX}IO_TRACE_ROOT=$CRASH_PL_REC" \
			     "$CRASH_DESC, \$RUN=$CRASH_PL_REC)"
			echo "    python3 $CRASH_PL replay $CRASH_PL_TRACE $CRASH_AT" \
			     "$CRASH_PL_VARIANT OUT    # OUT is \$RUN after the power cut"
			call=$(crash_name_call "$CRASH_AT")
			[ -z "$call" ] || echo "  call $CRASH_AT is $call"
		elif [ "$CRASH_KIND" != none ]; then
			echo "  reproduce: ${CRASH_ENV_PREFIX}FAULT_AT=$CRASH_AT" \
			     "${CRASH_ENV_PREFIX}FAULT_KIND=${CRASH_KIND%-sticky}$sticky" \
			     "$CRASH_DESC"
			call=$(crash_name_call "$CRASH_AT")
			[ -z "$call" ] || echo "  call $CRASH_AT is $call"
		fi
		if [ "$CRASH_KIND" = powerloss ]; then
			echo "  (state kept in $SCRATCH/finding-$CRASH_KIND-$CRASH_AT-${CRASH_PL_VARIANT/:/},"
			echo "   after the checks and the rerun; the replay gives it as it was)"
		else
			echo "  (state kept in $SCRATCH/finding-$CRASH_KIND-$CRASH_AT)"
		fi
		if [ -s "$log" ]; then
			echo "  check output:"
			tail -n 15 "$log" | sed 's/^/    /'
		fi
		echo "  command stderr:"
		head -c 1500 "$CRASH_ERR" | sed 's/^/    /'
	} >>"$CRASH_FINDINGS"
}

# crash_check FUNCTION DIR: run a check in a subshell with set -e; a
# failure is a finding. Returns its status.
crash_check() {
	local fn=$1 dir=$2 log=$SCRATCH/check.log rc=0 tag what
	tag=$CRASH_KIND-$CRASH_AT
	what="$fn failed after $CRASH_KIND at call $CRASH_AT"
	if [ "$CRASH_KIND" = powerloss ]; then
		tag=$tag-${CRASH_PL_VARIANT/:/}
		what="$fn failed after a power loss before call $CRASH_AT ($CRASH_PL_VARIANT)"
	fi
	set +e
	(
		set -e
		LAST_STDOUT=$SCRATCH/.check.stdout
		LAST_STDERR=$SCRATCH/.check.stderr
		"$fn" "$dir"
	) >"$log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		crash_finding "$what" "$log"
		rm -rf "$SCRATCH/finding-$tag"
		cp -a "$dir" "$SCRATCH/finding-$tag" 2>/dev/null || true
	fi
	return "$rc"
}

# crash_fresh DIR: an empty DIR with the scenario's starting state.
crash_fresh() {
	rm -rf "$1"
	mkdir -p "$1"
	crash_setup "$1" >"$SCRATCH/setup.log" 2>&1 ||
		{ cat "$SCRATCH/setup.log" >&2; fail "crash_setup failed"; }
}

# crash_exec DIR KIND AT: run the command with the fault; sets CRASH_RC.
crash_exec() {
	local dir=$1 kind=$2 at=$3 p=$CRASH_ENV_PREFIX sticky=0
	case $kind in
	*-sticky) sticky=1 ;;
	esac
	set +e
	(
		export "${p}FAULT_AT=$at" "${p}FAULT_KIND=${kind%-sticky}" \
		       "${p}FAULT_STICKY=$sticky"
		crash_cmd "$dir"
	) >"$CRASH_OUT" 2>"$CRASH_ERR" </dev/null
	CRASH_RC=$?
	set -e
}

# The message an injected error must produce.
crash_errno_text() {
	case $1 in
	enospc*) echo "No space left on device" ;;
	eio*) echo "Input/output error" ;;
	esac
}

# crash_point KIND AT: one fault at one call index, with all the checks.
# Sets CRASH_LAST to the outcome (or "-").
crash_point() {
	local kind=$1 at=$2 dir=$SCRATCH/run outcome text
	CRASH_KIND=$kind
	CRASH_AT=$at
	rm -f "$CRASH_OUTCOME_FILE"
	crash_fresh "$dir"
	crash_exec "$dir" "$kind" "$at"
	crash_n[$kind]=$(( ${crash_n[$kind]:-0} + 1 ))
	if [ "$kind" = kill ] && [ "$CRASH_KILL_CHILD" = 1 ]; then
		# the killed process is the command's child: the command
		# itself must survive and report (or finish)
		if [ "$CRASH_RC" -ge 128 ]; then
			crash_finding "kill of the child at call $at: the command" \
			              "died by signal $((CRASH_RC - 128))" /dev/null
		else
			crash_check crash_check_killed "$dir" || true
		fi
	elif [ "$kind" = kill ]; then
		if [ "$CRASH_RC" -eq 0 ]; then
			# call $at was not reached: the run made fewer calls
			crash_absorbed[$kind]="${crash_absorbed[$kind]:-} $at"
			crash_check crash_check_done "$dir" || true
		elif [ "$CRASH_RC" -ne 137 ]; then
			crash_finding "kill at call $at: exit $CRASH_RC, expected" \
			              "137 (SIGKILL)" /dev/null
		else
			crash_check crash_check_killed "$dir" || true
		fi
	else
		text=$(crash_errno_text "$kind")
		if [ "$CRASH_RC" -eq 0 ]; then
			# the fault hit a call whose failure is tolerated
			# (best-effort cleanup); the result must be complete
			crash_absorbed[$kind]="${crash_absorbed[$kind]:-} $at"
			crash_check crash_check_done "$dir" || true
		elif [ "$CRASH_RC" -ge 128 ]; then
			crash_finding "$kind at call $at: killed by signal" \
			              "$((CRASH_RC - 128))" /dev/null
		elif ! grep -q "^ds $CRASH_SUB: .*/.*$text" "$CRASH_ERR"; then
			# (every path in the scenarios is absolute)
			crash_finding "$kind at call $at: exit $CRASH_RC without a" \
			              "message 'ds $CRASH_SUB: ... /PATH...: $text'" \
			              /dev/null
		else
			crash_check crash_check_failed "$dir" || true
		fi
	fi
	# in a sanitizer build, an error path that leaks or misbehaves
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
	        "$CRASH_ERR"; then
		crash_finding "$kind at call $at: sanitizer report" /dev/null
	fi
	outcome=-
	[ -s "$CRASH_OUTCOME_FILE" ] && outcome=$(cat "$CRASH_OUTCOME_FILE")
	crash_outcomes["$kind $outcome"]=$(( ${crash_outcomes["$kind $outcome"]:-0} + 1 ))
	# whatever happened, a rerun without faults completes
	CRASH_KIND=$kind
	CRASH_AT=$at
	crash_check crash_rerun "$dir" || true
	CRASH_LAST=$outcome
}

# Bisect between two kill points whose outcomes differ, to test the
# exact call where the outcome changes. Appends "index outcome" lines to
# the file $5.
crash_bisect() {
	local lo=$1 lo_out=$2 hi=$3 hi_out=$4 file=$5 mid out
	while [ $((hi - lo)) -gt 1 ]; do
		mid=$(( (lo + hi) / 2 ))
		crash_point kill "$mid"
		out=$CRASH_LAST
		echo "$mid $out" >>"$file"
		if [ "$out" = "$lo_out" ]; then
			lo=$mid
		else
			hi=$mid
			hi_out=$out
		fi
	done
}

# The "index outcome" lines of a kind: sampled, then bisected.
crash_points_of() {
	cat "$1"
	if [ -e "$1.refined" ]; then
		cat "$1.refined"
	fi
}

# ---- simulated power loss (kind "powerloss"; powerloss.py has the model)
# For a scenario with CRASH_POWERLOSS=1: record one clean run's durable I/O
# (src/io.c's trace: ${CRASH_ENV_PREFIX}IO_TRACE, so the master side's for
# DS_MASTER_), then for each sampled crash point K (the trace's call
# numbers, and "after the last call") and each distinct variant of what the
# disk may hold after a power cut right before call K (at most
# CRASH_POWERLOSS_VARIANTS: durable, all, then a dir: and a prefix: one),
# rebuild the state
# dir from the trace and run the scenario's checks on it:
# crash_check_powerloss DIR if the scenario defines one, else
# crash_check_killed DIR (a power cut is a kill that also loses the page
# cache), then crash_rerun DIR. $CRASH_OUT and $CRASH_ERR are empty (the
# command's output is not tied to a crash point), except after the last
# call: then the command had returned, and what it printed (a tid, oids)
# must have survived. A scenario may define crash_powerloss_prepare DIR to
# complete the replayed state (e.g. with the other machine's side,
# $CRASH_PL_REC is the recorded run).
declare -A crash_pl_variants   # variant kind -> replays
crash_pl_n=0
crash_pl_points=0
crash_pl_refined=0
crash_pl_pts=()

crash_powerloss() {
	local p=$CRASH_ENV_PREFIX rc pts npts budget idx last list
	local prev prev_out out lo hi mid
	local rec=$CRASH_PL_REC tr=$CRASH_PL_TRACE
	crash_fresh "$rec"
	rm -rf "$tr"
	mkdir -p "$tr"
	python3 "$CRASH_PL" init "$rec" "$tr" ||
		fail "powerloss.py init $rec $tr failed"
	set +e
	(
		export "${p}IO_TRACE=$tr" "${p}IO_TRACE_ROOT=$rec"
		crash_cmd "$rec"
	) >"$SCRATCH/pl.out" 2>"$SCRATCH/pl.err" </dev/null
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		cat "$SCRATCH/pl.err" >&2
		fail "the traced clean run failed with exit $rc: $CRASH_DESC"
	fi
	[ -s "$tr/trace" ] || fail "the traced run left no $tr/trace" \
		"(is ds built with -DDS_FAULT_INJECTION=ON?)"
	! grep -q '^ABORT' "$tr/trace" ||
		fail "the trace was aborted: $(grep '^ABORT' "$tr/trace")"
	pts=$(python3 "$CRASH_PL" points "$tr") ||
		fail "powerloss.py points $tr failed"
	npts=$(echo "$pts" | wc -l)
	last=$(echo "$pts" | tail -n 1)
	budget=${DS_CRASH_BUDGET:-${CRASH_POWERLOSS_BUDGET:-$CRASH_KIND_BUDGET}}
	echo "$E2E_NAME: powerloss: $npts crash points in the trace" \
	     "(calls $(echo "$pts" | head -n 1)..$last)" >&2
	mapfile -t crash_pl_pts <<<"$pts"
	list=$SCRATCH/points.powerloss
	: >"$list"
	for idx in $(crash_sample "$npts" "$budget"); do
		crash_pl_at "$idx" "$last"
		echo "$idx $CRASH_LAST" >>"$list"
	done
	# where the durable outcome changes between sampled points (old
	# before the commit point, new after), bisect to test the exact one
	prev=
	prev_out=
	while read -r idx out <&3; do
		if [ -n "$prev" ] && [ "$out" != "$prev_out" ] &&
		   [ "$out" != - ] && [ "$prev_out" != - ]; then
			lo=$prev
			hi=$idx
			while [ $((hi - lo)) -gt 1 ]; do
				mid=$(( (lo + hi) / 2 ))
				crash_pl_at "$mid" "$last"
				crash_pl_refined=$((crash_pl_refined + 1))
				if [ "$CRASH_LAST" = "$prev_out" ]; then
					lo=$mid
				else
					hi=$mid
				fi
			done
			echo "$E2E_NAME: powerloss: outcome $prev_out before call" \
			     "${crash_pl_pts[$((lo - 1))]}, $out before call" \
			     "${crash_pl_pts[$((hi - 1))]} (durable variant)" >&2
		fi
		prev=$idx
		prev_out=$out
	done 3< <(sort -n "$list")
}

# crash_pl_at IDX LAST: every variant at the IDX-th (1-based) crash point;
# CRASH_LAST is the durable variant's outcome.
crash_pl_at() {
	local k=${crash_pl_pts[$(($1 - 1))]} i v first= out=$SCRATCH/pl-point
	crash_pl_points=$((crash_pl_points + 1))
	rm -rf "$out"
	python3 "$CRASH_PL" replay-point "$CRASH_PL_TRACE" "$k" \
		"$CRASH_POWERLOSS_VARIANTS" "$out" >"$SCRATCH/pl-variants" ||
		fail "powerloss.py replay-point $CRASH_PL_TRACE $k failed"
	while read -r i v <&4; do
		crash_pl_point "$k" "$v" "$2" "$out/$i"
		[ -n "$first" ] || first=$CRASH_LAST
	done 4<"$SCRATCH/pl-variants"
	rm -rf "$out"
	CRASH_LAST=${first:--}
}

# crash_pl_point K VARIANT LAST REPLAYED: one replay (made by powerloss.py
# in the directory REPLAYED), with all the checks.
crash_pl_point() {
	local k=$1 v=$2 last=$3 dir=$SCRATCH/run outcome check=crash_check_killed
	CRASH_KIND=powerloss
	CRASH_AT=$k
	CRASH_PL_VARIANT=$v
	rm -f "$CRASH_OUTCOME_FILE"
	rm -rf "$dir"
	mv "$4" "$dir"
	if [ "$k" = "$last" ]; then
		cp "$SCRATCH/pl.out" "$CRASH_OUT"
		cp "$SCRATCH/pl.err" "$CRASH_ERR"
	else
		: >"$CRASH_OUT"
		: >"$CRASH_ERR"
	fi
	if declare -F crash_powerloss_prepare >/dev/null; then
		crash_powerloss_prepare "$dir" >"$SCRATCH/prepare.log" 2>&1 ||
			{ cat "$SCRATCH/prepare.log" >&2;
			  fail "crash_powerloss_prepare $dir failed"; }
	fi
	if declare -F crash_check_powerloss >/dev/null; then
		check=crash_check_powerloss
	fi
	crash_pl_n=$((crash_pl_n + 1))
	crash_pl_variants[${v%%:*}]=$(( ${crash_pl_variants[${v%%:*}]:-0} + 1 ))
	crash_check "$check" "$dir" || true
	outcome=-
	[ -s "$CRASH_OUTCOME_FILE" ] && outcome=$(cat "$CRASH_OUTCOME_FILE")
	crash_outcomes["powerloss $outcome"]=$(( ${crash_outcomes["powerloss $outcome"]:-0} + 1 ))
	crash_check crash_rerun "$dir" || true
	CRASH_PL_VARIANT=
	CRASH_LAST=$outcome
}

crash_enumerate() {
	local ref=$SCRATCH/ref n budget kind at out start prev prev_out
	local refined=0 list total=0 line
	: "${CRASH_SUB:?}" "${CRASH_DESC:?}"
	start=$(date +%s)

	# 1. the clean run, counting the I/O calls
	crash_fresh "$ref"
	CRASH_KIND=none
	rm -f "$SCRATCH/count"
	set +e
	(
		export "${CRASH_ENV_PREFIX}FAULT_COUNT_FILE=$SCRATCH/count"
		crash_cmd "$ref"
	) >"$CRASH_OUT" 2>"$CRASH_ERR" </dev/null
	CRASH_RC=$?
	set -e
	if [ "$CRASH_RC" -ne 0 ]; then
		cat "$CRASH_ERR" >&2
		fail "the clean run failed with exit $CRASH_RC: $CRASH_DESC"
	fi
	[ -s "$SCRATCH/count" ] || fail "no I/O call count (is ds built" \
		"with -DDS_FAULT_INJECTION=ON?)"
	n=$(cat "$SCRATCH/count")
	[ "$n" -gt 0 ] || fail "the command made no durable I/O call"
	crash_check crash_check_done "$ref" ||
		fail "the clean run's result fails its own checks:" \
		     "$(cat "$CRASH_FINDINGS")"
	echo "$E2E_NAME: $CRASH_DESC: $n durable I/O calls" >&2

	# 2. and 3. every fault kind at every (sampled) call index
	for kind in $CRASH_KINDS; do
		if [ "$kind" = powerloss ]; then
			[ "$CRASH_POWERLOSS" = 1 ] && crash_powerloss
			continue
		fi
		list=$SCRATCH/points.$kind
		: >"$list"
		case $kind in
		kill)	budget=$CRASH_KIND_BUDGET ;;
		*-sticky) budget=${CRASH_STICKY_BUDGET:-$CRASH_KIND_BUDGET} ;;
		*)	budget=${CRASH_ERROR_BUDGET:-$CRASH_KIND_BUDGET} ;;
		esac
		budget=${DS_CRASH_BUDGET:-$budget}
		for at in $(crash_sample "$n" "$budget"); do
			crash_point "$kind" "$at"
			echo "$at $CRASH_LAST" >>"$list"
		done
		# 4. refine the kill sample around outcome changes
		if [ "$kind" = kill ] && [ "$(wc -l <"$list")" -lt "$n" ]; then
			prev=
			prev_out=
			while read -r at out <&3; do
				if [ -n "$prev" ] && [ "$out" != "$prev_out" ] &&
				   [ "$out" != - ] && [ "$prev_out" != - ]; then
					crash_bisect "$prev" "$prev_out" "$at" "$out" \
						"$list.refined"
				fi
				prev=$at
				prev_out=$out
			done 3< <(sort -n "$list")
			if [ -s "$list.refined" ]; then
				refined=$(wc -l <"$list.refined")
			fi
		fi
		# where the outcome changes between neighbouring calls (the
		# commit points, for kills)
		crash_points_of "$list" | sort -n -u |
			awk -v name="$E2E_NAME" -v kind="$kind" '
			NR > 1 && $1 == pa + 1 && $2 != po && $2 != "-" && po != "-" {
				printf "%s: %s: outcome %s at call %d, %s at call %d\n",
				       name, kind, po, pa, $2, $1
			}
			{ pa = $1; po = $2 }' >&2
		echo "$E2E_NAME: $kind: ${crash_n[$kind]:-0} points," \
		     "$(crash_points_of "$list" |
		        awk '{c[$2]++} END {for (o in c) printf "%s %d ", o, c[o]}')" >&2
	done

	# 5. the figures
	local kills=${crash_n[kill]:-0}
	local enospc=$(( ${crash_n[enospc]:-0} + ${crash_n[enospc-sticky]:-0} ))
	local eio=$(( ${crash_n[eio]:-0} + ${crash_n[eio-sticky]:-0} ))
	local summary outcomes=
	for line in "${!crash_outcomes[@]}"; do
		outcomes="$outcomes${outcomes:+, }$line: ${crash_outcomes[$line]}"
	done
	summary="crash points: $n, kills: $kills, enospc: $enospc, eio: $eio"
	[ "$refined" -gt 0 ] && summary="$summary (of the kills, $refined bisecting an outcome change)"
	if [ "$crash_pl_n" -gt 0 ]; then
		line=
		for kind in durable all prefix dir; do
			[ -z "${crash_pl_variants[$kind]:-}" ] ||
				line="$line${line:+, }$kind ${crash_pl_variants[$kind]}"
		done
		summary="$summary, power-loss replays: $crash_pl_n (points $crash_pl_points"
		[ "$crash_pl_refined" -eq 0 ] ||
			summary="$summary, $crash_pl_refined by bisection"
		summary="$summary; variants $line)"
	fi
	for kind in $CRASH_KINDS; do
		if [ -n "${crash_absorbed[$kind]:-}" ]; then
			echo "$E2E_NAME: $kind: the command still succeeded at" \
			     "call(s)${crash_absorbed[$kind]} (result checked complete)"
			for at in ${crash_absorbed[$kind]}; do
				line=$(crash_name_call "$at")
				[ -z "$line" ] || echo "    call $at is $line"
			done
		fi
	done
	echo "$E2E_NAME: outcomes: $outcomes"
	summary="$summary; $(( $(date +%s) - start )) s"
	if [ -s "$CRASH_FINDINGS" ]; then
		cat "$CRASH_FINDINGS"
		total=$(grep -c '^FINDING' "$CRASH_FINDINGS")
		crash_figures "$summary, $total FINDING(S)"
		fail "$total finding(s); scratch kept: $SCRATCH"
	fi
	crash_figures "$summary, all invariants held"
}

# Print the scenario's figures, and keep them in
# $DS_BUILD_DIR/crash-figures/<scenario>.txt for scripts/test.sh's summary.
crash_figures() {
	echo "$E2E_NAME: $*"
	if [ -n "${DS_BUILD_DIR:-}" ] && [ -d "$DS_BUILD_DIR" ]; then
		mkdir -p "$DS_BUILD_DIR/crash-figures"
		echo "$E2E_NAME: $*" >"$DS_BUILD_DIR/crash-figures/$E2E_NAME.txt"
	fi
}
