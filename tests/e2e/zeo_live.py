"""ZODB side of t_zeo_live.sh: ZEO clients of the served storage, and the
comparisons of a replica (or a restored backup) with it.

usage: zeo_live.py init PORT
       zeo_live.py writer PORT NAME STOPFILE PROGRESSFILE
       zeo_live.py pack PORT TIDHEX
       zeo_live.py compare PORT MASTERDIR COPYDIR
       zeo_live.py equal MASTERDIR COPYDIR

init: the shared OOBTree, a BTrees.Length counter, one OOBTree per writer.
writer: commits until STOPFILE exists; each transaction adds a key to the
  shared tree, increments the counter and replaces the writer's
  "garbage" object (the old one becomes unreachable: pack has work);
  ConflictErrors are retried; about 5 a second. PROGRESSFILE gets the number committed
  after each commit; the last line printed is a JSON summary.
pack: DB.pack through ZEO at one second before TIDHEX (a replica's last
  transaction: history back to it is kept, so the replica can go on).
compare: COPYDIR (opened read-only with dirstorage) against the live
  master through ZEO at the copy's last transaction T: every transaction
  of the copy not older than the master's x.packed has the same user,
  description, extension and records in the master; every master
  transaction up to T is in the copy; every object of the copy loads in
  the master as of T with the same data and serial (or, after a pack,
  its revision at T was older than x.packed and superseded).
equal: both closed: the same last transaction and every object's
  current data and serial equal.
"""
import json
import os
import sys
import time

import transaction
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from persistent.mapping import PersistentMapping
from persistent.TimeStamp import TimeStamp
from ZODB import DB
from ZODB.POSException import ConflictError, POSKeyError
from ZODB.utils import p64, u64

from dirstorage import FullStorage


def client(port, **kw):
    from ZEO.ClientStorage import ClientStorage
    return ClientStorage(("127.0.0.1", port), wait_timeout=120, **kw)


def init(port):
    db = DB(client(port))
    with db.transaction() as conn:
        root = conn.root()
        root["tree"] = OOBTree()
        root["count"] = Length()
        root["w-a"] = OOBTree()
        root["w-b"] = OOBTree()
    db.close()


def writer(port, name, stopfile, progress):
    db = DB(client(port))
    conn = db.open()
    n = conflicts = 0
    while not os.path.exists(stopfile):
        try:
            root = conn.root()
            root["tree"]["%s-%06d" % (name, n)] = n
            root["count"].change(1)
            mine = root["w-" + name]
            mine["garbage"] = PersistentMapping({"n": n, "pad": "x" * 200})
            mine["last"] = n
            transaction.get().note("%s %d" % (name, n))
            transaction.commit()
        except ConflictError:
            transaction.abort()
            conflicts += 1
            continue
        n += 1
        # paced (5 a second): the test is about commits going on during
        # each step, and the comparisons read the whole history
        time.sleep(0.2)
        with open(progress + ".tmp", "w") as f:
            f.write("%d\n" % n)
        os.rename(progress + ".tmp", progress)
    transaction.abort()
    conn.sync()
    root = conn.root()
    mine = sorted(k for k in root["tree"].keys() if k.startswith(name))
    print(json.dumps({"name": name, "committed": n, "conflicts": conflicts,
                      "keys": len(mine), "count": root["count"].value}))
    conn.close()
    db.close()
    if len(mine) != n:
        sys.exit("writer %s: %d keys for %d commits" % (name, len(mine), n))


def pack(port, tidhex):
    t = TimeStamp(bytes.fromhex(tidhex)).timeTime() - 1.0
    db = DB(client(port))
    db.pack(t)
    db.close()
    print("packed at %.3f" % t)


def _records(txn):
    return [(r.oid, r.data, r.data_txn) for r in txn]


def compare(port, master, copy):
    with open(os.path.join(master, "A", "x", "packed"), "rb") as f:
        packed = f.read()
    rs = FullStorage(copy, read_only=True)
    cs = client(port, read_only=True)
    try:
        last = rs.lastTransaction()
        mtx = {}
        for t in cs.iterator(None, last):
            mtx[t.tid] = (t.user, t.description, t.extension_bytes
                          if hasattr(t, "extension_bytes") else t.extension,
                          _records(t))
        oids = set()
        ntx = 0
        rtids = set()
        for t in rs.iterator():
            recs = _records(t)
            rtids.add(t.tid)
            oids.update(r[0] for r in recs)
            if t.tid < packed and t.tid not in mtx:
                continue   # removed by the master's pack
            m = mtx.get(t.tid)
            assert m is not None, "transaction %s missing in the master" \
                % t.tid.hex()
            ext = t.extension_bytes if hasattr(t, "extension_bytes") \
                else t.extension
            assert (t.user, t.description, ext) == m[:3], t.tid.hex()
            if t.tid >= packed:
                assert recs == m[3], "records of %s differ" % t.tid.hex()
            else:
                assert set(m[3]) <= set(recs), t.tid.hex()
            ntx += 1
        extra = set(mtx) - rtids
        assert not extra, "master transactions not in the copy: %s" % [
            x.hex() for x in sorted(extra)]
        before = p64(u64(last) + 1)
        nobj = gone = 0
        for oid in sorted(oids):
            data, serial = rs.load(oid)
            try:
                m = cs.loadBefore(oid, before)
            except POSKeyError:
                m = None
            if m is None:
                # only a pack explains it: superseded, older than x.packed
                assert serial < packed, "oid %s missing in the master" % (
                    oid.hex())
                gone += 1
                continue
            assert (m[0], m[1]) == (data, serial), "oid %s differs at %s" % (
                oid.hex(), last.hex())
            nobj += 1
        assert nobj > 0 and ntx > 0
        print(json.dumps({"tid": last.hex(), "transactions": ntx,
                          "objects": nobj, "packed_away": gone}))
    finally:
        cs.close()
        rs.close()


def equal(master, copy):
    ms = FullStorage(master, read_only=True)
    rs = FullStorage(copy, read_only=True)
    try:
        assert ms.lastTransaction() == rs.lastTransaction()
        oids = set()
        for st in (ms, rs):
            for t in st.iterator():
                oids.update(r.oid for r in t)
        n = 0
        for oid in sorted(oids):
            try:
                m = ms.load(oid)
            except POSKeyError:
                # unreachable, removed by the master's pack
                continue
            assert rs.load(oid) == m, oid.hex()
            n += 1
        rs.close()
        db = DB(ms)
        with db.transaction() as conn:
            keys = len(conn.root()["tree"])
            count = conn.root()["count"].value
        db.close()
        # each writer's transaction added one key and one increment
        assert keys == count, (keys, count)
        print(json.dumps({"tid": ms.lastTransaction().hex(), "objects": n,
                          "keys": keys}))
    finally:
        ms.close()
        rs.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "init":
        init(int(args[0]))
    elif cmd == "writer":
        writer(int(args[0]), args[1], args[2], args[3])
    elif cmd == "pack":
        pack(int(args[0]), args[1])
    elif cmd == "compare":
        compare(int(args[0]), args[1], args[2])
    elif cmd == "equal":
        equal(args[0], args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
