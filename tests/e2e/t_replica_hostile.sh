#!/bin/bash
# Hostile and malformed increments served through -e by a fake master
# (a script standing in for ssh + the master side): names with '..',
# absolute names, symbolic and hard links, device nodes, directory
# entries, a bad md5, an oversize member, a truncated stream, garbage after
# the end, transactions that do not chain, members missing. Each is refused
# with exit 1 and a message naming the problem; the replica is left exactly
# as it was and nothing is written outside it. Then the recorded original
# responses through the same fake master (interop): our replica sends the
# original's request and accepts the original master's stream.
. "$(dirname "$0")/lib.sh"

state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' -e ' \./misc/replica\.state '
}

R=$SCRATCH/replica
fixture_copy bushy-replica-old "$R"
state "$R" >"$SCRATCH/before"
RESP=$DS_FIXTURE_DIR/responses/bushy-basic.tar

# serve FILE: the fake master answers every request with FILE's bytes
serve() {
	cat >"$SCRATCH/fake.sh" <<-EOF
	#!/bin/sh
	cat >"$SCRATCH/request.got"
	cat '$1'
	EOF
}
refused() {
	local what=$1 text=$2
	must_fail 1 ds replica -q -e "sh $SCRATCH/fake.sh" "master:/srv/m" "$R"
	assert_contains "$LAST_STDERR" "$text"
	state "$R" >"$SCRATCH/after"
	diff "$SCRATCH/before" "$SCRATCH/after" >&2 ||
		fail "$what: the replica changed"
	echo "refused ($what): $(cat "$LAST_STDERR")" >&2
}

W=$SCRATCH/w
mkdir -p "$W/A/x" "$W/out"
printf '\0\0\0\0\0\0\0\1' >"$W/A/x/serial"
ustar() { tar --format=ustar --owner=0 --group=0 "$@"; }

# '..' in a name (it would land in the replica's parent)
(cd "$W" && ustar -P -cf "$W/dotdot.tar" A/../A/x/serial)
serve "$W/dotdot.tar"; refused dotdot "'..' in path"
# an absolute name
ustar -P -cf "$W/abs.tar" "$W/A/x/serial"
serve "$W/abs.tar"; refused absolute "absolute path"
# a symbolic link where x.serial goes
mkdir -p "$W/l/A/x"
ln -s /etc/passwd "$W/l/A/x/serial"
ustar -C "$W/l" -cf "$W/symlink.tar" A/x/serial
serve "$W/symlink.tar"; refused symlink "symbolic link"
# a hard link
mkdir -p "$W/h/A/x"
printf '\004\015\104\262\377\377\377\377' >"$W/h/A/x/serial"
ln "$W/h/A/x/serial" "$W/h/A/x/oid"
ustar -C "$W/h" -cf "$W/hardlink.tar" A/x/serial A/x/oid
serve "$W/hardlink.tar"; refused hardlink "hard link"
# a device node, named as x.serial
ustar -C / -cf "$W/device.tar" --transform 's|^dev/null$|A/x/serial|' dev/null
serve "$W/device.tar"; refused device "not a regular file"
# a directory entry
ustar -C "$W" -cf "$W/dir.tar" --no-recursion A/x
serve "$W/dir.tar"; refused directory "directory entry"
# an oversize x.serial
printf '123456789' >"$W/A/x/serial"
ustar -C "$W" -cf "$W/big.tar" A/x/serial
serve "$W/big.tar"; refused oversize "out of bounds"

toff=$(grep -abo 'A/t0/40/D44/B2249CA6AA' "$RESP" | head -1 | cut -d: -f1)
# the original's increment, damaged: a flipped byte in a revision's pickle
off=$(grep -abo 'A/o0/00/00/00/00/00/00/01A/040D44B2249CA6AA' "$RESP" |
	head -1 | cut -d: -f1)
[ -n "$off" ] || fail "member not found in the recorded response"
cp "$RESP" "$W/md5.tar"
printf 'Z' | dd of="$W/md5.tar" bs=1 seek=$((off + 512 + 100)) conv=notrunc \
	status=none
serve "$W/md5.tar"; refused md5 "md5 mismatch"
# cut short
head -c 200000 "$RESP" >"$W/short.tar"
serve "$W/short.tar"; refused truncated "truncated"
# the end-of-archive blocks missing
head -c $(( $(stat -c %s "$RESP") - 1024 )) "$RESP" >"$W/noend.tar"
serve "$W/noend.tar"; refused no-end "truncated"
# garbage after the end
{ cat "$RESP"; echo "rm -rf /"; } >"$W/garbage.tar"
serve "$W/garbage.tar"; refused garbage "garbage after the end"
# another storage's increment: its transactions do not chain to ours
# (it is refused first for its x.oid, E0, below the replica's FC)
serve "$DS_FIXTURE_DIR/responses/flat-basic.tar"
refused "another storage" "is lower than the replica's"
# put8 FILE OFFSET HEX16: write 8 bytes (big-endian HEX16) at OFFSET
put8() {
	printf "$(echo "$3" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
xoff=$(( $(grep -abo 'A/x/oid' "$RESP" | head -1 | cut -d: -f1) + 512 ))
# the master's x.oid all zeros (the replica's is 00FC): refused, else the
# replica would hand out ids already in use
cp "$RESP" "$W/xoid0.tar"
put8 "$W/xoid0.tar" "$xoff" 0000000000000000
serve "$W/xoid0.tar"
refused "x.oid zero" "x.oid 0000000000000000 is lower than the replica's"
# just below the replica's
put8 "$W/xoid0.tar" "$xoff" 00000000000000FB
serve "$W/xoid0.tar"; refused "x.oid lower" "is lower than the replica's"
# not below the replica's, but below the increment's oids (up to 0104):
# ds check would reject the replica ("object id higher than x.oid")
put8 "$W/xoid0.tar" "$xoff" 0000000000000100
serve "$W/xoid0.tar"
refused "oids above x.oid" "object id 0000000000000104 is higher than the x.oid sent 0000000000000100"
# a revision whose md5 is zeroed, its pickle changed: the replica's
# settings ([md5policy] write: 1, as the master's) promise md5s
cp "$RESP" "$W/nomd5.tar"
put8 "$W/nomd5.tar" $((off + 512 + 40)) 0000000000000000
put8 "$W/nomd5.tar" $((off + 512 + 48)) 0000000000000000
printf 'Z' | dd of="$W/nomd5.tar" bs=1 seek=$((off + 512 + 100)) \
	conv=notrunc status=none
serve "$W/nomd5.tar"; refused "no md5" "no md5, but the storage's [md5policy] write"
# a transaction file's md5 zeroed
cp "$RESP" "$W/tnomd5.tar"
put8 "$W/tnomd5.tar" $((toff + 512 + 32)) 0000000000000000
put8 "$W/tnomd5.tar" $((toff + 512 + 40)) 0000000000000000
serve "$W/tnomd5.tar"; refused "transaction without md5" "no md5"
# a member left out: the first transaction file
tsize=$((8#$(dd if="$RESP" bs=1 skip=$((toff + 124)) count=11 status=none)))
tspan=$((512 + (tsize + 511) / 512 * 512))
{ head -c "$toff" "$RESP"; tail -c +$((toff + tspan + 1)) "$RESP"; } \
	>"$W/missing.tar"
serve "$W/missing.tar"; refused missing "must have t040D44.B2249CA6AA"
# nothing at all, with a zero exit
: >"$W/empty.tar"
serve "$W/empty.tar"; refused empty "truncated"
# --init: a whole-storage answer whose x.oid is below its own oids
# (0104 at most) is refused too, and no replica is made
fixture_copy bushy-master "$SCRATCH/im"
printf 'replica init 0\n' | "$DS_BIN" replica -q + "$SCRATCH/im" >"$W/init.tar" ||
	fail "the master side did not answer the init request"
ioff=$(( $(grep -abo 'A/x/oid' "$W/init.tar" | head -1 | cut -d: -f1) + 512 ))
put8 "$W/init.tar" "$ioff" 0000000000000100
serve "$W/init.tar"
must_fail 1 ds replica -q --init -e "sh $SCRATCH/fake.sh" "master:/srv/m" \
	"$SCRATCH/init-replica"
assert_contains "$LAST_STDERR" "init: object id 0000000000000104 is higher than the x.oid sent 0000000000000100"
[ ! -e "$SCRATCH/init-replica" ] || fail "--init made a replica"
[ -z "$(ls -d "$SCRATCH"/init-replica.init-* 2>/dev/null)" ] ||
	fail "--init left its work directory"

# a storage that does not promise md5s ([md5policy] write: 0) takes the
# md5-less files and says how many with -v
R2=$SCRATCH/nomd5-replica
fixture_copy bushy-replica-old "$R2"
sed -i '/^\[md5policy\]/,/^\[/s/^write: 1$/write: 0/' "$R2/config/settings"
grep -q '^write: 0$' "$R2/config/settings" || fail "settings not edited"
serve "$W/nomd5.tar"
must_pass ds replica -v -e "sh $SCRATCH/fake.sh" "master:/srv/m" "$R2"
assert_contains "$LAST_STDERR" "1 revisions without md5, 0 transactions without md5"
assert_contains "$LAST_STDERR" "Replica complete"
[ ! -e /etc/passwd.ds-test ] && [ -z "$(ls -A "$W/out")" ] ||
	fail "something was written outside the replica"

# Interop: the recorded original responses, served only when the request
# starts with the original's four recorded lines (ours adds `relink` and
# `report held`, which the original master ignores)
for pair in bushy-basic flat-basic; do
	rep=$(jq -r .replica_fixture "$DS_MANIFEST_DIR/$pair.replication.json")
	jq -j .request "$DS_MANIFEST_DIR/$pair.replication.json" \
		>"$SCRATCH/$pair.request"
	cat >"$SCRATCH/fake-$pair.sh" <<-EOF
	#!/bin/sh
	cat >"$SCRATCH/$pair.got"
	head -n 4 "$SCRATCH/$pair.got" | cmp -s - "$SCRATCH/$pair.request" ||
		{ echo "ReplicaError: not the recorded request" >&2; exit 1; }
	cat "$DS_FIXTURE_DIR/responses/$pair.tar"
	EOF
	fixture_copy "$rep" "$SCRATCH/$pair"
	must_pass ds replica -e "sh $SCRATCH/fake-$pair.sh" \
		"master:/srv/$pair" "$SCRATCH/$pair"
	assert_contains "$LAST_STDERR" "Replica complete"
	cmp -s "$SCRATCH/$pair/misc/replica.previous" \
		"$DS_FIXTURE_DIR/responses/$pair.tar" ||
		fail "$pair: misc/replica.previous is not the response"
	grep -Eq '^relink [0-9a-f]{32} [0-9a-f]{16}$' \
		<(sed -n 5p "$SCRATCH/$pair.got") || fail "$pair: no relink line"
	# the request for the hold time, then the replica's slot name
	assert_eq "report held" "$(sed -n 6p "$SCRATCH/$pair.got")" \
		"$pair: report line"
	case $(sed -n 7p "$SCRATCH/$pair.got") in
	"slot $(hostname):"/*) ;;
	*) fail "$pair: no slot line" ;;
	esac
	assert_eq 7 "$(wc -l <"$SCRATCH/$pair.got")" "$pair: request lines"
	# every file the master sent is in place with its bytes and mode
	master=$(jq -r .master_fixture "$DS_MANIFEST_DIR/$pair.replication.json")
	jq -r '.response.member_names[]' "$DS_MANIFEST_DIR/$pair.replication.json" |
	while read -r f; do
		cmp -s "$DS_FIXTURE_DIR/$master/$f" "$SCRATCH/$pair/$f" ||
			fail "$pair: $f differs from the master's"
	done
	assert_eq shutdown "$(cat "$SCRATCH/$pair/misc/snapshot")" "$pair snapshot"
done
