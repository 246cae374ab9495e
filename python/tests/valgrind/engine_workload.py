"""A workload over every call of dirstorage._engine, run under valgrind
by check_engine_memory.py: commits, restores, undo, every read, errors,
abort, a transaction dropped without finish, close."""
import shutil
import sys

import dirstorage._engine as e

home = sys.argv[1]
shutil.rmtree(home, ignore_errors=True)
e.create(home)
s = e.Storage(home)
z = b"\0" * 8
tid = None
for i in range(20):
    t = s.begin(b"user", b"description", b"ext")
    oid = s.new_oid()
    t.store(oid, z, b"data %d" % i)
    t.restore(s.new_oid(), t.tid, None, None)
    tid = t.finish()
    s.load(oid)
    s.load_serial(oid, tid)
    s.history(oid)
    s.txn_info(tid)
    s.tids()
    s.revision(oid, tid)
    s.current_serial(oid)
    for call in (lambda: s.load_before(oid, tid),
                 lambda: s.load(b"\0\0\0\0\0\0\1\0"),
                 lambda: s.txn_info(b"\0\0\0\0\0\0\0\1"),
                 lambda: s.begin(b"u", b"d", b"", tid)):
        try:
            call()
        except e.Error:
            pass
t = s.begin(b"u", b"d", b"")
t.undo(tid)
t.vote()
t.finish()
s.begin(b"u", b"d", b"").abort()
t = s.begin(b"u", b"d", b"")
del t                       # dealloc aborts it
s.config()
s.snapshot_code()
s.save_oid()
s.flush()
s.close()
try:
    e.Storage(home + "-missing")
except e.Error:
    pass
