"""FullStorage.pack(t, referencesf) through ZODB: the engine's pack (the
original Full storage's semantics, src/pack.c) removes garbage and old
revisions, records x.packed, and runs online: threads keep committing
through their own connections while ZODB packs, every commit survives,
and the result checks clean with `ds check`. Its refusals change nothing.
"""
import os
import subprocess
import threading
import time

import pytest
import transaction
from BTrees.OOBTree import OOBTree
from persistent.mapping import PersistentMapping
from ZODB import DB
from ZODB import POSException
from ZODB.serialize import referencesf

import dirstorage
from dirstorage import DirectoryStorageError, FullStorage, _engine

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("DS_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    HERE))
DS_BIN = os.environ.get("DS_BIN") or os.path.join(SRC, "build", "ds")


def _mkds(path, min_pack_time=0):
    """A new storage whose pack may go up to now (min_pack_time 0)."""
    _engine.create(path, "bushy", "Full")
    settings = os.path.join(path, "config", "settings")
    with open(settings) as f:
        text = f.read()
    assert "\nmin_pack_time: 600\n" in text
    with open(settings, "w") as f:
        f.write(text.replace("\nmin_pack_time: 600\n",
                             "\nmin_pack_time: %d\n" % min_pack_time))


def _check(path):
    r = subprocess.run([DS_BIN, "check", path], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 problems" in r.stdout, r.stdout
    return r.stdout


def _files(path):
    out = set()
    for d, _dirs, files in os.walk(os.path.join(path, "A")):
        out.update(os.path.relpath(os.path.join(d, f), path) for f in files)
    return out


def test_pack_removes_garbage_and_old_revisions(tmp_path):
    path = str(tmp_path / "ds")
    _mkds(path)
    db = DB(FullStorage(path))
    storage = db.storage
    try:
        with db.transaction() as conn:
            conn.root()["keep"] = PersistentMapping({"v": 0})
            conn.root()["drop"] = PersistentMapping({"v": 0})
        with db.transaction() as conn:
            drop_oid = conn.root()["drop"]._p_oid
            keep_oid = conn.root()["keep"]._p_oid
        for i in range(1, 4):
            with db.transaction() as conn:
                conn.root()["keep"]["v"] = i
        old_serial = storage.history(keep_oid, 10)[-1]["tid"]
        with db.transaction() as conn:
            del conn.root()["drop"]
        assert storage.load(drop_oid)      # still there before the pack
        last = storage.lastTransaction()
        storage._engine.flush()
        deleted_before = [f for f in _files(path) if f.endswith("-deleted")]
        assert deleted_before == []
        time.sleep(0.01)
        db.pack()
        stats = storage._pack_stats
        assert stats["files_removed"] > 0, stats
        # unreachable object gone, old revisions gone, the current kept
        with pytest.raises(POSException.POSKeyError):
            storage.load(drop_oid)
        with pytest.raises(POSException.POSKeyError):
            storage.loadSerial(keep_oid, old_serial)
        with db.transaction() as conn:
            assert conn.root()["keep"]["v"] == 3
            assert "drop" not in conn.root()
        assert storage.lastTransaction() == last
        assert storage._engine.last_pack() == stats["packed"]
        assert stats["packed"] > old_serial
        # what the original leaves: renamed *-<unixtime>-deleted
        assert any(f.endswith("-deleted") for f in _files(path))
        # commits go on after the pack
        with db.transaction() as conn:
            conn.root()["after"] = 1
    finally:
        db.close()
    out = _check(path)
    assert "pack leftovers" in out or "leftover" in out, out


def test_pack_refusals_change_nothing(tmp_path):
    path = str(tmp_path / "ds")
    _mkds(path)
    db = DB(FullStorage(path))
    storage = db.storage
    try:
        with db.transaction() as conn:
            conn.root()["x"] = PersistentMapping()
        with db.transaction() as conn:
            conn.root()["x"]["y"] = 1
        storage._engine.flush()
        before = _files(path)
        # without garbage collection: not something this storage does
        with pytest.raises(dirstorage.PackNotSupported) as e:
            storage.pack(time.time(), referencesf, gc=False)
        assert isinstance(e.value, POSException.Unsupported)
        assert "gc=False" in str(e.value)
        assert _files(path) == before
        # while someone else holds snapshot mode: busy, as the original
        storage.enter_snapshot("backup")
        try:
            with pytest.raises(DirectoryStorageError) as e:
                storage.pack(time.time(), referencesf)
            assert e.value.status == _engine.DS_EBUSY
        finally:
            storage.leave_snapshot("backup")
        storage._engine.flush()
        assert _files(path) == before
        assert storage._engine.last_pack() == b"\0" * 8
    finally:
        db.close()
    ro = FullStorage(path, read_only=True)
    try:
        with pytest.raises(POSException.ReadOnlyError):
            ro.pack(time.time(), referencesf)
    finally:
        ro.close()


def test_pack_keeps_min_pack_time(tmp_path):
    """[storage] min_pack_time (600 s by default) holds the pack time
    back: a pack now removes nothing committed in the last ten minutes,
    and x.packed stays before the last transaction."""
    path = str(tmp_path / "ds")
    _mkds(path, min_pack_time=600)
    db = DB(FullStorage(path))
    try:
        with db.transaction() as conn:
            conn.root()["x"] = PersistentMapping()
        with db.transaction() as conn:
            del conn.root()["x"]
        db.storage._engine.flush()
        before = _files(path)
        db.pack()
        db.storage._engine.flush()
        assert _files(path) == before
        assert db.storage._pack_stats["files_removed"] == 0
        assert db.storage._engine.last_pack() < db.storage.lastTransaction()
    finally:
        db.close()
    _check(path)


def test_pack_while_committing(tmp_path):
    """ZODB packs (DB.pack from the main thread, several times) while
    three threads commit through their own connections, each to its own
    tree and to a shared one (conflicts retried). Every commit is there
    afterwards, the garbage each thread makes (subtrees dropped from its
    tree) is gone, and `ds check` accepts the storage."""
    path = str(tmp_path / "ds")
    _mkds(path)
    db = DB(FullStorage(path))
    n = 40
    with db.transaction() as conn:
        conn.root()["shared"] = OOBTree()
        for w in range(3):
            conn.root()["w%d" % w] = OOBTree()
    errors = []
    done = []

    def worker(w):
        try:
            conn = db.open()
            for i in range(n):
                while True:
                    try:
                        root = conn.root()
                        mine = root["w%d" % w]
                        # a new object each time; the previous one
                        # becomes garbage
                        mine["garbage"] = PersistentMapping({"i": i})
                        mine["%03d" % i] = i
                        root["shared"]["%d-%03d" % (w, i)] = i
                        transaction.get().note("w%d %d" % (w, i))
                        transaction.commit()
                        break
                    except POSException.ConflictError:
                        transaction.abort()
            conn.close()
            done.append(w)
        except Exception as e:   # reported by the main thread
            errors.append(repr(e))
            transaction.abort()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    packs = 0
    try:
        while any(t.is_alive() for t in threads) or packs < 3:
            db.pack()
            packs += 1
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(done) == [0, 1, 2]
        assert packs >= 3
        db.pack()   # once more, everything committed
        with db.transaction() as conn:
            root = conn.root()
            assert len(root["shared"]) == 3 * n
            for w in range(3):
                assert list(root["w%d" % w].keys())[:n] == [
                    "%03d" % i for i in range(n)]
                assert root["w%d" % w]["garbage"]["i"] == n - 1
        assert db.storage._pack_stats["files_removed"] >= 0
        assert db.storage._engine.last_pack() > b"\0" * 8
    finally:
        db.close()
    _check(path)
