#!/bin/bash
# ds status: the replica's last transaction and recorded runs
# (misc/replica.state, written by ds replica on every run that held the
# replica's lock), the master's newest transaction and the lag asked over
# the replication transport (locally, and over a real sshd), the lag
# after commits on the master, the Nagios exit code of every threshold
# case, the Prometheus textfile parsed, the JSON read with jq; a run
# refused because the replica is in use leaves the record alone; a
# master running the original replica.py and an unreachable one are
# "unknown"; status writes nothing in the replica or the master.
. "$(dirname "$0")/lib.sh"

DSDIR=$(dirname "$DS_BIN")
M=$SCRATCH/master
R=$SCRATCH/replica
fixture_copy bushy-master "$M"
fixture_copy bushy-replica-old "$R"
ptid() { ds log -n 1 "$1" | awk 'NR==1 {print $1}'; }
MT=$(ptid "$M")
RT=$(ptid "$R")
[ -n "$MT" ] && [ -n "$RT" ] || fail "no tids from ds log"
json() { jq -r "$1" "$LAST_STDOUT"; }

# ---- before any run: no record; the master tells the lag ----
before_m=$(tree_md5 "$M")
before_r=$(tree_md5 "$R")
must_pass ds status "$R" "$M"
assert_contains "$LAST_STDOUT" "last transaction: $RT"
assert_contains "$LAST_STDOUT" "master newest:    $MT"
assert_contains "$LAST_STDOUT" "lag:              21 transactions"
assert_contains "$LAST_STDOUT" "runs:             none recorded"
must_pass ds status --json "$R" "$M"
assert_eq 21 "$(json .lag_transactions)" "lag_transactions"
assert_eq true "$(json .master.in_history)" "in_history"
assert_eq "$MT" "$(json .master.newest)" "master.newest"
assert_eq "$RT" "$(json .tid)" "tid"
assert_eq false "$(json .state_recorded)" "state_recorded"
assert_eq null "$(json .last_success)" "last_success"
# the oldest missing transaction is the one right after the replica's
oldest=$(json .master.oldest_missing)
ds log "$M" | awk '{print $1}' >"$SCRATCH/mtids"
want=$(grep -B1 -x "$RT" "$SCRATCH/mtids" | head -1)
assert_eq "$want" "$oldest" "oldest missing"
lag=$(json .lag_seconds)
python3 - "$lag" "$oldest" <<'EOF' || fail "lag_seconds $lag is not now minus the oldest missing transaction's time"
import sys, time, datetime
lag, oldest = float(sys.argv[1]), int(sys.argv[2], 16)
hi, lo = oldest >> 32, oldest & 0xffffffff
mins = hi
y, mins = divmod(mins, 12 * 31 * 24 * 60)
mo, mins = divmod(mins, 31 * 24 * 60)
d, mins = divmod(mins, 24 * 60)
h, mi = divmod(mins, 60)
t = datetime.datetime(1900 + y, mo + 1, d + 1, h, mi,
                      tzinfo=datetime.timezone.utc).timestamp() + lo * 60 / 2**32
# the master's clock when it answered, before this check ran
assert 0 < time.time() - t - lag < 120, (lag, time.time() - t)
EOF

# ---- Nagios: each threshold case; perfdata; one line ----
big=$(python3 -c "print(int($lag) + 100000)")
must_fail 2 ds status --nagios 10,20 "$R" "$M"
assert_contains "$LAST_STDOUT" "DS_REPLICA CRITICAL - $R: 21 transactions"
assert_contains "$LAST_STDOUT" "| lag="
assert_contains "$LAST_STDOUT" "s;10;20;0; behind=21;;;0;"
assert_eq 1 "$(wc -l <"$LAST_STDOUT")" "nagios lines"
must_fail 1 ds status --nagios "10,$big" "$R" "$M"
assert_contains "$LAST_STDOUT" "DS_REPLICA WARNING"
must_pass ds status --nagios "$big,$((big + 1))" "$R" "$M"
assert_contains "$LAST_STDOUT" "DS_REPLICA OK"
# bad thresholds, bad command line: UNKNOWN (3), not CRITICAL
must_fail 3 ds status --nagios 20,10 "$R" "$M"
must_fail 3 ds status --nagios x "$R" "$M"
must_fail 3 ds status --nagios 1,2 --bogus "$R" "$M"
must_fail 2 ds status --bogus "$R" "$M"
must_fail 2 ds status "$R" "ds@:$M"
assert_contains "$LAST_STDERR" "[USER@]HOST:DIR or DIR"
# no record and no master: the lag cannot be told
must_fail 3 ds status --nagios 10,20 "$R"
assert_contains "$LAST_STDOUT" "DS_REPLICA UNKNOWN"
# a replica that cannot be read
must_fail 3 ds status --nagios 10,20 "$SCRATCH/nothing" "$M"
assert_contains "$LAST_STDOUT" "DS_REPLICA UNKNOWN"
must_fail 1 ds status "$SCRATCH/nothing"

# status read only: both storages byte for byte as they were
assert_eq "$before_m" "$(tree_md5 "$M")" "master after ds status"
assert_eq "$before_r" "$(tree_md5 "$R")" "replica after ds status"

# ---- a run recorded ----
must_pass ds replica -q "$M" "$R"
[ -f "$R/misc/replica.state" ] || fail "no misc/replica.state"
assert_eq 644 "$(stat -c %a "$R/misc/replica.state")" "state file mode"
assert_contains "$R/misc/replica.state" "tid $MT"
must_pass ds check "$R"
must_pass ds status --json "$R" "$M"
assert_eq 0 "$(json .lag_transactions)" "lag after replication"
assert_eq 0 "$(json .lag_seconds)" "lag seconds after replication"
assert_eq 21 "$(json .last_success.transactions)" "transactions applied"
assert_eq null "$(json .last_failure)" "last_failure"
assert_eq "$M" "$(json .replicated_from)" "replicated_from"
must_pass ds status --nagios 1,2 "$R" "$M"
assert_contains "$LAST_STDOUT" "DS_REPLICA OK - $R: 0 transactions, 0 s behind"
# without MASTER: the bound since the last success
must_pass ds status --nagios 3600,7200 "$R"
assert_contains "$LAST_STDOUT" "DS_REPLICA OK - $R: lag at most"
must_pass ds status --json "$R"
assert_eq null "$(json .master)" "master without MASTER"
assert_eq null "$(json .lag_seconds)" "lag_seconds without MASTER"
[ "$(json .lag_bound_seconds)" != null ] || fail "no lag bound"

# ---- commits on the master: the lag follows ----
echo "first pickle" >"$SCRATCH/p1"
echo "second pickle" >"$SCRATCH/p2"
must_pass ds commit -m one "$M" new="$SCRATCH/p1"
T1=$(grep -o '[0-9A-F]\{16\}' "$LAST_STDOUT" | head -1)
must_pass ds commit -m two "$M" new="$SCRATCH/p2"
T2=$(grep -o '[0-9A-F]\{16\}' "$LAST_STDOUT" | head -1)
[ -n "$T1" ] && [ -n "$T2" ] || fail "ds commit printed no tid"
must_pass ds status --json "$R" "$M"
assert_eq 2 "$(json .lag_transactions)" "lag after two commits"
assert_eq "$T1" "$(json .master.oldest_missing)" "oldest missing"
assert_eq "$T2" "$(json .master.newest)" "master newest"
python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if 0 <= v < 600 else 1)" \
	"$(json .lag_seconds)" || fail "lag seconds after fresh commits: $(json .lag_seconds)"
must_pass ds status --nagios 3600,7200 "$R" "$M"
assert_contains "$LAST_STDOUT" "2 transactions"
assert_contains "$LAST_STDOUT" "behind=2;;;0;"

# ---- Prometheus: atomic, parsed ----
P=$SCRATCH/prom/ds.prom
mkdir -p "$SCRATCH/prom"
must_pass ds status --prometheus "$P" "$R" "$M"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "stdout with --prometheus alone"
assert_eq "ds.prom" "$(ls -A "$SCRATCH/prom")" "files in the textfile directory"
python3 - "$P" "$R" <<'EOF' || fail "Prometheus file does not parse"
import re, sys
path, replica = sys.argv[1], sys.argv[2]
typed, samples = {}, {}
name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        assert re.match(r"# HELP " + name_re + " .+", line), (n, line)
        continue
    if line.startswith("# TYPE "):
        m = re.match(r"# TYPE (" + name_re + r") (gauge|counter)$", line)
        assert m, (n, line)
        typed[m.group(1)] = m.group(2)
        continue
    m = re.match(r"(" + name_re + r")\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*)\} (\S+)$", line)
    assert m, (n, line)
    assert m.group(1) in typed, ("sample before its TYPE", n, line)
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2)))
    assert labels["replica"] == replica, labels
    samples[m.group(1)] = float(m.group(3))
for name in samples:
    assert name.startswith("ds_replica_"), name
    assert name.endswith(("_seconds", "_transactions", "_code", "_up",
                          "_failures", "_increment", "_history")), name
assert samples["ds_replica_lag_transactions"] == 2, samples
assert 0 <= samples["ds_replica_lag_seconds"] < 600, samples
assert samples["ds_replica_master_up"] == 1
assert samples["ds_replica_in_master_history"] == 1
assert samples["ds_replica_last_success_timestamp_seconds"] > 1.7e9
assert samples["ds_replica_consecutive_failures"] == 0
EOF
# replaced, not rewritten: a hard link keeps the old figures
ln "$P" "$SCRATCH/old.prom"
must_pass ds replica -q "$M" "$R"
must_pass ds status --prometheus "$P" "$R" "$M"
assert_contains "$SCRATCH/old.prom" 'ds_replica_lag_transactions{replica="'"$R"'",master="'"$M"'"} 2'
assert_contains "$P" 'ds_replica_lag_transactions{replica="'"$R"'",master="'"$M"'"} 0'
# a directory that cannot take it: exit 1 or 4, named
must_fail 1 ds status --prometheus "$SCRATCH/no/such/dir/x.prom" "$R" "$M"
assert_contains "$LAST_STDERR" "no/such/dir"

# ---- failures recorded; a refused (locked) run records nothing ----
O=$SCRATCH/other
fixture_copy bushy-foreign-replica "$O"
must_fail 1 ds replica -q "$O" "$R"
assert_contains "$R/misc/replica.state" "failure_exit 1"
assert_contains "$R/misc/replica.state" "different identity"
must_pass ds status --json "$R" "$M"
assert_eq 1 "$(json .last_failure.exit)" "last failure exit"
assert_eq 1 "$(json .consecutive_failures)" "consecutive failures"
json .last_failure.error | grep -q "different identity" || fail "error text"
must_pass ds status "$R"
assert_contains "$LAST_STDOUT" "exit 1: "
assert_contains "$LAST_STDOUT" "failures:         1 in a row"
cp "$R/misc/replica.state" "$SCRATCH/state.before"
# the replica in use (a snapshot user holds it): exit 3, record untouched
must_pass ds snapshot --storage "$R" -- \
	sh -c "'$DS_BIN' replica -q '$M' '$R'; echo \$? >'$SCRATCH/locked.rc'"
assert_eq 3 "$(cat "$SCRATCH/locked.rc")" "ds replica on a replica in use"
cmp -s "$R/misc/replica.state" "$SCRATCH/state.before" ||
	fail "a run refused because the replica is in use changed the record"
# a success resets the count and keeps the last failure
must_pass ds replica -q "$M" "$R"
must_pass ds status --json "$R" "$M"
assert_eq 0 "$(json .consecutive_failures)" "consecutive failures after success"
assert_eq 1 "$(json .last_failure.exit)" "last failure kept"

# ---- the original replica.py as master: the newest is unknown ----
if [ -x /root/ds-ref/bin/ref-replica ]; then
	must_pass ds status --master-command /root/ds-ref/bin/ref-replica \
		"$R" "$M"
	assert_contains "$LAST_STDOUT" "master newest:    unknown: the master does not answer status requests: it runs the original replica.py"
	assert_contains "$LAST_STDOUT" "lag:              at most"
	must_pass ds status --json --master-command /root/ds-ref/bin/ref-replica "$R" "$M"
	assert_eq false "$(json .master.known)" "master.known (original)"
	must_pass ds status --nagios 3600,7200 --master-command /root/ds-ref/bin/ref-replica "$R" "$M"
	assert_contains "$LAST_STDOUT" "DS_REPLICA OK - $R: lag at most"
	# and it still replicates from it
	must_pass ds commit -m three "$M" new="$SCRATCH/p1"
	must_pass ds replica -q --master-command /root/ds-ref/bin/ref-replica "$M" "$R"
else
	echo "note: the original implementation is not installed here: its part skipped" >&2
fi

# ---- a different master: refused, exit 1 ----
must_fail 1 ds status "$R" "$O"
assert_contains "$LAST_STDERR" "different identity"
assert_contains "$LAST_STDOUT" "last transaction:"

# ---- over ssh; then the master unreachable ----
start_sshd
must_pass ds commit -m four "$M" new="$SCRATCH/p2"
must_pass ds status --json -e "$SSH_CMD" -d "$DSDIR" "$R" "dshost:$M"
assert_eq 1 "$(json .lag_transactions)" "lag over ssh"
assert_eq true "$(json .master.known)" "master known over ssh"
assert_eq "dshost:$M" "$(json .master.name)" "master name"
must_pass ds status --nagios 3600,7200 -e "$SSH_CMD" -d "$DSDIR" "$R" "dshost:$M"
assert_contains "$LAST_STDOUT" "1 transactions"
must_pass ds replica -q -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_contains "$R/misc/replica.state" "master dshost:$M"
stop_sshd
must_fail 3 ds status -e "$SSH_CMD" -d "$DSDIR" "$R" "dshost:$M"
assert_contains "$LAST_STDOUT" "master newest:    unknown: connection to the master failed"
# Nagios falls back on the bound since the last success
must_pass ds status --nagios 3600,7200 -e "$SSH_CMD" -d "$DSDIR" "$R" "dshost:$M"
assert_contains "$LAST_STDOUT" "DS_REPLICA OK - $R: lag at most"
assert_contains "$LAST_STDOUT" "master unknown: connection to the master failed"
must_fail 2 ds status --nagios 0,0 -e "$SSH_CMD" -d "$DSDIR" "$R" "dshost:$M"
must_pass ds check "$R"
