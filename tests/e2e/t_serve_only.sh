#!/bin/bash
# ds replica --serve-only DIR as an ssh forced command (rrsync style), over
# a real sshd on 127.0.0.1 whose authorized_keys holds
#   command="ds replica --serve-only MASTER",restrict KEY
# - a replica pulling "dshost:/some/other/path" gets MASTER's increment
#   (and --init from any path copies MASTER);
# - a replica of another storage is refused (different identity), exit 1,
#   unchanged;
# - the client's -v/-q still apply (the master's hold time comes back);
# - any other command through that key runs nothing: a shell command, a
#   ds subcommand, a ds replica whose options are not -v/-q, an empty
#   command; the files they would have made do not appear.
. "$(dirname "$0")/lib.sh"

state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' -e ' \./misc/replica\.state '
}
same_A() {
	[ "$(tree_md5 "$1/A")" = "$(tree_md5 "$2/A")" ] ||
		fail "A/ of $2 differs from $1"
}

M=$SCRATCH/master
must_pass ds gen -q --objects 40 --transactions 12 --per-txn 4 "$M"
must_pass ds mkds "$SCRATCH/decoy"          # what the client names
must_pass ds gen -q --objects 10 --transactions 4 --per-txn 3 --seed 9 \
	"$SCRATCH/other"

start_sshd
# the forced command: the key can do this and nothing else
echo "command=\"$DS_BIN replica --serve-only $M\",restrict $(cat "$SSHD_DIR/client_key.pub")" \
	>"$SSHD_DIR/authorized_keys"

# ---- --init from a path that is not the served one: MASTER's content
R=$SCRATCH/replica
must_pass ds replica --init -e "$SSH_CMD" "dshost:$SCRATCH/decoy" "$R"
assert_contains "$LAST_STDERR" "Replica complete"
same_A "$M" "$R"
must_pass ds check --compare "$M" "$R"

# ---- increments, asking for yet another path (that does not even exist)
must_pass ds gen -q --objects 8 --transactions 5 --per-txn 2 --seed 2 "$M"
must_pass ds replica -v -e "$SSH_CMD" dshost:/nonexistent/elsewhere "$R"
same_A "$M" "$R"
# the client's -v reached the master side: its hold time came back
assert_contains "$LAST_STDERR" "ds replica: master: Transferring increment...."
grep -Eq '^ds replica: master held in snapshot mode: [0-9]+\.[0-9]{3} s' \
	"$LAST_STDERR" || fail "no hold time from the forced-command master"
# and -q: nothing at all
must_pass ds gen -q --objects 8 --transactions 5 --per-txn 2 --seed 3 "$M"
must_pass ds replica -q -e "$SSH_CMD" "dshost:$SCRATCH/decoy" "$R"
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "stderr bytes with -q"
same_A "$M" "$R"
must_pass ds check --compare "$M" "$R"

# ---- a replica of another storage: different identity, unchanged
must_pass ds replica --init "$SCRATCH/other" "$SCRATCH/r-other"
before=$(state "$SCRATCH/r-other")
must_fail 1 ds replica -e "$SSH_CMD" "dshost:$SCRATCH/other" "$SCRATCH/r-other"
assert_contains "$LAST_STDERR" "different identity"
assert_eq "$before" "$(state "$SCRATCH/r-other")" "other replica after refusal"

# ---- anything else through the key runs nothing
ssh_try() {   # ssh_try COMMAND: must fail, and print why
	local rc=0
	echo "+ ssh dshost $1" >&2
	ssh -F "$SSH_CONFIG" dshost "$1" >"$LAST_STDOUT" 2>"$LAST_STDERR" \
		</dev/null || rc=$?
	[ "$rc" -ne 0 ] || { e2e_show_last; fail "ssh dshost '$1' succeeded"; }
}
P=$SCRATCH/pwned
ssh_try "touch $P"
assert_contains "$LAST_STDERR" "this key only serves replication of $M"
ssh_try "sh -c 'touch $P.2'"
ssh_try "$DS_BIN mkds $P.3"
ssh_try "$DS_BIN replica --init $M $P.4"
ssh_try "$DS_BIN replica -e 'touch $P.5' h:/x $P.6"
ssh_try "$DS_BIN gen --objects 5 $M"
ssh_try "$DS_BIN new-oid $M 5"
ssh_try "$DS_BIN replica + $M; touch $P.7"
ssh_try "$DS_BIN replica + \$(touch $P.8)"
# no command at all: no shell either (restrict: no pty), and what it
# reads on stdin is not a request
ssh_try ""
for f in "$P" "$P".2 "$P".3 "$P".4 "$P".5 "$P".6 "$P".7 "$P".8; do
	[ ! -e "$f" ] || fail "$f was created through the forced command"
done
# the master did not move: its history is what the replica has
must_pass ds check --compare "$M" "$R"
assert_eq "$(ds log -n 1 "$M" | head -1)" "$(ds log -n 1 "$R" | head -1)" \
	"newest transaction of master and replica"
# the served storage was not handed a write: x.oid unchanged
assert_eq "$(tree_md5 "$M/A")" "$(tree_md5 "$R/A")" "A/ of master and replica"

# ---- the original replica.py's remote command is understood too
# ("python PATH/replica.py [-v|-q] + DIR"): a request from an empty
# replica of MASTER gets MASTER's whole history
printf 'replica request 0\n%s\n0000000000000000\nd41d8cd98f00b204e9800998ecf8427e\n' \
	"$(head -n 1 "$M/config/identity")" >"$SCRATCH/request"
echo "+ SSH_ORIGINAL_COMMAND='/usr/bin/python /opt/ds/replica.py -q + /x' ds replica --serve-only" >&2
SSH_ORIGINAL_COMMAND="/usr/bin/python /opt/ds/replica.py -q + /x" \
	"$DS_BIN" replica --serve-only "$M" <"$SCRATCH/request" \
	>"$SCRATCH/answer.tar" 2>"$LAST_STDERR" || fail "original's command refused"
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "stderr bytes (client asked -q)"
tar -tf "$SCRATCH/answer.tar" >"$SCRATCH/answer.list"
[ "$(grep -c '^A/' "$SCRATCH/answer.list")" -gt 100 ] ||
	fail "the whole history was not served"
# the python interpreter is accepted once, in front of replica.py only
SSH_ORIGINAL_COMMAND="/usr/bin/python -c 'import os'" \
	must_fail 1 ds replica --serve-only "$M"
assert_contains "$LAST_STDERR" "refusing the command"

# ---- the serve-only command line itself
must_fail 2 ds replica --serve-only "$M" extra
must_fail 2 ds replica --serve-only "$M" --init
