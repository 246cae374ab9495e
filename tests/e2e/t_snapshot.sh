#!/bin/bash
# ds snapshot: the environment COMMAND sees, its exit status, exclusion of
# a second snapshot and of checks while it runs (A/ unchanged), garbage
# conf lines warned about, retries, and the http line against a real
# XML-RPC server on 127.0.0.1 (a python3 peer standing in for Zope's
# DirectoryStorageToolkit: it holds misc/lock, as a running storage does).
. "$(dirname "$0")/lib.sh"

S=$SCRATCH/store
fixture_copy bushy-master "$S"
real=$(cd "$S" && pwd -P)

# COMMAND's environment and exit status
before=$(date +%s)
must_pass ds snapshot --storage "$S" sh -c \
	'echo "$SNAPSHOT_VERSION|$SNAPSHOT_DIRECTORY|$SNAPSHOT_TIMESTAMP"'
IFS='|' read -r v d t <"$LAST_STDOUT"
assert_eq 2 "$v" SNAPSHOT_VERSION
assert_eq "$real" "$d" SNAPSHOT_DIRECTORY
[ "$t" -ge $((before - 1)) ] && [ "$t" -le $(($(date +%s) + 1)) ] ||
	fail "SNAPSHOT_TIMESTAMP $t is not now"
assert_contains "$LAST_STDERR" "Entered snapshot using direct access"
assert_contains "$LAST_STDERR" "Locked snapshot mode"
assert_contains "$LAST_STDERR" "Unlocked snapshot mode"
must_fail 7 ds snapshot -q --storage "$S" sh -c 'exit 7'
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "stderr with -q"
must_fail 127 ds snapshot -q --storage "$S" /nonexistent/command
assert_contains "$LAST_STDERR" "cannot run /nonexistent/command"
must_fail 2 ds snapshot
# the pre-1.1.10 form: DIR CONF COMMAND
must_pass ds snapshot "$S" - sh -c 'test "$SNAPSHOT_VERSION" = 2'

# While COMMAND runs: a second snapshot and a check are refused with
# "try again later" (3), and A/ does not change.
tree_md5 "$S/A" >"$SCRATCH/A.before"
must_pass ds snapshot -q --storage "$S" bash -c '
	u="env -u SNAPSHOT_VERSION -u SNAPSHOT_DIRECTORY -u SNAPSHOT_TIMESTAMP"
	$u "$0" snapshot --storage "$1" true 2>"$2/second.err"
	echo $? >"$2/second.rc"
	$u "$0" check "$1" 2>"$2/check.err" >/dev/null
	echo $? >"$2/check.rc"
	# the engine cannot open it to commit
	printf "pickle" >"$2/pickle"
	$u "$0" commit "$1" new="$2/pickle" >/dev/null 2>"$2/commit.err"
	echo $? >"$2/commit.rc"
	# inside, ds check reuses this snapshot
	"$0" check -q "$1" >/dev/null 2>&1
	echo $? >"$2/inner-check.rc"' "$DS_BIN" "$S" "$SCRATCH"
assert_eq 3 "$(cat "$SCRATCH/second.rc")" "second ds snapshot"
assert_contains "$SCRATCH/second.err" "in use"
assert_eq 3 "$(cat "$SCRATCH/check.rc")" "ds check during a snapshot"
assert_eq 0 "$(cat "$SCRATCH/inner-check.rc")" "ds check inside it"
assert_eq 3 "$(cat "$SCRATCH/commit.rc")" "ds commit during a snapshot"
assert_contains "$SCRATCH/commit.err" "misc/lock is held by process"

tree_md5 "$S/A" >"$SCRATCH/A.after"
cmp -s "$SCRATCH/A.before" "$SCRATCH/A.after" || fail "A/ changed"

# -t/-s: retry while busy, then give up with 3
must_pass ds snapshot -q --storage "$S" bash -c '
	start=$(date +%s)
	env -u SNAPSHOT_VERSION "$0" snapshot -t 2 -s 1 --storage "$1" true \
		2>"$2/retry.err"
	echo "$? $(( $(date +%s) - start ))" >"$2/retry.rc"' \
	"$DS_BIN" "$S" "$SCRATCH"
read -r rc took <"$SCRATCH/retry.rc"
assert_eq 3 "$rc" "retrying snapshot exit"
[ "$took" -ge 2 ] || fail "gave up after ${took}s, not 2"
assert_contains "$SCRATCH/retry.err" "Retrying snapshot...."

# snapshot.conf: garbage is warned about, never fatal
printf 'garbage here\n\nnonsense\ndirect\n' >"$S/config/snapshot.conf"
must_pass ds snapshot --storage "$S" true
assert_contains "$LAST_STDERR" "malformed line 1 in $real/config/snapshot.conf"
assert_contains "$LAST_STDERR" "malformed line 3 in"
printf 'nodirect\n' >"$S/config/snapshot.conf"
must_fail 3 ds snapshot --storage "$S" true
printf 'direct\n' >"$SCRATCH/other.conf"
must_pass ds snapshot --snapshot-conf "$SCRATCH/other.conf" --storage "$S" true

# ---- http: a real XML-RPC server ----
cat >"$SCRATCH/peer.py" <<'EOF'
import base64, fcntl, os, sys
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler

home, portfile, logfile = sys.argv[1:4]
want = 'Basic ' + base64.b64encode(b'operator:s3cret').decode()
held = {}

def log(line):
    with open(logfile, 'a') as f:
        f.write(line + '\n')

class Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ('/', '/Control_Panel/zodb')
    def parse_request(self):
        if not super().parse_request():
            return False
        if self.headers.get('Authorization') != want:
            log('denied')
            self.send_error(401, 'Unauthorized')
            return False
        return True
    def log_message(self, *a):
        pass

def enterSnapshot(code):
    # a running storage holds misc/lock; entering snapshot mode writes
    # misc/snapshot
    fd = os.open(os.path.join(home, 'misc/lock'), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held['fd'] = fd
    with open(os.path.join(home, 'misc/snapshot'), 'w') as f:
        f.write(code)
    log('enter ' + code)
    return 1

def leaveSnapshot(code):
    os.unlink(os.path.join(home, 'misc/snapshot'))
    os.close(held.pop('fd'))
    log('leave ' + code)
    return 1

server = SimpleXMLRPCServer(('127.0.0.1', 0), requestHandler=Handler,
                            logRequests=False, allow_none=True)
server.register_function(enterSnapshot)
server.register_function(leaveSnapshot)
with open(portfile + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + '.tmp', portfile)
server.serve_forever()
EOF
python3 "$SCRATCH/peer.py" "$S" "$SCRATCH/port" "$SCRATCH/peer.log" &
PEER=$!
peer_stop() { kill "$PEER" 2>/dev/null || true; wait "$PEER" 2>/dev/null || true; }
trap 'peer_stop; e2e_exit' EXIT
for i in $(seq 1 100); do [ -f "$SCRATCH/port" ] && break; sleep 0.1; done
[ -f "$SCRATCH/port" ] || fail "the XML-RPC peer did not start"
port=$(cat "$SCRATCH/port")

printf 'operator:s3cret\n' >"$S/config/access"
printf 'http http://127.0.0.1:%s/Control_Panel/zodb access\nnodirect\n' \
	"$port" >"$S/config/snapshot.conf"
must_pass ds snapshot --storage "$S" sh -c '
	cat "$SNAPSHOT_DIRECTORY/misc/snapshot" >"$0/code"
	# the server holds misc/lock: no direct access possible meanwhile
	env -u SNAPSHOT_VERSION "$1" snapshot --snapshot-conf /dev/null \
		--storage "$SNAPSHOT_DIRECTORY" true 2>/dev/null
	echo $? >"$0/direct.rc"' "$SCRATCH" "$DS_BIN"
assert_contains "$LAST_STDERR" "Entered snapshot using http://127.0.0.1:$port/Control_Panel/zodb"
assert_contains "$LAST_STDERR" "Left snapshot mode"
code=$(cat "$SCRATCH/code")
assert_eq "$(hostname)-" "${code%%-*}-" "snapshot code prefix"
assert_contains "$SCRATCH/peer.log" "enter $code"
assert_contains "$SCRATCH/peer.log" "leave $code"
assert_eq 3 "$(cat "$SCRATCH/direct.rc")" "direct access while http holds"
[ ! -e "$S/misc/snapshot" ] || fail "leaveSnapshot was not called"

# wrong password: the server refuses, nodirect leaves nothing: busy
printf 'operator:wrong\n' >"$S/config/access"
must_fail 3 ds snapshot --storage "$S" true
assert_contains "$SCRATCH/peer.log" "denied"
# ... and with the implicit direct fallback it works without the server
# (misc/snapshot is gone, so the engine is opened and closed first)
printf 'http http://127.0.0.1:%s/ access\n' "$port" >"$S/config/snapshot.conf"
must_pass ds snapshot --storage "$S" true
assert_contains "$LAST_STDERR" "Entered snapshot using direct access"
[ -e "$S/misc/snapshot" ] || fail "direct access did not leave a snapshot"
# an access file that is not there is warned about (then direct)
printf 'http http://127.0.0.1:%s/ no-such-access
' "$port" \
	>"$S/config/snapshot.conf"
must_pass ds snapshot -q --storage "$S" true
assert_contains "$LAST_STDERR" "line 1 of $real/config/snapshot.conf"
assert_contains "$LAST_STDERR" "no-such-access"
peer_stop
