"""zodb_bench.py KIND DIR: one storage's figures through ZODB, as JSON.

KIND: dirstorage (this project's package), original (the original
DirectoryStorage, run with its own Python and ZODB: see zodb-run.sh) or
filestorage. DIR: a fresh directory for the storage.

Measured, fsync on for all three:
  commit1   commits/s, one object changed per transaction (ZODB
            transaction.commit through a Connection)
  commit10  commits/s, ten objects changed per transaction
  load_warm loads/s of every object's current revision through the
            storage's loadBefore (what ZODB 5's MVCC calls), files in the
            page cache
  load_cold the same on a storage opened afresh, its files dropped from
            the page cache (posix_fadvise DONTNEED on each, after fsync:
            only this storage's pages, not the whole machine's), before
            and after the open: no cache of a storage object helps
"""
import json
import os
import stat
import struct
import sys
import time

import transaction
import ZODB
from persistent.mapping import PersistentMapping

N_OBJECTS = 1000
N_COMMIT1 = 300
N_COMMIT10 = 150


def open_storage(kind, path, create=True):
    if kind == "dirstorage":
        from dirstorage import FullStorage
        return FullStorage(path, create=True)
    if kind == "filestorage":
        from ZODB.FileStorage import FileStorage
        os.makedirs(path, exist_ok=True)
        return FileStorage(os.path.join(path, "Data.fs"), create=create)
    if kind == "original":
        import subprocess
        if not os.path.exists(os.path.join(path, "config")):
            subprocess.run(["/root/ds-ref/bin/ref-mkds", path, "Full", "bushy"],
                           check=True, stdout=subprocess.DEVNULL)
        from DirectoryStorage.Storage import Storage
        return Storage(path)
    raise SystemExit("unknown kind " + kind)


def drop_cache(path):
    for d, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(d, f)
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue        # misc/control is a socket
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def main():
    kind, path = sys.argv[1], sys.argv[2]
    storage = open_storage(kind, path)
    db = ZODB.DB(storage, cache_size=100)
    conn = db.open()
    root = conn.root()
    objs = []
    for i in range(N_OBJECTS):
        root["o%04d" % i] = PersistentMapping(n=0, payload="x" * 200)
        if i % 100 == 99:
            transaction.commit()
    transaction.commit()
    objs = [root["o%04d" % i] for i in range(N_OBJECTS)]

    t0 = time.perf_counter()
    for i in range(N_COMMIT1):
        objs[i % N_OBJECTS]["n"] += 1
        transaction.commit()
    commit1 = N_COMMIT1 / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for i in range(N_COMMIT10):
        for j in range(10):
            objs[(i * 10 + j) % N_OBJECTS]["n"] += 1
        transaction.commit()
    commit10 = N_COMMIT10 / (time.perf_counter() - t0)

    oids = [o._p_oid for o in objs]
    before = struct.pack(">Q", struct.unpack(">Q",
                                             storage.lastTransaction())[0] + 1)
    conn.close()

    def loads():
        t0 = time.perf_counter()
        for oid in oids:
            storage.loadBefore(oid, before)
        return len(oids) / (time.perf_counter() - t0)

    loads()                     # page cache (and engine cache) warm
    load_warm = max(loads() for _ in range(3))
    if kind == "dirstorage":
        storage._engine.flush()   # journal into A/ before dropping pages
    db.close()
    # Cold: a fresh storage opened after this storage's files were
    # dropped from the page cache, so no cache of the storage object
    # (dirstorage's cache of current revisions, FileStorage's index is
    # rebuilt from Data.fs.index) has seen the records.
    drop_cache(path)
    storage = open_storage(kind, path, create=False)
    drop_cache(path)            # what the open itself read
    load_cold = loads()
    storage.close()
    print(json.dumps({"kind": kind, "commit1": round(commit1, 1),
                      "commit10": round(commit10, 1),
                      "load_warm": round(load_warm), "load_cold":
                      round(load_cold)}))


if __name__ == "__main__":
    main()
