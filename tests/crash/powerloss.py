#!/usr/bin/env python3
"""powerloss.py - simulated power loss (ALICE / CrashMonkey style) for the
crash suite (tests/crash/lib.sh, fault kind "powerloss"; tests/README.md).

A kill at call k leaves the page cache intact: everything the process wrote
is still there. A power cut keeps only what was made durable. So: record
the durable I/O calls of ONE clean run (src/io.c's trace, DS_IO_TRACE), then
for a crash point k rebuild, in a fresh directory, what the disk would hold
after a power cut right before call k, and let the scenario check its
invariants on that.

Usage:
  powerloss.py init ROOT TRACEDIR     before the run: copy ROOT (cp -a) to
                                      TRACEDIR/pristine, record its inodes
  powerloss.py points TRACEDIR        the crash points (call numbers) worth
                                      trying, the last one "after the last
                                      call"
  powerloss.py variants TRACEDIR K [MAX]   the distinct variants for point K
                                      (at most MAX: durable and all, then
                                      dir: and prefix: ones alternately,
                                      rotated by K)
  powerloss.py replay TRACEDIR K VARIANT OUTROOT   write the state after a
                                      power cut right before call K
                                      (OUTROOT: a new directory)
  powerloss.py replay-point TRACEDIR K MAX OUTDIR  the same for each of
                                      the variants at K (as listed by
                                      variants): OUTDIR/1, OUTDIR/2, ...;
                                      prints "I VARIANT" lines (one python
                                      start per crash point: the driver's)

The model (what a journaling filesystem such as ext4 with data=ordered
promises, made conservative where POSIX leaves it open):
  - Directories are objects with identities: a rename of a directory moves
    the object and everything in it (journal/ commits by renaming
    directories). Entries are (directory, name) -> file | directory. Each
    traced path is resolved in the VOLATILE tree (what the process saw) at
    the time of the call.
  - An entry operation (an open O_CREAT that creates a name, mkdir, rename,
    unlink, rmdir) is pending on its parent directory (a rename on both
    parents, as one journal transaction) and becomes durable when that
    directory is fsynced (for a rename: either parent, and then on both at
    once), or at syncfs. Nothing else orders them: a directory fsynced
    before its parent's new entry for it is durable is durable but
    unreachable (a real journaling fs commits its metadata in order, which
    would hide that; a per-directory model does not).
  - A file's content is durable as of its last fsync (the trace keeps a
    copy) or syncfs; a file in ROOT before the run starts with its pristine
    content durable. A file whose entry is durable but whose content never
    was comes out EMPTY (the classic zero-length file after a crash).
    O_TRUNC, ftruncate and writes after the last fsync change nothing
    durable (but the "all" variant applies the truncations).
  - syncfs makes everything under ROOT durable (the trace records the whole
    tree at that moment).
  - An entry whose directory is not durably reachable from ROOT is lost.
  - File modes: as of the last fsync or syncfs (fchmod is not traced),
    otherwise as at creation.
Variants (the un-synced remainder dropped, or applied in bad orders):
  durable    only what was durable
  all        every pending entry operation applied too, and so are the
             truncations (O_TRUNC, ftruncate) since a file's last durable
             content, but no unsynced data (new files empty): the metadata
             reached the disk, the data did not
  prefix:J   the pending entry operations applied in their order up to the
             J-th (1-based): an ordered metadata journal cut mid-way
  dir:D      only the pending operations of directory object D (and what
             they depend on: the mkdir of a directory they change, the
             emptying of a directory they remove): the disk wrote one
             directory's updates and not the others'
Fsyncs issued together (src/io.c, ds_io_fsync_many: a transaction's
journal files and its directory; one depth of a flush's directories) are
numbered one per member, in member order, before any of them runs, and
traced in that order once all have returned; nothing else starts before
the group returns. A crash point inside a group (before member k) is
replayed with members 1..k-1 durable and the others not: one of the
states a power cut during the group can leave (any subset of the members
may be durable then). Every group is followed by what depends on all of
its members (the rename of _temp to _done; the next depth, the rmdirs),
so no state where a later call's effect is durable and a member's is not
can arise.
Not modelled: torn or reordered writes inside a file (a file's content is
all of one fsync or of another), data of an unsynced file that happened to
reach the disk (we assume none did; ext4's data=ordered would often have
written it, so the model is pessimistic there), fs-specific ordering
guarantees beyond the above (ext4's auto_da_alloc, btrfs' log tree),
extended attributes, hard links, and anything outside ROOT.
"""
import hashlib
import os
import shutil
import sys


class Obj:
    __slots__ = ("oid", "isdir", "mode", "content", "cut")

    def __init__(self, oid, isdir, mode, content=None):
        self.oid = oid
        self.isdir = isdir
        self.mode = mode
        # files: None (never durable: empty), ("pristine", REL), ("blob", MD5)
        self.content = content
        # the shortest length a truncation gave the file since its content
        # was last durable (None: not truncated); the "all" variant cuts
        self.cut = None


class Op:
    __slots__ = ("seq", "n", "kind", "dirs", "args", "durable")

    def __init__(self, seq, n, kind, dirs, args):
        self.seq = seq
        self.n = n
        self.kind = kind        # create, mkdir, rename, unlink
        self.dirs = dirs        # the directory objects it is pending on
        self.args = args
        self.durable = False


class TraceError(Exception):
    pass


STATE_OPS = ("open", "fsync", "fsyncdir", "rename", "mkdir", "unlink",
             "rmdir", "syncfs")


def read_trace(tracedir):
    """The trace's lines as lists of words, in file order."""
    lines = []
    with open(os.path.join(tracedir, "trace"), encoding="ascii") as f:
        for raw in f:
            w = raw.split()
            if not w:
                continue
            if w[0] == "ABORT":
                raise TraceError("trace aborted: " + raw.strip())
            if not raw.endswith("\n"):
                raise TraceError("truncated trace line: " + raw)
            w[0] = int(w[0])
            lines.append(w)
    return lines


class Model:
    def __init__(self, tracedir):
        self.tracedir = tracedir
        with open(os.path.join(tracedir, "root"), encoding="ascii") as f:
            self.root = f.read().strip()
        self.objs = []
        self.pristine = {}      # dir oid -> {name: oid}, the starting tree
        self.ino = {}           # inode -> file oid
        rootobj = self.new(True, 0o755)
        self.pristine[rootobj.oid] = {}
        with open(os.path.join(tracedir, "pristine.list"),
                  encoding="ascii") as f:
            for raw in f:
                w = raw.split(" ", 3)
                rel = w[-1].rstrip("\n")
                if w[0] == "d" and rel == ".":
                    rootobj.mode = int(w[1], 8)
                    continue
                parent, name = self.split_rel(rel)
                if w[0] == "d":
                    o = self.new(True, int(w[1], 8))
                    self.pristine[o.oid] = {}
                else:
                    o = self.new(False, int(w[2], 8), ("pristine", rel))
                    self.ino[int(w[1])] = o.oid
                self.pristine[parent][name] = o.oid
        self.vol = {d: dict(e) for d, e in self.pristine.items()}
        self.ops = []

    def new(self, isdir, mode, content=None):
        o = Obj(len(self.objs), isdir, mode, content)
        self.objs.append(o)
        return o

    def split_rel(self, rel):
        """(parent dir oid, name) of a relative path in the pristine tree"""
        parts = rel.split("/")
        d = 0
        for p in parts[:-1]:
            d = self.pristine[d][p]
        return d, parts[-1]

    def resolve(self, path):
        """(parent dir oid, name, oid or None) of an absolute path in the
        volatile tree, or None when it is not under ROOT (or its parent
        is not a directory we know)."""
        path = os.path.normpath(path)
        if path == self.root:
            return None
        if not path.startswith(self.root + "/"):
            return None
        parts = path[len(self.root) + 1:].split("/")
        d = 0
        for p in parts[:-1]:
            c = self.vol.get(d, {}).get(p)
            if c is None or not self.objs[c].isdir:
                return None
            d = c
        return d, parts[-1], self.vol[d].get(parts[-1])

    def dir_of(self, path):
        path = os.path.normpath(path)
        if path == self.root:
            return 0
        r = self.resolve(path)
        if r is None or r[2] is None or not self.objs[r[2]].isdir:
            return None
        return r[2]

    def add_op(self, n, kind, dirs, args, durable=False):
        op = Op(len(self.ops), n, kind, dirs, args)
        op.durable = durable
        self.ops.append(op)

    def make_durable(self, pred):
        """Mark the pending ops matching pred durable."""
        for op in self.ops:
            if not op.durable and pred(op):
                op.durable = True

    def run(self, k):
        """Apply the trace's calls numbered below k."""
        for w in read_trace(self.tracedir):
            if w[0] < k:
                self.apply(w)

    def apply(self, w):
        n, op = w[0], w[1]
        if op == "open":
            ino, flags, mode, path = int(w[2]), w[3].split(","), \
                int(w[4], 8), w[5]
            if "dir" in flags:
                return
            r = self.resolve(path)
            if r is None:
                return
            d, name, oid = r
            if oid is None:
                if "creat" not in flags:
                    return
                o = self.new(False, mode)
                self.vol[d][name] = o.oid
                self.add_op(n, "create", (d,), (d, name, o.oid))
                oid = o.oid
            if not self.objs[oid].isdir:
                self.ino[ino] = oid
                if "trunc" in flags:
                    self.objs[oid].cut = 0
        elif op == "ftruncate":
            oid = self.ino.get(int(w[2]))
            if oid is not None:
                o = self.objs[oid]
                ln = int(w[3])
                o.cut = ln if o.cut is None else min(o.cut, ln)
        elif op == "fsync":
            ino, blob, mode, path = int(w[2]), w[3], int(w[4], 8), w[5]
            if blob == "-":
                return
            oid = self.ino.get(ino)
            if oid is None:
                r = self.resolve(path)
                oid = r[2] if r is not None else None
            if oid is None or self.objs[oid].isdir:
                return
            self.objs[oid].content = ("blob", blob)
            self.objs[oid].cut = None
            self.objs[oid].mode = mode
        elif op == "fsyncdir":
            d = self.dir_of(w[2])
            if d is not None:
                self.make_durable(lambda o: d in o.dirs)
        elif op == "mkdir":
            r = self.resolve(w[3])
            if r is None:
                return
            d, name, _ = r
            o = self.new(True, int(w[2], 8))
            self.vol[o.oid] = {}
            self.vol[d][name] = o.oid
            self.add_op(n, "mkdir", (d,), (d, name, o.oid))
        elif op in ("unlink", "rmdir"):
            r = self.resolve(w[2])
            if r is None or r[2] is None:
                return
            d, name, oid = r
            del self.vol[d][name]
            self.add_op(n, "unlink", (d,), (d, name, oid))
        elif op == "rename":
            rf, rt = self.resolve(w[2]), self.resolve(w[3])
            if rf is None or rf[2] is None:
                return
            df, nf, oid = rf
            del self.vol[df][nf]
            if rt is None:       # moved out of ROOT: gone for us
                self.add_op(n, "unlink", (df,), (df, nf, oid))
                return
            dt, nt, _ = rt
            self.vol[dt][nt] = oid
            self.add_op(n, "rename", tuple(sorted({df, dt})),
                        (df, nf, dt, nt, oid))
        elif op == "syncfs":
            for o in self.ops:
                o.durable = True
        elif op == "cp":
            self.checkpoint(n, w)
        # write, cpend: nothing durable

    def checkpoint(self, n, w):
        """A line of the syncfs checkpoint: this is on disk now."""
        path = w[-1]
        if os.path.normpath(path) == self.root:
            if w[2] == "d":
                self.objs[0].mode = int(w[3], 8)
            return
        r = self.resolve(path)
        if r is None:
            return
        d, name, oid = r
        if w[2] == "d":
            if oid is None:     # a directory the trace did not show made
                o = self.new(True, int(w[3], 8))
                self.vol[o.oid] = {}
                self.vol[d][name] = o.oid
                self.add_op(n, "mkdir", (d,), (d, name, o.oid), True)
            else:
                self.objs[oid].mode = int(w[3], 8)
        else:
            ino, mode, blob = int(w[3]), int(w[4], 8), w[5]
            if oid is None:
                o = self.new(False, mode)
                self.vol[d][name] = o.oid
                self.add_op(n, "create", (d,), (d, name, o.oid), True)
                oid = o.oid
            self.ino[ino] = oid
            self.objs[oid].content = ("blob", blob)
            self.objs[oid].cut = None
            self.objs[oid].mode = mode

    # ---- variants ----
    def pending(self):
        return [op for op in self.ops if not op.durable]

    def pending_dirs(self):
        ds = []
        for op in self.pending():
            for d in op.dirs:
                if d not in ds:
                    ds.append(d)
        return ds

    def selected(self, variant):
        """The ops a variant applies."""
        pend = self.pending()
        if variant == "durable":
            extra = []
        elif variant == "all":
            extra = pend
        elif variant.startswith("prefix:"):
            j = int(variant[7:])
            if not 0 <= j <= len(pend):
                raise TraceError("%s: %d pending operations" %
                                 (variant, len(pend)))
            extra = pend[:j]
        elif variant.startswith("dir:"):
            d = int(variant[4:])
            extra = self.with_deps(pend, [op for op in pend if d in op.dirs])
        else:
            raise TraceError("unknown variant " + variant)
        chosen = {op.seq for op in extra}
        return [op for op in self.ops if op.durable or op.seq in chosen]

    def with_deps(self, pend, ops):
        """ops and, transitively, the earlier pending ops they depend on:
        the mkdir of a directory they change, and for the removal of a
        directory the changes inside it (it was empty). Directories are
        written back in any order, but not a change before what it
        depends on: a journaling fs, like the rename atomicity assumes,
        cannot show the entries of an unlinked new directory or a
        removed directory that still had entries."""
        chosen = {op.seq for op in ops}
        work = list(ops)
        while work:
            op = work.pop()
            gone = op.args[2] if op.kind == "unlink" else None
            for e in pend:
                if e.seq >= op.seq or e.seq in chosen:
                    continue
                if (e.kind == "mkdir" and e.args[2] in op.dirs) or \
                        (gone is not None and gone in e.dirs):
                    chosen.add(e.seq)
                    work.append(e)
        return [op for op in pend if op.seq in chosen]

    def durable_tree(self, ops):
        t = {d: dict(e) for d, e in self.pristine.items()}
        for op in ops:
            a = op.args
            if op.kind in ("create", "mkdir"):
                t.setdefault(a[0], {})[a[1]] = a[2]
                if op.kind == "mkdir":
                    t.setdefault(a[2], {})
            elif op.kind == "unlink":
                if t.get(a[0], {}).get(a[1]) == a[2]:
                    del t[a[0]][a[1]]
            elif op.kind == "rename":
                if t.get(a[0], {}).get(a[1]) == a[4]:
                    del t[a[0]][a[1]]
                t.setdefault(a[2], {})[a[3]] = a[4]
                if self.objs[a[4]].isdir:
                    t.setdefault(a[4], {})
        return t

    def listing(self, t):
        """(relative path, oid) of everything reachable from ROOT"""
        out = []
        stack = [(0, "")]
        seen = set()
        while stack:
            d, rel = stack.pop()
            if d in seen:       # a directory cycle cannot be on disk
                continue
            seen.add(d)
            for name in sorted(t.get(d, {})):
                oid = t[d][name]
                p = rel + "/" + name if rel else name
                out.append((p, oid))
                if self.objs[oid].isdir:
                    stack.append((oid, p))
        return sorted(out)

    def signature(self, variant):
        h = hashlib.md5()
        for p, oid in self.listing(self.durable_tree(self.selected(variant))):
            o = self.objs[oid]
            h.update(repr((p, o.isdir, o.mode,
                           None if o.isdir else o.content,
                           self.cut_of(o, variant))).encode())
        h.update(repr(self.objs[0].mode).encode())
        return h.hexdigest()

    def variants(self, limit=0, k=0):
        cands = ["durable"]
        npend = len(self.pending())
        if npend:
            cands.append("all")
            cands += ["prefix:%d" % j for j in range(1, npend)]
            if len(self.pending_dirs()) > 1:
                cands += ["dir:%d" % d for d in self.pending_dirs()]
        seen = set()
        out = []
        for v in cands:
            s = self.signature(v)
            if s not in seen:
                seen.add(s)
                out.append(v)
        if limit and len(out) > limit:
            # durable and all; then, always, the directories of the
            # newest pending operation alone: the disk wrote the last
            # metadata update before the earlier ones (a "commit record
            # before its data" bug, F6 in tests/README.md, is exactly
            # this); then dir: and prefix: variants alternately (dir:
            # first: the harsher adversary), each list rotated by the
            # crash point so that neighbouring points try others
            def rot(vs):
                return vs[k % len(vs):] + vs[:k % len(vs)] if vs else []
            newest = []
            for op in reversed(self.pending()):
                if op.dirs:
                    newest = ["dir:%d" % d for d in op.dirs
                              if "dir:%d" % d in out[2:]]
                    break
            dirs = rot([v for v in out[2:] if v.startswith("dir:")
                        and v not in newest])
            pres = rot([v for v in out[2:] if v.startswith("prefix:")])
            mix = list(newest)
            for i in range(max(len(dirs), len(pres))):
                mix += dirs[i:i + 1] + pres[i:i + 1]
            out = out[:2] + mix[:max(limit - 2, 0)]
        return out

    def cut_of(self, o, variant):
        """the length the file is cut to in this variant, or None"""
        if variant == "all" and not o.isdir and o.cut is not None:
            return o.cut
        return None

    def materialise(self, variant, outroot):
        t = self.durable_tree(self.selected(variant))
        os.mkdir(outroot)
        dirs = [("", 0)]
        for p, oid in self.listing(t):
            o = self.objs[oid]
            dst = os.path.join(outroot, p)
            if o.isdir:
                os.mkdir(dst, 0o700)
                dirs.append((p, oid))
                continue
            c = o.content
            if c is None:
                open(dst, "wb").close()
            elif c[0] == "pristine":
                shutil.copyfile(os.path.join(self.tracedir, "pristine",
                                             c[1]), dst)
            else:
                shutil.copyfile(os.path.join(self.tracedir, "blobs", c[1]),
                                dst)
            cut = self.cut_of(o, variant)
            if cut is not None and cut < os.path.getsize(dst):
                os.truncate(dst, cut)
            os.chmod(dst, o.mode)
        for p, oid in reversed(dirs):
            os.chmod(os.path.join(outroot, p) if p else outroot,
                     self.objs[oid].mode)


def cmd_init(root, tracedir):
    root = os.path.normpath(os.path.abspath(root))
    os.makedirs(os.path.join(tracedir, "blobs"), exist_ok=True)
    pristine = os.path.join(tracedir, "pristine")
    if os.path.exists(pristine):
        shutil.rmtree(pristine)
    import subprocess
    subprocess.run(["cp", "-a", root, pristine], check=True)
    with open(os.path.join(tracedir, "root"), "w", encoding="ascii") as f:
        f.write(root + "\n")
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        st = os.lstat(dirpath)
        lines.append("d %o %s\n" % (st.st_mode & 0o7777, rel))
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            r = os.path.relpath(p, root)
            if not os.path.isfile(p) or os.path.islink(p):
                raise TraceError("%s: only directories and regular files "
                                 "are modelled" % p)
            lines.append("f %d %o %s\n" % (st.st_ino, st.st_mode & 0o7777, r))
    for ln in lines:
        if any(c <= " " or c > "~" for c in ln.rstrip("\n").split(" ", 3)[-1]):
            raise TraceError("odd byte in a path: " + ln)
    with open(os.path.join(tracedir, "pristine.list"), "w",
              encoding="ascii") as f:
        f.writelines(lines)


def cmd_points(tracedir):
    m = Model(tracedir)
    pts = set()
    last = 0
    for w in read_trace(tracedir):
        last = max(last, w[0])
        if w[1] in STATE_OPS and any(
                (os.path.normpath(x) + "/").startswith(m.root + "/")
                for x in w[2:] if x.startswith("/")):
            pts.add(w[0])
    pts.add(last + 1)
    for p in sorted(pts):
        print(p)


def main(argv):
    try:
        if len(argv) == 3 and argv[0] == "init":
            cmd_init(argv[1], argv[2])
        elif len(argv) == 2 and argv[0] == "points":
            cmd_points(argv[1])
        elif len(argv) in (3, 4) and argv[0] == "variants":
            m = Model(argv[1])
            m.run(int(argv[2]))
            for v in m.variants(int(argv[3]) if len(argv) == 4 else 0,
                                int(argv[2])):
                print(v)
        elif len(argv) == 5 and argv[0] == "replay-point":
            m = Model(argv[1])
            m.run(int(argv[2]))
            os.mkdir(argv[4])
            for i, v in enumerate(m.variants(int(argv[3]), int(argv[2])), 1):
                m.materialise(v, os.path.join(argv[4], str(i)))
                print(i, v)
        elif len(argv) == 5 and argv[0] == "replay":
            m = Model(argv[1])
            m.run(int(argv[2]))
            m.materialise(argv[3], argv[4])
        elif len(argv) == 3 and argv[0] == "pending":
            # for debugging: the pending entry operations at point K
            m = Model(argv[1])
            m.run(int(argv[2]))
            for op in m.pending():
                print(op.n, op.kind, op.args)
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    except (TraceError, OSError, ValueError, KeyError, IndexError) as e:
        print("powerloss.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
