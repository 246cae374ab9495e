#!/bin/sh
# make-corpus.sh - generate the seed corpora of the fuzz targets from the
# fixtures (real storages written by the original implementation).
#
#   fuzz/make-corpus.sh [OUTDIR]       (default: fuzz/corpus)
#
# Writes OUTDIR/<target>/<seed> for every target: a few dozen small seeds
# each, taken from the fixture storages (record files, settings, paths in
# all four layouts, the recorded replication requests and responses) plus
# hand-made hostile cases. The archive and serve seeds that need a master's
# answer (empty increments, an init stream) are made by running the master
# side, `$DS_BIN replica + DIR`; without DS_BIN (or a ds on PATH) they are
# left out and the script says so. Needs sh, tar, gzip and python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
out=${1:-$here/corpus}
fixtures=${DS_FUZZ_FIXTURES:-$src/tests/fixtures}
ds=${DS_BIN:-$(command -v ds || true)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ds-corpus-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
for f in "$fixtures"/*-master.tar.gz "$fixtures"/*-replica-old.tar.gz; do
	tar -xzpf "$f" -C "$tmp"
done
mkdir -p "$tmp/responses"
for f in "$fixtures"/*.response.tar.gz; do
	gzip -dc "$f" > "$tmp/responses/$(basename "$f" .response.tar.gz).tar"
done

# Answers of the master side for the archive target: the empty increment
# (request at the master's own head) and the init stream.
if [ -n "$ds" ] && [ -x "$ds" ]; then
	for m in bushy-master flat-master; do
		python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["request_if_used_as_replica"], end="")' \
			"$fixtures/$m.manifest.json" > "$tmp/$m.head-request"
		"$ds" replica -q + "$tmp/$m" < "$tmp/$m.head-request" \
			> "$tmp/responses/$m.empty.tar"
	done
	printf 'replica init 0\n' | "$ds" replica -q + "$tmp/bushy-master" \
		> "$tmp/responses/bushy-master.init.tar"
else
	echo "make-corpus.sh: no ds binary (set DS_BIN): leaving out the" \
	     "empty-increment and init seeds" >&2
fi

rm -rf "$out"
mkdir -p "$out"
python3 - "$tmp" "$fixtures" "$out" <<'PY'
import hashlib, io, json, os, struct, sys, tarfile

tmp, fixtures, out = sys.argv[1:4]

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def manifest(name):
    with open(os.path.join(fixtures, name + ".manifest.json")) as f:
        return json.load(f)

def read(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()

# ---- layouts (formats.py), to make paths of every layout ----
def name_to_path(layout, name):
    stem, tail = name.split(".", 1)
    if layout == "flat":
        return name
    if layout == "lawn":
        return stem + "/" + tail
    if layout == "bushy":
        parts = []
        while stem:
            s = 2 if len(stem) > 3 else 3
            parts.append(stem[:s]); stem = stem[s:]
        return "/".join(parts) + "/" + tail
    if layout == "chunky":
        if len(stem) < 3:
            return stem + "/" + tail
        parts, first = [], True
        while len(stem) > 4:
            s = 4 if first and stem[0] in "ot" else 3
            first = False
            parts.append(stem[:s]); stem = stem[s:]
        return "/".join(parts + [stem + "." + tail])
    raise ValueError(layout)

LAYOUTS = ["bushy", "chunky", "lawn", "flat"]

bm = manifest("bushy-master")
fm = manifest("flat-master")
home_b = os.path.join(tmp, "bushy-master")
home_f = os.path.join(tmp, "flat-master")

# ---- objrec: revision files of all kinds, under each md5 mode ----
revs = []
for o in bm["objects"]:
    for r in o["revisions"]:
        revs.append(r)
revs.sort(key=lambda r: r["file_len"])
picked = revs[:4] + revs[len(revs) // 2: len(revs) // 2 + 4] + revs[-3:]
undone = [r for r in revs if r["pickle_len"] == 0]
picked += undone[:2]
for i, r in enumerate(picked):
    b = read(home_b, r["path"])
    put("objrec", "rev%02d" % i, b"\0" + b)
    if i < 4:
        put("objrec", "rev%02d-fixmd5" % i, b"\1" + b)
        put("objrec", "rev%02d-nomd5" % i, b"\2" + b)
put("objrec", "short", b"\0" + read(home_b, picked[0]["path"])[:71])
put("objrec", "empty", b"\0")

# ---- txnrec: transaction files (users, descriptions, extensions) ----
txns = sorted(bm["transactions"], key=lambda t: t["file_len"])
seen = set()
k = 0
for t in txns[:3] + txns[-3:] + [t for t in txns if t["extension_len"]][:4] \
        + [t for t in txns if not t["user"]][:2]:
    if t["tid"] in seen:
        continue
    seen.add(t["tid"])
    b = read(home_b, t["path"])
    put("txnrec", "txn%02d" % k, b"\0" + b)
    if k < 3:
        put("txnrec", "txn%02d-fix" % k, b"\3" + b)
    k += 1
dup = bytearray(read(home_b, txns[-1]["path"]))
if len(dup) >= 76:
    dup[-8:] = dup[-16:-8]      # the last oid twice
    put("txnrec", "dup-oid", b"\3" + bytes(dup))
put("txnrec", "header-only", b"\3" + struct.pack(">II", 0x47400776, 60)
    + bytes(52))

# ---- pointer: .c files, x files, the legacy form ----
k = 0
for o in bm["objects"][:6]:
    p = os.path.join(home_b, "A", name_to_path("bushy", "o%s.c" % o["oid"]))
    put("pointer", "ptr%d" % k, read(p)); k += 1
put("pointer", "legacy", struct.pack(">I", 0x0BFEE8EC) + read(p))
put("pointer", "legacy-badmagic", b"\0\0\0\0" + read(p))
for x in ("x/serial", "x/oid", "x/packed"):
    put("pointer", x.replace("/", "-"), read(home_b, "A", x))
put("pointer", "nine", bytes(9))

# ---- layout: paths of every layout, names, and near misses ----
names = ["x.serial", "x.oid", "x.packed",
         "o%s.c" % bm["objects"][5]["oid"],
         "o%s.%s" % (bm["objects"][5]["oid"],
                     bm["objects"][5]["revisions"][0]["serial"]),
         "t%s.%s" % (bm["x.serial"][:6], bm["x.serial"][6:])]
for li, l in enumerate(LAYOUTS):
    for ni, n in enumerate(names):
        put("layout", "%s-%d" % (l, ni), bytes([li]) + name_to_path(l, n).encode())
    put("layout", "%s-name" % l, bytes([li]) + names[4].encode())
bad = ["../x/serial", "/x/serial", "x/serial/", "x//serial", "x/./serial",
       name_to_path("bushy", names[4]) + "-1795671496-deleted",
       name_to_path("bushy", names[4]).lower(), "x/serial\n"]
for i, b in enumerate(bad):
    put("layout", "bad%d" % i, bytes([0x80 | (i & 3)]) + b.encode())

# ---- id: ids and md5s as requests carry them ----
for i, v in enumerate([bm["x.serial"], bm["x.serial"].lower(), "0" * 16,
                       "F" * 16, "040d44b2249ca6a", "040d44b2249ca6aag",
                       hashlib.md5(b"").hexdigest(),
                       hashlib.md5(b"x").hexdigest().upper(), "", "0"]):
    put("id", "id%d" % i, v.encode())

# ---- settings: the real file and variations ----
real = read(home_b, "config", "settings")
put("settings", "real", real)
put("settings", "real-flat", read(home_f, "config", "settings"))
put("settings", "real-identity", real + b"\n%%identity%%\n"
    + read(home_b, "config", "identity"))
put("settings", "bad-identity", real + b"\n%%identity%%\nABCDEF\n")
mini = (b"[structure]\nversion = 0.11\nformat = lawn\n[storage]\n"
        b"classname: Minimal\nwindow_size = 1_000\n[journal]\nbacklog=0\n")
put("settings", "mini", mini)
put("settings", "mini-ok", mini.replace(b"backlog=0", b"backlog=+2"))
put("settings", "default", b"[DEFAULT]\nsync = 0\n[filesystem]\n"
    b"[posix]\ndirsync = 1\n[structure]\nversion: 0.11\n"
    b"format: chunky\n[storage]\nclassname=Full\n")
put("settings", "continuation", b"[a]\nk = v\n  more\n\n  and more  \n"
    b"; comment\n# comment\n[b]\nk=\n")
put("settings", "dup-section", b"[a]\n[a]\n")
put("settings", "dup-key", b"[a]\nk=1\nk=2\n")
put("settings", "no-section", b"k = v\n")
put("settings", "no-delim", b"[a]\nkey\n")
put("settings", "ints", b"[journal]\nflush_interval = -9223372036854775808\n"
    b"flush_file_threshold = 9223372036854775808\nbacklog = 1__0\n")

# ---- snapshot_conf ----
for i, c in enumerate([b"direct\n", b"nodirect\n", b"nodirect\ndirect\n",
                       b"# comment\n\nhttp http://localhost:8080/ access\n",
                       b"http http://localhost:8080/ access\nnodirect\n",
                       b"http http://u@[::1]:1/x /nonexistent\ndirect\n",
                       b"direct extra\n\tdirect\t\r\n",
                       b"nodirect\0direct\n", b"bogus line\nnodirect x\n"]):
    put("snapshot_conf", "conf%d" % i, c)
for i, c in enumerate([b"control\n", b"control misc/control\nnodirect\n",
                       b"control /nonexistent\ndirect\n",
                       b"control a b\nnodirect\n"]):
    put("snapshot_conf", "control%d" % i, c)

# ---- control: request lines, replies; first byte odd = live server ----
for i, c in enumerate([b"\0status\n", b"\1status\n",
                       b"\1enter fz-1\nstatus\nleave fz-1\n",
                       b"\1enter fz-2\nenter again\n",
                       b"\1leave nobody\r\nstatus\r\n",
                       b"\1hello\n\nenter \nenter a b\n\xff\n",
                       b"\1enter " + b"x" * 300 + b"\n",
                       b"\0ok\nok user/x\nerror busy in use\nerror weird\n",
                       b"\0error state\nerror denied uid 1\nokay\n"]):
    put("control", "seed%d" % i, c)

# ---- serve: the recorded requests and variations ----
with open(os.path.join(fixtures, "pairs.json")) as f:
    pairs = json.load(f)
for p in pairs["pairs"]:
    sel = b"\0" if p["master"].startswith("bushy") else b"\1"
    put("serve", p["pair"], sel + p["request"].encode())
for sel, m, home in ((b"\0", bm, home_b), (b"\1", fm, home_f)):
    ident = m["identity"]
    put("serve", m["fixture"] + "-head",
        sel + m["request_if_used_as_replica"].encode())
    # one transaction back from the head: a one-transaction increment
    prev = m["chain"][1]
    t = [t for t in m["transactions"] if t["tid"] == prev][0]
    req = "replica request 0\n%s\n%s\n%s\n" % (ident, prev.lower(),
                                             t["file_md5"])
    put("serve", m["fixture"] + "-one", sel + req.encode())
    # relink: a reference that differs only in its previous pointer
    b = bytearray(read(home, t["path"]))
    b[24:32] = bytes(8)
    relink = "relink %s %s\n" % (hashlib.md5(bytes(b)).hexdigest(),
                                 "0" * 16)
    put("serve", m["fixture"] + "-relink", sel + (
        "replica request 0\n%s\n%s\n%s\n" % (ident, prev.lower(), "0" * 32)
        + relink).encode())
put("serve", "init", b"\0replica init 0\n")
put("serve", "zero", b"\0replica request 0\n%s\n%s\n%s\n" % (
    bm["identity"].encode(), b"0" * 16, hashlib.md5(b"").hexdigest().encode()))
put("serve", "short", b"\0replica request 0\n")
put("serve", "nul", b"\1replica request 0\n\0\n\n\n")

# ---- archive (and replica_pull): real streams and hostile ones ----
resp = os.path.join(tmp, "responses")
def resp_file(n):
    p = os.path.join(resp, n)
    return read(p) if os.path.exists(p) else None

basic_b = resp_file("bushy-basic.tar")
basic_f = resp_file("flat-basic.tar")
empty_b = resp_file("bushy-master.empty.tar")
empty_f = resp_file("flat-master.empty.tar")
init_b = resp_file("bushy-master.init.tar")

def ustar(members, end=True):
    """members: (name, data, type, extra-tarinfo-dict)"""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data, typ, extra in members:
            ti = tarfile.TarInfo(name)
            ti.type = typ
            ti.size = len(data) if typ == tarfile.REGTYPE else 0
            ti.mode = 0o640
            for k2, v2 in extra.items():
                setattr(ti, k2, v2)
            tf.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
        members_end = tf.offset
    b = bio.getvalue()
    # tarfile pads to 10240 bytes; no end: cut right after the last member
    return b if end else b[:members_end]

serial_b = read(home_b, "A", "x", "serial")
oid_b = read(home_b, "A", "x", "oid")
R = tarfile.REGTYPE
seeds = []
if basic_b:
    seeds += [("bushy-basic", 0x00 | (3 << 3), basic_b),
              ("bushy-basic-truncated", 0x00, basic_b[:len(basic_b) // 8])]
if basic_f:
    seeds += [("flat-basic", 0x01 | (6 << 3), basic_f)]
if empty_b:
    seeds += [("bushy-empty", 0x02, empty_b),
              ("bushy-empty-chunk1", 0x02 | (1 << 3), empty_b),
              ("bushy-empty-zeros", 0x02, empty_b + bytes(4096)),
              ("bushy-empty-extra", 0x02, empty_b + b"extra data"),
              ("bushy-empty-wrongbase", 0x00, empty_b)]
if empty_f:
    seeds += [("flat-empty", 0x03, empty_f)]
if init_b:
    seeds += [("bushy-init", 0x04, init_b)]
seeds += [
    ("dotdot", 0x02, ustar([("A/x/serial", serial_b, R, {}),
                            ("A/../x", b"1", R, {})])),
    ("absolute", 0x02, ustar([("/A/x/serial", serial_b, R, {})])),
    ("symlink", 0x02, ustar([("A/x/serial", b"", tarfile.SYMTYPE,
                              {"linkname": "/etc/passwd"})])),
    ("hardlink", 0x02, ustar([("A/x/serial", serial_b, R, {}),
                              ("A/x/oid", b"", tarfile.LNKTYPE,
                               {"linkname": "A/x/serial"})])),
    ("device", 0x02, ustar([("A/x/serial", b"", tarfile.CHRTYPE,
                             {"devmajor": 1, "devminor": 3})])),
    ("dir", 0x02, ustar([("A/x", b"", tarfile.DIRTYPE, {})])),
    ("big-x", 0x02, ustar([("A/x/serial", bytes(4096), R, {})])),
    ("no-end", 0x02, ustar([("A/x/serial", serial_b, R, {}),
                            ("A/x/oid", oid_b, R, {})], end=False)),
    ("handmade-empty", 0x02, ustar([("A/x/serial", serial_b, R, {}),
                                    ("A/x/oid", oid_b, R, {})])),
    ("init-config-only", 0x04, ustar([("config/settings",
                                       read(home_b, "config", "settings"), R, {}),
                                      ("config/identity",
                                       read(home_b, "config", "identity"), R, {})])),
    ("empty", 0x00, b""),
    ("zeros", 0x00, bytes(1024)),
]
for name, ctl, data in seeds:
    put("archive", name, bytes([ctl]) + data)
    if ctl & 4 == 0 and len(data) < 400000:
        put("replica_pull", name, bytes([ctl]) + data)

# archive only (bit 6: the replica promises md5s): the recorded increment
# under that policy, and with an x.oid of zero / a revision without md5
def tar_members(b):
    off, out = 0, []
    while off + 512 <= len(b) and b[off] != 0:
        size = int(b[off + 124:off + 136].split(b"\0")[0].strip() or b"0", 8)
        out.append((b[off:off + 100].split(b"\0")[0].decode(), off, size))
        off += 512 + (size + 511) // 512 * 512
    return out
if basic_b:
    ms = tar_members(basic_b)
    xo = [m for m in ms if m[0] == "A/x/oid"][0][1] + 512
    rev = [m for m in ms if m[0].startswith("A/o") and not m[0].endswith("/c")][0]
    zero_oid = basic_b[:xo] + bytes(8) + basic_b[xo + 8:]
    at = rev[1] + 512 + 40
    no_md5 = bytearray(basic_b[:at] + bytes(16) + basic_b[at + 16:])
    no_md5[rev[1] + 512 + rev[2] - 1] ^= 0x55
    for name, ctl, data in [("bushy-basic-md5", 0x40 | (3 << 3), basic_b),
                            ("bushy-xoid-zero", 0x40, zero_oid),
                            ("bushy-no-md5", 0x40, bytes(no_md5)),
                            ("bushy-no-md5-allowed", 0x00, bytes(no_md5))]:
        put("archive", name, bytes([ctl]) + data)

# ---- refscan: records whose references ZODB's referencesf recorded
# (refscan.json): every protocol and persistent id form, refused ones ----
with open(os.path.join(fixtures, "refscan.json")) as f:
    rs = json.load(f)
for c in rs["cases"]:
    if not c["name"].startswith("zodb-") or c["name"] < "zodb-0000000000000014":
        put("refscan", c["name"], bytes.fromhex(c["pickle"]))

PY

for d in "$out"/*; do
	printf '%s: %s seeds, %s bytes\n' "$(basename "$d")" \
		"$(ls "$d" | wc -l)" "$(cat "$d"/* | wc -c)"
done
