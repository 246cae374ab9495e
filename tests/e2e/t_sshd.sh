#!/bin/bash
# The harness's loopback sshd works: ssh runs a command on 127.0.0.1 through
# it, stdin and stdout pass through intact, exit codes come back, and a key
# that is not authorized is refused (so the login really is checked).
. "$(dirname "$0")/lib.sh" || exit 1

start_sshd

# a command runs remotely and its output comes back
must_pass ssh -F "$SSH_CONFIG" dshost 'echo "remote $((6 * 7))"; id -un'
assert_contains "$LAST_STDOUT" "remote 42"
assert_eq "$(id -un)" "$(sed -n 2p "$LAST_STDOUT")" "remote user"
assert_contains "$SSHD_DIR/sshd.log" "Accepted publickey for $(id -un)"

# binary stdin reaches the remote command byte for byte, as a replica
# request and an archive will
head -c 100000 /dev/urandom >"$SCRATCH/blob"
must_pass ssh -F "$SSH_CONFIG" dshost cat <"$SCRATCH/blob"
assert_eq "$(md5sum <"$SCRATCH/blob")" "$(md5sum <"$LAST_STDOUT")" \
	"md5 of data sent through ssh and back"

# the remote exit status comes back
must_fail 7 ssh -F "$SSH_CONFIG" dshost 'exit 7'

# $SSH_CMD is what `ds replica -e` will be given
must_pass $SSH_CMD dshost 'echo via-ssh-cmd'
assert_contains "$LAST_STDOUT" "via-ssh-cmd"

# a key that is not in authorized_keys is refused
ssh-keygen -q -t ed25519 -N '' -f "$SCRATCH/stranger"
sed "s|IdentityFile .*|IdentityFile $SCRATCH/stranger|" "$SSH_CONFIG" \
	>"$SCRATCH/stranger_config"
must_fail 255 ssh -F "$SCRATCH/stranger_config" dshost true
assert_contains "$LAST_STDERR" "Permission denied"

stop_sshd
# once stopped, nothing listens there any more
must_fail 255 ssh -F "$SSH_CONFIG" dshost true
