"""The extension and the package's own behaviour, beyond ZODB's suite:
the GIL is released inside engine calls, errors map to ZODB's exceptions,
a closed storage refuses calls,
the ZConfig component opens a storage, and restore keeps tids.
"""
import os
import re
import threading

import pytest
import transaction
from persistent.mapping import PersistentMapping
from ZODB import DB
from ZODB import POSException
from ZODB.config import storageFromString
from ZODB.Connection import TransactionMetaData
from ZODB.tests.StorageTestBase import zodb_pickle
from ZODB.tests.MinPO import MinPO
from ZODB.utils import p64
from ZODB.utils import z64

import dirstorage
import dirstorage._engine as engine
from dirstorage import FullStorage

SRC = os.environ.get("DS_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))


def test_engine_version_is_the_projects():
    """The version is defined once, by CMakeLists.txt's project() line:
    the engine the extension links reports that one."""
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"^project\(dirstorage VERSION ([0-9.]+)", f.read(),
                      re.M)
    assert m is not None
    assert engine.ENGINE_VERSION == m.group(1)


def test_gil_released_while_engine_waits(tmp_path):
    """A second begin() waits inside the engine for the first transaction
    to end. Were the GIL held during that wait, this thread could never
    finish the first transaction: the join would time out."""
    home = str(tmp_path / "ds")
    engine.create(home)
    s = engine.Storage(home)
    t1 = s.begin(b"u", b"d", b"")
    got = {}

    def second():
        t2 = s.begin(b"u2", b"d2", b"")
        got["tid"] = t2.tid
        t2.abort()

    th = threading.Thread(target=second)
    th.start()
    # the other thread is (or soon will be) blocked in the engine; we
    # still run Python code and engine calls here
    oid = s.new_oid()
    t1.store(oid, z64, b"data")
    tid1 = t1.finish()
    th.join(60)
    assert not th.is_alive(), "second begin never returned"
    assert got["tid"] > tid1
    assert s.load(oid) == (b"data", tid1)
    s.close()


def test_errors_and_statuses(tmp_path):
    home = str(tmp_path / "ds")
    s = FullStorage(home, create=True)
    with pytest.raises(POSException.POSKeyError):
        s.load(p64(42))
    with pytest.raises(POSException.POSKeyError):
        s.loadSerial(p64(42), p64(1))
    with pytest.raises(POSException.POSKeyError):
        s.history(p64(42))
    # a stale serial: ConflictError (MinPO cannot resolve)
    oid = s.new_oid()
    t = TransactionMetaData()
    s.tpc_begin(t)
    s.store(oid, z64, zodb_pickle(MinPO(1)), "", t)
    s.tpc_vote(t)
    tid = s.tpc_finish(t)
    t = TransactionMetaData()
    s.tpc_begin(t)
    s.store(oid, tid, zodb_pickle(MinPO(2)), "", t)
    s.tpc_vote(t)
    s.tpc_finish(t)
    t = TransactionMetaData()
    s.tpc_begin(t)
    with pytest.raises(POSException.ConflictError):
        s.store(oid, tid, zodb_pickle(MinPO(3)), "", t)
    s.tpc_abort(t)
    # engine errors name the file or object
    with pytest.raises(engine.Error) as e:
        engine.Storage(home)          # locked by s
    assert e.value.args[0] == engine.DS_ELOCKED
    assert home in e.value.args[1]
    with pytest.raises(dirstorage.DirectoryStorageError) as e:
        FullStorage(str(tmp_path / "nothing"))
    assert "nothing" in str(e.value)
    s.close()
    with pytest.raises(ValueError):
        s._engine.load(oid)


def test_read_only(tmp_path):
    home = str(tmp_path / "ds")
    FullStorage(home, create=True).close()
    s = FullStorage(home, read_only=True)
    assert s.isReadOnly()
    with pytest.raises(POSException.ReadOnlyError):
        s.tpc_begin(TransactionMetaData())
    s.close()
    with pytest.raises(dirstorage.DirectoryStorageError):
        FullStorage(str(tmp_path / "new"), create=True, read_only=True)


def test_zconfig_component(tmp_path):
    home = str(tmp_path / "ds")
    s = storageFromString("""
        %%import dirstorage
        <dirstorage main>
          path %s
          create true
          format flat
        </dirstorage>
    """ % home)
    assert isinstance(s, FullStorage)
    assert s.getName() == "main"
    db = DB(s)
    conn = db.open()
    conn.root()["a"] = 1
    transaction.commit()
    conn.close()
    db.close()
    with open(os.path.join(home, "config", "settings")) as f:
        assert "format: flat" in f.read()
    s = storageFromString("""
        %%import dirstorage
        <dirstorage>
          path %s
          read-only true
        </dirstorage>
    """ % home)
    assert s.isReadOnly()
    assert DB(s).open().root()["a"] == 1
    s.close()


def test_restore_keeps_tid_and_refuses_older(tmp_path):
    s = FullStorage(str(tmp_path / "ds"), create=True)
    t = TransactionMetaData(u"restorer", u"copied")
    tid = p64(0x0400000000000000)
    s.tpc_begin(t, tid)
    s.restore(p64(5), tid, b"five", "", None, t)
    s.restore(p64(6), tid, None, "", None, t)   # creation undone
    s.tpc_vote(t)
    assert s.tpc_finish(t) == tid
    assert s.load(p64(5)) == (b"five", tid)
    with pytest.raises(POSException.POSKeyError):
        s.load(p64(6))
    assert s.new_oid() == p64(7)          # x.oid rose to the restored 6
    t = TransactionMetaData()
    with pytest.raises(dirstorage.DirectoryStorageError) as e:
        s.tpc_begin(t, tid)
    assert "not later than" in str(e.value)
    # the storage is still usable: the commit lock was released
    t = TransactionMetaData()
    s.tpc_begin(t)
    s.tpc_abort(t)
    s.close()


def test_last_invalidations(tmp_path):
    """What a ZEO server asks at start to keep reconnecting clients'
    caches: the newest transactions with their oids, oldest first."""
    s = FullStorage(str(tmp_path / "ds"), create=True)
    assert s.lastInvalidations(10) == []
    tids = []
    oids = [s.new_oid() for _ in range(3)]
    for i in range(3):
        t = TransactionMetaData()
        s.tpc_begin(t)
        s.store(oids[i], z64, zodb_pickle(MinPO(i)), "", t)
        if i:
            s.store(oids[0], tids[0] if i == 1 else tids[1],
                    zodb_pickle(MinPO(10 + i)), "", t)
        s.tpc_vote(t)
        tids.append(s.tpc_finish(t))
    assert s.lastInvalidations(2) == [(tids[1], [oids[1], oids[0]]),
                                      (tids[2], [oids[2], oids[0]])]
    assert [t for t, _ in s.lastInvalidations(100)] == tids
    s.close()


def test_control_socket_default_and_off(tmp_path):
    """A writable FullStorage listens on misc/control unless control=False
    (also through ZConfig); a read-only one never does."""
    import stat
    path = str(tmp_path / "s")
    s = dirstorage.FullStorage(path, create=True, sync=False)
    try:
        ctl = os.path.join(path, "misc", "control")
        assert stat.S_ISSOCK(os.lstat(ctl).st_mode)
    finally:
        s.close()
    s = dirstorage.FullStorage(path, sync=False, control=False)
    try:
        assert not os.path.exists(os.path.join(path, "misc", "control"))
    finally:
        s.close()
    s = storageFromString("""
        %%import dirstorage
        <dirstorage>
          path %s
          control false
        </dirstorage>
        """ % path)
    try:
        assert not os.path.exists(os.path.join(path, "misc", "control"))
    finally:
        s.close()
