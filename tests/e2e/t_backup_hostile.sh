#!/bin/bash
# ds restore of hostile or broken archives: a valid full backup with one
# bad member added (an absolute path, "..", a symlink, a hard link, a
# device, a fifo, a member over the size limit, a file outside a storage
# backup's shape, a stray file in A/, a database file of another layout),
# a truncated archive. Each is refused (exit 1) naming the member; no DIR,
# no temporary directory is left, and nothing is written outside DIR (a
# canary directory the bad members aim at stays empty). An archive made
# by GNU tar with "./" names is accepted.
. "$(dirname "$0")/lib.sh" || exit 1

S=$SCRATCH/src
OUT=$SCRATCH/outside
mkdir "$OUT"
must_pass ds gen -q --nosync --objects 100 --transactions 20 "$S"
mkdir "$S/backups"
must_pass ds backup -q --storage "$S" full
GOOD=$S/backups/backup-1.tgz

# hostile NAME KIND ARG: GOOD plus one member (python3's tarfile)
hostile() {
	python3 - "$GOOD" "$SCRATCH/$1.tgz" "$2" "${3:-}" <<'EOF'
import io, sys, tarfile
good, out, kind, arg = sys.argv[1:5]
src = tarfile.open(good, "r:gz")
dst = tarfile.open(out, "w:gz", format=tarfile.USTAR_FORMAT)
for m in src.getmembers():
    dst.addfile(m, src.extractfile(m) if m.isfile() else None)
def add(name, type=tarfile.REGTYPE, data=b"pwned", linkname="", size=None):
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.linkname = linkname
    ti.mode = 0o644
    if type == tarfile.REGTYPE:
        ti.size = len(data) if size is None else size
        if size is None:
            dst.addfile(ti, io.BytesIO(data))
        else:
            # a header promising more than follows: written by hand
            dst.fileobj.write(ti.tobuf(tarfile.USTAR_FORMAT))
            dst.fileobj.write(data + b"\0" * (512 - len(data)))
            dst.offset += 512 + 512
    else:
        dst.addfile(ti)
if kind == "file":
    add(arg)
elif kind == "symlink":
    add(arg, tarfile.SYMTYPE, linkname=sys.argv[0] and "/etc/passwd")
elif kind == "symlinkdir":
    add("misc2", tarfile.SYMTYPE, linkname=arg)
    add("misc2/pwned")
elif kind == "hardlink":
    add(arg, tarfile.LNKTYPE, linkname="/etc/passwd")
elif kind == "chr":
    add(arg, tarfile.CHRTYPE)
elif kind == "fifo":
    add(arg, tarfile.FIFOTYPE)
elif kind == "huge":
    add(arg, size=5 * 1024 ** 3, data=b"x")
elif kind == "bigconfig":
    add(arg, data=b"#" * (2 * 1024 * 1024))
dst.close()
EOF
}

# refused NAME TEXT: ds restore NAME.tgz fails with TEXT, leaving nothing
refused() {
	must_fail 1 ds restore "$SCRATCH/$1.tgz" "$SCRATCH/R"
	assert_contains "$LAST_STDERR" "$2"
	[ ! -e "$SCRATCH/R" ] || fail "$1: a refused restore left R"
	[ -z "$(ls -d "$SCRATCH"/R.restore-* 2>/dev/null)" ] ||
		fail "$1: a refused restore left its temporary directory"
	[ -z "$(ls -A "$OUT")" ] || fail "$1: written outside DIR: $(ls -A "$OUT")"
	[ ! -e "$SCRATCH/pwned" ] && [ ! -e /pwned ] || fail "$1: pwned"
}

hostile abs file "$OUT/pwned"
refused abs "absolute path"
hostile dotdot file "A/../../outside/pwned"
refused dotdot '".."'
hostile dotdot2 file "../outside/pwned"
refused dotdot2 '".."'
hostile dotdot3 file "config/../../outside/pwned"
refused dotdot3 '".."'
hostile symlink symlink "A/x/serial"
refused symlink "a symbolic link"
hostile symlinkdir symlinkdir "$OUT"
refused symlinkdir "a symbolic link"
hostile hardlink hardlink "A/x/oid"
refused hardlink "a hard link"
hostile chr chr "A/x/oid"
refused chr "character device"
hostile fifo fifo "A/x/oid"
refused fifo "fifo"
hostile huge huge "A/x/serial"
refused huge "over the limit"
hostile bigconfig bigconfig "config/settings"
refused bigconfig "over the limit"
hostile misc file "misc/lock"
refused misc "not part of a storage backup"
hostile journal file "journal/working_040D44B2249CA6AA_done/x.serial"
refused journal "not part of a storage backup"
hostile stray file "A/junk"
refused stray "not a database file of a bushy storage"
hostile flatname file "A/x.serial"
refused flatname "not a database file of a bushy storage"
hostile nested file "config/sub/file"
refused nested "not part of a storage backup"
# truncated: the gzip stream cut in the middle
head -c 20000 "$GOOD" >"$SCRATCH/cut.tgz"
refused cut ""
# an "incremental" without x.serial: nothing says where it belongs
python3 - "$SCRATCH/noserial.tgz" <<'EOF2'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w:gz", format=tarfile.USTAR_FORMAT)
ti = tarfile.TarInfo("A/x/oid")
ti.size = 8
t.addfile(ti, io.BytesIO(b"\xff" * 8))
t.close()
EOF2
must_fail 1 ds restore "$GOOD" "$SCRATCH/noserial.tgz" "$SCRATCH/R"
assert_contains "$LAST_STDERR" "an incremental backup without A/'s x.serial"
[ ! -e "$SCRATCH/R" ] || fail "noserial: R left"
# a valid archive still restores (the refusals above are the members')
must_pass ds restore "$GOOD" "$SCRATCH/R"
rm -rf "$SCRATCH/R"
# GNU tar's "./" names are accepted
tar -C "$S" -czf "$SCRATCH/gnu.tgz" ./config ./A
must_pass ds restore "$SCRATCH/gnu.tgz" "$SCRATCH/R"
must_pass ds check --compare "$S" "$SCRATCH/R"
