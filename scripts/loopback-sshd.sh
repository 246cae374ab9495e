# loopback-sshd.sh - sourced: a real OpenSSH server on 127.0.0.1, run as
# the current user, with its own host key and a fresh client key, for the
# demo (scripts/demo.sh) and for trying `ds replica` over ssh without
# touching the system's sshd or ~/.ssh.
#
#   . scripts/loopback-sshd.sh
#   loopback_sshd_start DIR     # DIR: a new or empty directory for keys,
#                               # config and log
#   ds replica -e "$LOOPBACK_SSH" dshost:/srv/ds /srv/replica
#   loopback_sshd_stop
#
# After loopback_sshd_start: LOOPBACK_SSH_CONFIG is an ssh_config in which
# the host "dshost" is that server (key login, host key pinned, BatchMode),
# LOOPBACK_SSH is "ssh -F <that config>", LOOPBACK_SSHD_PORT its port,
# LOOPBACK_SSHD_PID its process, LOOPBACK_AUTHORIZED_KEYS the
# authorized_keys file (one line, the client key; rewrite it to try a
# forced command: sshd reads it at each login), LOOPBACK_CLIENT_PUB the
# client's public key line. Root needs /run/sshd: it is created.
# Returns non-zero (and prints sshd's log) when sshd does not start.

LOOPBACK_SSHD_PID=
LOOPBACK_SSHD_PORT=
LOOPBACK_SSH_CONFIG=
LOOPBACK_SSH=
LOOPBACK_AUTHORIZED_KEYS=
LOOPBACK_CLIENT_PUB=

loopback_sshd_start() {
	local dir=$1 user port tries i sshd=/usr/sbin/sshd
	[ -x "$sshd" ] || { echo "loopback-sshd: no $sshd (openssh-server)" >&2; return 1; }
	mkdir -p "$dir"
	chmod 700 "$dir"
	dir=$(cd "$dir" && pwd)
	user=$(id -un)
	rm -f "$dir/host_key" "$dir/host_key.pub" "$dir/client_key" "$dir/client_key.pub"
	ssh-keygen -q -t ed25519 -N '' -C ds-loopback-host -f "$dir/host_key"
	ssh-keygen -q -t ed25519 -N '' -C ds-loopback-client -f "$dir/client_key"
	LOOPBACK_CLIENT_PUB=$(cat "$dir/client_key.pub")
	LOOPBACK_AUTHORIZED_KEYS=$dir/authorized_keys
	echo "$LOOPBACK_CLIENT_PUB" >"$LOOPBACK_AUTHORIZED_KEYS"
	chmod 600 "$LOOPBACK_AUTHORIZED_KEYS"
	if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
		mkdir -p /run/sshd
		chmod 755 /run/sshd
	fi
	for tries in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		cat >"$dir/sshd_config" <<-EOF
		Port $port
		ListenAddress 127.0.0.1
		HostKey $dir/host_key
		PidFile $dir/sshd.pid
		AuthorizedKeysFile $dir/authorized_keys
		StrictModes no
		UsePAM no
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
		AllowUsers $user
		X11Forwarding no
		AllowTcpForwarding no
		PrintMotd no
		LogLevel INFO
		EOF
		: >"$dir/sshd.log"
		"$sshd" -D -e -f "$dir/sshd_config" 2>>"$dir/sshd.log" </dev/null &
		LOOPBACK_SSHD_PID=$!
		for i in $(seq 1 100); do
			grep -q "Server listening on 127.0.0.1 port $port" \
				"$dir/sshd.log" && break
			kill -0 "$LOOPBACK_SSHD_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$LOOPBACK_SSHD_PID" 2>/dev/null &&
		   grep -q "Server listening on 127.0.0.1 port $port" "$dir/sshd.log"; then
			LOOPBACK_SSHD_PORT=$port
			break
		fi
		kill "$LOOPBACK_SSHD_PID" 2>/dev/null || true
		wait "$LOOPBACK_SSHD_PID" 2>/dev/null || true
		LOOPBACK_SSHD_PID=
		# only a port in use is worth another try
		grep -q "Address already in use" "$dir/sshd.log" || break
	done
	if [ -z "$LOOPBACK_SSHD_PORT" ]; then
		cat "$dir/sshd.log" >&2
		echo "loopback-sshd: could not start sshd (log above)" >&2
		return 1
	fi
	echo "dshost $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
	LOOPBACK_SSH_CONFIG=$dir/ssh_config
	cat >"$LOOPBACK_SSH_CONFIG" <<-EOF
	Host dshost
	    HostName 127.0.0.1
	    Port $LOOPBACK_SSHD_PORT
	    User $user
	    HostKeyAlias dshost
	    IdentityFile $dir/client_key
	    IdentitiesOnly yes
	    UserKnownHostsFile $dir/known_hosts
	    GlobalKnownHostsFile /dev/null
	    StrictHostKeyChecking yes
	    BatchMode yes
	    PasswordAuthentication no
	    ConnectTimeout 10
	    ControlMaster no
	    LogLevel ERROR
	EOF
	LOOPBACK_SSH="ssh -F $LOOPBACK_SSH_CONFIG"
	return 0
}

loopback_sshd_stop() {
	[ -n "$LOOPBACK_SSHD_PID" ] || return 0
	kill "$LOOPBACK_SSHD_PID" 2>/dev/null || true
	wait "$LOOPBACK_SSHD_PID" 2>/dev/null || true
	LOOPBACK_SSHD_PID=
}
