#!/bin/bash
# `ds replica --init` against a master that runs the ORIGINAL replica.py,
# on the original's recorded answers (tests/fixtures/orig-init.json,
# recorded by tests/fixtures/record-orig-init.sh from the reference build):
# tests/fixtures/replay-orig-ssh.sh stands in for ssh (-e), replaying what
# the original master side wrote on stdout and stderr and its exit code
# for each request, and running `cat` of the fixture storages' config
# files for real. So CI, which cannot build the original, still checks
# the whole conversation: the original answers our whole-storage request
# with its usage text; ds then reads config/identity and config/settings
# with cat, makes an empty storage with them and pulls the whole history
# from the all-zero tid as an ordinary increment; the next increment is an
# ordinary one. t_replica_orig_live.sh runs the same against the original
# itself where it is built.
. "$(dirname "$0")/lib.sh"

FX=$DS_MANIFEST_DIR
REPLAY="bash $FX/replay-orig-ssh.sh"
export ORIG_REPLAY_INDEX=$FX/orig-init.json
export ORIG_REPLAY_RESPONSES=$DS_FIXTURE_DIR/responses
export ORIG_REPLAY_LOG=$SCRATCH/replay.log
M=$SCRATCH/m
mkdir "$M"
for f in bushy-replica-old bushy-master flat-master; do
	fixture_copy "$f" "$M/$f"
done
# what the replay answered, one word per run of the "ssh"
conversation() { sed 's/:.*//; s/^replay //' "$ORIG_REPLAY_LOG" | paste -sd' '; }
no_leftovers() {
	local r=$1
	[ ! -e "$r" ] || fail "$r was made"
	! ls -d "$r".init-* >/dev/null 2>&1 || fail "a $r.init-* directory was left"
}

# --- 1. --init with the default master command, as with -d naming a
# `ds` that runs the original (its multi-call shim)
: >"$ORIG_REPLAY_LOG"
must_pass ds replica --init -e "$REPLAY" -d /opt/ds dshost:"$M/bushy-replica-old" "$SCRATCH/r"
assert_contains "$LAST_STDERR" "ds replica: Replica complete"
# the original's usage text is how it was recognised, never an error
assert_not_contains "$LAST_STDERR" "Usage:"
assert_not_contains "$LAST_STDERR" "COMMAND may also include"
assert_not_contains "$LAST_STDERR" "Error from remote replica"
assert_eq "init-probe cat cat bushy-old-zero" "$(conversation)" "the conversation"
grep -qF "'cat' '--' '$M/bushy-replica-old/config/identity'" "$ORIG_REPLAY_LOG" ||
	fail "config/identity not read with cat"
# the master's identity and settings, byte for byte
cmp "$M/bushy-replica-old/config/identity" "$SCRATCH/r/config/identity" ||
	fail "identity differs from the master's"
cmp "$M/bushy-replica-old/config/settings" "$SCRATCH/r/config/settings" ||
	fail "settings differ from the master's"
# the whole history arrived as the original sent it
cmp "$ORIG_REPLAY_RESPONSES/bushy-old-zero.tar" "$SCRATCH/r/misc/replica.previous" ||
	fail "misc/replica.previous is not the original's answer"
must_pass ds check "$SCRATCH/r"
must_pass ds check --compare "$M/bushy-replica-old" "$SCRATCH/r"
assert_contains "$LAST_STDERR" "equals $M/bushy-replica-old's history up to its last transaction"
assert_eq "$(manifest bushy-replica-old '."x.serial"')" \
	"$(ds log -n 1 "$SCRATCH/r" | awk 'NR==1 {print $1}' | tr a-f A-F)" "replica's last tid"
! ls -d "$SCRATCH"/r.init-* >/dev/null 2>&1 || fail "r.init-* left"

# --- 2. then an ordinary increment from the master's later state (the
# original's recorded answer to bushy-replica-old's request)
: >"$ORIG_REPLAY_LOG"
must_pass ds replica -e "$REPLAY" -d /opt/ds dshost:"$M/bushy-master" "$SCRATCH/r"
assert_contains "$LAST_STDERR" "ds replica: Replica complete"
assert_eq "bushy-basic" "$(conversation)" "the increment's conversation"
must_pass ds check "$SCRATCH/r"
must_pass ds check --compare "$M/bushy-master" "$SCRATCH/r"
assert_contains "$LAST_STDERR" "equals $M/bushy-master's history up to its last transaction"

# --- 3. --master-command: the words run on the master, and -v says what
# happens instead of the usage text
: >"$ORIG_REPLAY_LOG"
must_pass ds replica --init -v -e "$REPLAY" \
	--master-command "/usr/bin/python3 /opt/DirectoryStorage/replica.py" \
	dshost:"$M/bushy-replica-old" "$SCRATCH/r2"
assert_contains "$LAST_STDERR" "ds replica: the master runs the original replica.py, which has no whole-storage request"
assert_contains "$ORIG_REPLAY_LOG" "'/usr/bin/python3' '/opt/DirectoryStorage/replica.py' -v + '$M/bushy-replica-old'"
must_pass ds check --compare "$M/bushy-replica-old" "$SCRATCH/r2"
must_fail 2 ds replica --init -d /opt/ds --master-command "python3 x" "$M/bushy-master" "$SCRATCH/r3"
no_leftovers "$SCRATCH/r3"

# --- 4. a packed original master cannot send the history from the start:
# say so, and what to do instead; nothing made
must_fail 1 ds replica --init -e "$REPLAY" -d /opt/ds dshost:"$M/flat-master" "$SCRATCH/rf"
assert_contains "$LAST_STDERR" "ds replica: the master runs the original replica.py, and its storage has been packed"
assert_contains "$LAST_STDERR" "storage has been packed since the last replica ( 2026-11-26 05:38:10 GMT"
assert_contains "$LAST_STDERR" "Copy the master's storage directory while it is closed (cp -a"
assert_not_contains "$LAST_STDERR" "Usage:"
no_leftovers "$SCRATCH/rf"

# --- 5. an ssh key forced to run replica.py answers cat with the usage
# text too: say what to copy by hand; nothing made
: >"$ORIG_REPLAY_LOG"
ORIG_REPLAY_FORCED=$M/bushy-replica-old must_fail 1 ds replica --init -e "$REPLAY" -d /opt/ds \
	dshost:"$M/bushy-replica-old" "$SCRATCH/rq"
assert_eq "init-probe empty-request" "$(conversation)" "the forced key's conversation"
assert_contains "$LAST_STDERR" "the master runs the original replica.py, which cannot send its identity and settings"
assert_contains "$LAST_STDERR" "ran replica.py instead"
assert_contains "$LAST_STDERR" "\`ds mkds $SCRATCH/rq Full FORMAT\`"
assert_contains "$LAST_STDERR" "copy the master's $M/bushy-replica-old/config/identity and $M/bushy-replica-old/config/settings into $SCRATCH/rq/config/"
assert_not_contains "$LAST_STDERR" "Usage:"
no_leftovers "$SCRATCH/rq"
# ... and what it says works: mkds, copy the two files, ds replica
must_pass ds mkds "$SCRATCH/rq" Full bushy
cp "$M/bushy-replica-old/config/identity" "$M/bushy-replica-old/config/settings" "$SCRATCH/rq/config/"
must_pass ds replica -e "$REPLAY" -d /opt/ds dshost:"$M/bushy-replica-old" "$SCRATCH/rq"
must_pass ds check --compare "$M/bushy-replica-old" "$SCRATCH/rq"

# --- 6. the original needs an absolute master directory (its whatsnew
# fails on a relative one): refused before anything is made
must_fail 1 bash -c "cd '$SCRATCH' && '$DS_BIN' replica --init -e '$REPLAY' -d /opt/ds dshost:m/bushy-replica-old '$SCRATCH/rrel'"
assert_contains "$LAST_STDERR" "the master runs the original replica.py, which needs an absolute master directory"
no_leftovers "$SCRATCH/rrel"

# the masters were only read
for f in bushy-replica-old bushy-master flat-master; do
	[ "$(tree_md5 "$M/$f/A")" = "$(tree_md5 "$DS_FIXTURE_DIR/$f/A")" ] ||
		fail "master $f's A/ changed"
done
