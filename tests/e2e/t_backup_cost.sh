#!/bin/bash
# An incremental backup costs what changed, not what is stored: the same
# increment (20 transactions of 10 objects, the same content from the same
# seed) is backed up from a storage of 1,000 objects and from one of
# 10,000, each after a full backup, under strace -f. Counted without
# timing: the file-system system calls of each run must agree within 5%,
# no directory of A/ is listed (no getdents64 beneath A/), and the files
# of A/ opened are the archive's members (what ds whatsnew lists) and
# x.packed (the walk's check), not one more.
. "$(dirname "$0")/lib.sh" || exit 1

command -v strace >/dev/null || fail "strace is not installed (scripts/setup-deps.sh)"
MARGIN_PCT=5

# run NAME OBJECTS: storage, full backup, the increment, traced inc
# backup; prints "<fs calls> <A/ files opened> <A/ dirs listed> <members>"
run() {
	local d=$SCRATCH/$1 trace fs opened listed members
	must_pass ds gen -q --nosync --big 0 --objects "$2" \
		--transactions $(($2 / 100)) --per-txn 100 "$d"
	mkdir "$d/backups"
	must_pass ds backup -q --storage "$d" full
	must_pass ds gen -q --nosync --big 0 --objects 10 --transactions 20 \
		--per-txn 10 --seed 7 "$d"
	trace=$SCRATCH/$1.trace
	must_pass env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -o "$trace" "$DS_BIN" backup -q --storage "$d" inc now
	[ -f "$d/backups/backup-1-to-2.tgz" ] || fail "$1: no incremental backup"
	fs=$(grep -cE '^[0-9]+ +(open|openat|stat|newfstatat|lstat|statx|fstat|getdents64|mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|rmdir|access|faccessat2?|readlink|fsync|fdatasync|syncfs)\(' "$trace" || true)
	# distinct files of A/ opened (the walk reads the transaction
	# files, then the archive reads them again)
	opened=$(grep -E '^[0-9]+ +openat\(.*"'"$d"'/A/.*O_RDONLY.*= [0-9]+$' "$trace" |
		grep -v 'O_DIRECTORY' | sed 's/^[^"]*"\([^"]*\)".*/\1/' | sort -u | wc -l)
	# a directory of A/ opened for listing
	listed=$(grep -E '^[0-9]+ +openat\(.*"'"$d"'/A(/[^"]*)?".*O_DIRECTORY.*= [0-9]+$' "$trace" |
		wc -l || true)
	members=$(tar -tzf "$d/backups/backup-1-to-2.tgz" | wc -l)
	echo "$fs $opened $listed $members"
}

read -r fs_s open_s list_s mem_s < <(run small 1000)
read -r fs_l open_l list_l mem_l < <(run large 10000)
echo "small store: $fs_s fs calls, $open_s files of A/ opened, $list_s dirs listed, $mem_s members" >&2
echo "large store: $fs_l fs calls, $open_l files of A/ opened, $list_l dirs listed, $mem_l members" >&2
full_s=$(tar -tzf "$SCRATCH/small/backups/backup-1.tgz" | wc -l)
full_l=$(tar -tzf "$SCRATCH/large/backups/backup-1.tgz" | wc -l)
echo "full backups: $full_s and $full_l members" >&2
[ "$full_l" -gt $((full_s * 5)) ] || fail "the stores do not differ in size ($full_s, $full_l)"
assert_eq "$mem_s" "$mem_l" "members of the two increments"
assert_eq "$((mem_s + 1))" "$open_s" "files of A/ opened (small store): members and x.packed"
assert_eq "$((mem_l + 1))" "$open_l" "files of A/ opened (large store): members and x.packed"
assert_eq 0 "$list_s" "directories of A/ listed (small store)"
assert_eq 0 "$list_l" "directories of A/ listed (large store)"
[ "$fs_s" -gt 100 ] || fail "only $fs_s system calls traced"
diff=$((fs_l > fs_s ? fs_l - fs_s : fs_s - fs_l))
[ $((diff * 100)) -le $((fs_s * MARGIN_PCT)) ] ||
	fail "$fs_l file-system calls on the 10,000-object store against $fs_s" \
	     "on the 1,000-object one: the incremental backup's cost depends" \
	     "on the size of the storage"
