#!/bin/bash
# t_pack_slots.sh - replication slots: a replica names itself in its
# request, the master records the transaction the replica proved it holds
# (misc/slots/), and `ds pack` on the master never packs past it, so the
# replica can always be brought up to date; --ignore-replicas packs past
# it (the replica is then refused "packed since"), `ds replica --forget`
# and --slot-max-age stop a slot from holding the pack back, --no-slot
# records nothing, a corrupt slot file stops the pack (nothing removed),
# `ds replica --slots` lists them; the same over a real sshd on loopback.
. "$(dirname "$0")/lib.sh"
M=$SCRATCH/master
R=$SCRATCH/replica
R2=$SCRATCH/replica2
HOST=$(hostname)

xserial() { od -An -tx1 "$1/A/x/serial" | tr -d ' \n' | tr a-f A-F; }
xpacked() { od -An -tx1 "$1/A/x/packed" | tr -d ' \n' | tr a-f A-F; }
commits() {      # SEED: more commits (with garbage) on the master
	must_pass ds gen -q --graph --objects 30 --transactions 15 --per-txn 4 \
		--seed "$1" "$M"
}

must_fail 2 ds replica --slots
must_fail 2 ds replica --slot "" "$M" "$R"
must_fail 2 ds replica --slot x --no-slot "$M" "$R"
must_fail 2 ds pack --slot-max-age 0 "$M"
must_fail 2 ds pack --slot-max-age soon "$M"

must_pass ds gen -q --graph --objects 120 --transactions 60 --per-txn 4 \
	--seed 5 "$M"
sed -i 's/^min_pack_time: .*/min_pack_time: 0/' "$M/config/settings"
must_pass ds replica --slots "$M"
assert_contains "$LAST_STDERR" "has no replication slots"
must_pass ds replica -q --init "$M" "$R"
# --init sends no request that names a slot; the first increment does
must_pass ds replica -q "$M" "$R"
held=$(xserial "$R")
must_pass ds replica --slots "$M"
assert_contains "$LAST_STDOUT" "$held"
assert_contains "$LAST_STDOUT" "$HOST:$R"
[ "$(wc -l <"$LAST_STDOUT")" = 1 ] || fail "one slot expected"

# the master moves on; a pack "now" is held back to the replica's tid
commits 6
sleep 1
must_pass ds pack "$M"
assert_contains "$LAST_STDOUT" "held back"
assert_contains "$LAST_STDOUT" "to $held"
assert_contains "$LAST_STDOUT" "slot '$HOST:$R'"
assert_eq "$held" "$(xpacked "$M")" "x.packed held at the replica's tid"
[ -n "$(find "$M/A" -name '*-deleted' -print -quit)" ] ||
	fail "the held pack removed nothing at all"
must_pass ds check "$M"
must_pass ds replica -q "$M" "$R"
must_pass ds check --compare "$M" "$R"
# the slot moves only when a request proves the replica has the increment
must_pass ds replica --slots "$M"
assert_contains "$LAST_STDOUT" "$held"
rtid=$(xserial "$R")
must_pass ds replica -q "$M" "$R"
must_pass ds replica --slots "$M"
assert_contains "$LAST_STDOUT" "$rtid"

# a second replica that never names a slot is not protected
must_pass ds replica -q --init "$M" "$R2"
must_pass ds replica -q --no-slot "$M" "$R2"
must_pass ds replica --slots "$M"
[ "$(wc -l <"$LAST_STDOUT")" = 1 ] || fail "--no-slot recorded a slot"

# --slot-max-age: a slot not seen for long holds nothing back
commits 7
sleep 1
f=$(ls "$M/misc/slots")
sed -i "s/^seen .*/seen $(( $(date +%s) - 3 * 86400 ))/" "$M/misc/slots/$f"
cp -a "$M" "$SCRATCH/m-aged"
must_pass ds pack --slot-max-age 2 "$SCRATCH/m-aged"
assert_not_contains "$LAST_STDOUT" "held back"
assert_contains "$LAST_STDERR" "last seen"
[ "$(xpacked "$SCRATCH/m-aged")" \> "$rtid" ] ||
	fail "an expired slot still held the pack back"
rm -rf "$SCRATCH/m-aged"
# ... but one seen within the age still does
must_pass ds pack --slot-max-age 4 "$M"
assert_contains "$LAST_STDOUT" "held back"
assert_eq "$rtid" "$(xpacked "$M")" "x.packed held by a young slot"

# a corrupt slot file stops the pack before anything changes
cp -a "$M" "$SCRATCH/m-bad"
echo garbage >"$SCRATCH/m-bad/misc/slots/0123456789abcdef0123456789abcdef"
before=$(tree_md5 "$SCRATCH/m-bad/A")
must_fail 1 ds pack "$SCRATCH/m-bad"
assert_contains "$LAST_STDERR" "misc/slots/0123456789abcdef0123456789abcdef"
assert_contains "$LAST_STDERR" "--ignore-replicas"
assert_eq "$before" "$(tree_md5 "$SCRATCH/m-bad/A")" "A/ after a refused pack"
rm -rf "$SCRATCH/m-bad"

# --ignore-replicas packs past the slot: the replica is then refused
cp -a "$M" "$SCRATCH/m-ign"
cp -a "$R" "$SCRATCH/r-ign"
must_pass ds pack --ignore-replicas "$SCRATCH/m-ign"
assert_not_contains "$LAST_STDOUT" "held back"
must_fail 1 ds replica -q "$SCRATCH/m-ign" "$SCRATCH/r-ign"
assert_contains "$LAST_STDERR" "packed since"
rm -rf "$SCRATCH/m-ign" "$SCRATCH/r-ign"

# --forget: the slot holds nothing back any more
must_fail 1 ds replica --forget "no such replica" "$M"
assert_contains "$LAST_STDERR" "no replication slot named 'no such replica'"
must_pass ds replica --forget "$HOST:$R" "$M"
must_pass ds replica --slots "$M"
[ ! -s "$LAST_STDOUT" ] || fail "a forgotten slot is still listed"
must_pass ds pack "$M"
assert_not_contains "$LAST_STDOUT" "held back"
must_fail 1 ds replica -q "$M" "$R"
assert_contains "$LAST_STDERR" "packed since"

# --- over ssh (a real sshd on loopback), with a chosen slot name
start_sshd
S=$SCRATCH/sshreplica
commits 8     # (a replica made now holds a transaction after x.packed)
must_pass ds replica -q --init -e "$SSH_CMD" dshost:"$M" "$S"
must_pass ds replica -q --slot "backup box" -e "$SSH_CMD" dshost:"$M" "$S"
stid=$(xserial "$S")
must_pass ds replica --slots "$M"
assert_contains "$LAST_STDOUT" "$stid"
assert_contains "$LAST_STDOUT" "backup box"
commits 9
sleep 1
must_pass ds pack "$M"
assert_contains "$LAST_STDOUT" "slot 'backup box'"
assert_eq "$stid" "$(xpacked "$M")" "x.packed held by the ssh replica's slot"
must_pass ds replica -q --slot "backup box" -e "$SSH_CMD" dshost:"$M" "$S"
must_pass ds check --compare "$M" "$S"
must_pass ds check "$M"
