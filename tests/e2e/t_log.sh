#!/bin/bash
# ds log: the history of every fixture storage, newest first, agrees with
# its manifest's chain (count, order, first and last tid, where it ends:
# zero pointer or a transaction removed by a pack); a broken chain is an
# error naming the file.
. "$(dirname "$0")/lib.sh" || exit 1

for fx in bushy-master bushy-replica-old bushy-packed-master \
          bushy-diverged-replica bushy-foreign-replica flat-master \
          flat-replica-old flat-relinked-master; do
	# ds log only reads: the pristine extracted fixtures will do
	F=$DS_FIXTURE_DIR/$fx
	must_pass ds log --json "$F"
	cp "$LAST_STDOUT" "$SCRATCH/$fx.log.json"
	assert_eq "$(manifest $fx '.chain | length')" \
		"$(jq -r .count "$SCRATCH/$fx.log.json")" "$fx: count"
	assert_eq "$(manifest $fx '.chain[0]')" \
		"$(jq -r '.transactions[0].tid' "$SCRATCH/$fx.log.json")" "$fx: newest tid"
	assert_eq "$(manifest $fx '.chain[-1]')" \
		"$(jq -r '.transactions[-1].tid' "$SCRATCH/$fx.log.json")" "$fx: oldest tid"
	assert_eq "$(manifest $fx '.chain[]')" \
		"$(jq -r '.transactions[].tid' "$SCRATCH/$fx.log.json")" "$fx: the whole chain"
	assert_eq "$(manifest $fx '.chain_end')" \
		"$(jq -r .chain_end "$SCRATCH/$fx.log.json")" "$fx: chain end"
	if [ "$(manifest $fx '.chain_end')" = 0000000000000000 ]; then
		want_end=first
	else
		want_end=packed
	fi
	assert_eq "$want_end" "$(jq -r .end "$SCRATCH/$fx.log.json")" "$fx: end reason"
	# user, description and object count of every transaction
	assert_eq "$(jq -r --argjson c "$(manifest $fx '[.chain[]]')" \
		'[.transactions[] | {(.tid): .}] | add as $t |
		 $c[] | $t[.] | [.tid, .user, .description, (.oids | length)] | @tsv' \
		"$DS_MANIFEST_DIR/$fx.manifest.json")" \
		"$(jq -r '.transactions[] | [.tid, .user, .description, .objects] | @tsv' \
		"$SCRATCH/$fx.log.json")" "$fx: users, descriptions, object counts"

	# text: one line per transaction, newest first, then how it ended
	must_pass ds log "$F"
	assert_eq "$(manifest $fx '.chain[]')" \
		"$(grep -E '^[0-9A-F]{16} ' "$LAST_STDOUT" | cut -d' ' -f1)" "$fx: text tids"
	if [ $want_end = first ]; then
		assert_contains "$LAST_STDOUT" "history starts here"
	else
		assert_contains "$LAST_STDOUT" "removed by a pack"
	fi
done

must_pass ds log "$DS_FIXTURE_DIR/bushy-master"
assert_contains "$LAST_STDOUT" "initial database creation"
assert_contains "$LAST_STDOUT" "\"/ alice\""
head -n1 "$LAST_STDOUT" | grep -Eq '^040D44B2249CA6AA  2026-11-26 [0-9:]{8} GMT ' ||
	fail "first line: $(head -n1 "$LAST_STDOUT")"

must_pass ds log -n 5 "$DS_FIXTURE_DIR/bushy-master"
assert_eq 5 "$(grep -cE '^[0-9A-F]{16} ' "$LAST_STDOUT")" "lines with -n 5"
assert_contains "$LAST_STDOUT" "limit"
must_pass ds log -q -n 5 "$DS_FIXTURE_DIR/bushy-master"
assert_eq 5 "$(wc -l <"$LAST_STDOUT")" "lines with -q -n 5"
must_pass ds log -v -n 1 "$DS_FIXTURE_DIR/bushy-master"
assert_contains "$LAST_STDOUT" "prev $(manifest bushy-master '.chain[1]')"

# an empty storage has no history
must_pass ds mkds -q "$SCRATCH/empty"
must_pass ds log --json "$SCRATCH/empty"
assert_eq "0 first" "$(jq -r '"\(.count) \(.end)"' "$LAST_STDOUT")" "empty storage"

# a missing transaction file that no pack removed is an error
fixture_copy bushy-replica-old "$SCRATCH/bushy-replica-old"
S=$SCRATCH/bushy-replica-old
mid=$(manifest bushy-replica-old '.chain[10]')
mpath=$S/$(manifest bushy-replica-old ".transactions[] | select(.tid == \"$mid\") | .path")
mv "$mpath" "$SCRATCH/moved-away"
must_fail 1 ds log "$S"
assert_contains "$LAST_STDERR" "ds log: "
assert_contains "$LAST_STDERR" "$mpath"
assert_contains "$LAST_STDERR" "missing"
assert_eq 10 "$(grep -cE '^[0-9A-F]{16} ' "$LAST_STDOUT")" "lines before the gap"

# a corrupt one too
cp "$SCRATCH/moved-away" "$mpath"
printf 'X' | dd of="$mpath" bs=1 seek=70 conv=notrunc status=none
must_fail 1 ds log "$S"
assert_contains "$LAST_STDERR" "$mpath"

must_fail 1 ds log "$SCRATCH/not-a-storage"
assert_contains "$LAST_STDERR" "$SCRATCH/not-a-storage"
must_fail 2 ds log
must_fail 2 ds log a b
must_fail 2 ds log -n many "$S"
