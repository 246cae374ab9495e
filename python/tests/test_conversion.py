"""Conversion both ways with FileStorage, as ZODB's testConversion /
FileStorageRecoveryTest do: ZODB's RecoveryStorage mixin with FullStorage
as source and FileStorage as destination and the reverse, a round trip
FullStorage -> FileStorage -> FullStorage that must give back the very
same transaction and revision files, and zodbconvert with <dirstorage>
sections on both sides.
"""
import os
import subprocess
import sys

import transaction
from persistent.mapping import PersistentMapping
from ZODB import DB
from ZODB.FileStorage import FileStorage
from ZODB.tests import RecoveryStorage
from ZODB.tests import StorageTestBase
from ZODB.tests.IteratorStorage import IteratorDeepCompare
from ZODB.utils import z64

import pytest
import dirstorage._engine as engine
from dirstorage import FullStorage

from test_conformance import _alias_check_names
from test_conformance import _mkds
from test_conformance import _skip_named


@_alias_check_names
class DSToFileStorage(StorageTestBase.StorageTestBase,
                      RecoveryStorage.RecoveryStorage):
    """FullStorage copied into FileStorage (the destination packs:
    FileStorage can)."""

    def setUp(self):
        StorageTestBase.StorageTestBase.setUp(self)
        self._storage = FullStorage("src-ds", create=True)
        self._dst = FileStorage("dest.fs", create=True)

    def tearDown(self):
        self._dst.close()
        StorageTestBase.StorageTestBase.tearDown(self)

    def new_dest(self):
        return FileStorage("dest2.fs", create=True)


@_skip_named
class FileStorageToDS(StorageTestBase.StorageTestBase,
                      RecoveryStorage.RecoveryStorage):
    """FileStorage copied into FullStorage."""

    def compare(self, fs, ds):
        """IteratorDeepCompare.compare, but where FileStorage holds
        several data records of one object in one transaction (it writes
        one per undo when a transaction undoes several that changed the
        object: undoMultiple), a DirectoryStorage transaction holds one
        revision per object, the last, which is also the one FileStorage
        loads. So the FileStorage side is compared by its last record
        of each object; everything else as ZODB's compare."""
        eq = self.assertEqual
        it1, it2 = fs.iterator(), ds.iterator()
        for txn1, txn2 in zip(it1, it2):
            eq(txn1.tid, txn2.tid)
            eq(txn1.status, txn2.status)
            eq(txn1.user, txn2.user)
            eq(txn1.description, txn2.description)
            eq(txn1.extension, txn2.extension)
            eq(txn1.extension_bytes, txn2.extension_bytes)
            last = {}
            for r in txn1:
                last[r.oid] = r
            recs2 = list(txn2)
            eq([r.oid for r in recs2], list(last))
            for r2 in recs2:
                eq(last[r2.oid].tid, r2.tid)
                eq(last[r2.oid].data, r2.data)
        self.assertRaises(StopIteration, next, it1)
        self.assertRaises(StopIteration, next, it2)

    def setUp(self):
        StorageTestBase.StorageTestBase.setUp(self)
        self._storage = FileStorage("src.fs", create=True)
        # the destination packs as ZODB's tests expect (min_pack_time 0)
        _mkds(os.path.abspath("dest-ds"))
        self._dst = FullStorage("dest-ds")

    def tearDown(self):
        self._dst.close()
        StorageTestBase.StorageTestBase.tearDown(self)

    def new_dest(self):
        _mkds(os.path.abspath("dest2-ds"))
        return FullStorage("dest2-ds")


def _history(storage):
    """A history with what conversion must keep: users, descriptions,
    extensions, several objects per transaction, undo, undo of an undo,
    and a creation undone."""
    db = DB(storage)
    tm = transaction.manager   # DB.undo joins the default manager's
    conn = db.open()
    root = conn.root()
    for i in range(5):
        root["m%d" % i] = PersistentMapping(value=i)
        t = tm.get()
        t.user = "user%d" % i
        t.note("create m%d" % i)
        t.setExtendedInfo("step", i)
        tm.commit()
    for i in range(5):
        root["m%d" % (i % 3)]["value"] = 100 + i
        root["m4"]["value"] = -i
        tm.commit()
    db.undo(db.undoLog(0, 1)[0]["id"])
    tm.commit()
    db.undo(db.undoLog(0, 1)[0]["id"])      # redo
    tm.commit()
    root["doomed"] = PersistentMapping()
    tm.commit()
    db.undo(db.undoLog(0, 1)[0]["id"])      # creation undone
    tm.commit()
    conn.close()
    db.close()


def _ds_files(path):
    """{database name: bytes} of every transaction and revision file of
    the storage at path, through the engine."""
    s = engine.Storage(path, engine.OPEN_READONLY)
    out = {}
    try:
        for tid in s.tids():
            info = s.txn_info(tid)
            name = "t%s.%s" % (tid[:3].hex().upper(), tid[3:].hex().upper())
            out[name] = s.read_name(name)
            for oid in info[5]:
                name = "o%s.%s" % (oid.hex().upper(), tid.hex().upper())
                out[name] = s.read_name(name)
    finally:
        s.close()
    return out


def test_round_trip_identical_files(tmp_path):
    ds1 = str(tmp_path / "ds1")
    _history(FullStorage(ds1, create=True))
    src = FullStorage(ds1, read_only=True)
    fs = FileStorage(str(tmp_path / "mid.fs"), create=True)
    fs.copyTransactionsFrom(src)
    ds2 = FullStorage(str(tmp_path / "ds2"), create=True)
    ds2.copyTransactionsFrom(fs)
    cmp = IteratorDeepCompare()
    cmp.assertEqual = _assert_equal
    cmp.assertRaises = _assert_raises
    cmp.compare(src, fs)
    cmp.compare(fs, ds2)
    assert ds2.lastTransaction() == src.lastTransaction()
    src.close()
    fs.close()
    ds2.close()
    a, b = _ds_files(ds1), _ds_files(str(tmp_path / "ds2"))
    assert len(a) > 20
    # byte for byte: tids, back pointers, oid order, previous serials,
    # undo-from serials (FileStorage's backpointers), md5s, the
    # creation-undone revision
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
    assert any(len(v) == 72 for k, v in a.items() if k.startswith("o"))
    for d in (ds1, str(tmp_path / "ds2")):
        subprocess.run([os.environ.get("DS_BIN", "ds"), "check", "-q", d],
                       check=True)


def test_round_trip_from_filestorage(tmp_path):
    fs1 = FileStorage(str(tmp_path / "a.fs"), create=True)
    _history(fs1)
    fs1 = FileStorage(str(tmp_path / "a.fs"), read_only=True)
    ds = FullStorage(str(tmp_path / "ds"), create=True)
    ds.copyTransactionsFrom(fs1)
    fs2 = FileStorage(str(tmp_path / "b.fs"), create=True)
    fs2.copyTransactionsFrom(ds)
    cmp = IteratorDeepCompare()
    cmp.assertEqual = _assert_equal
    cmp.assertRaises = _assert_raises
    cmp.compare(fs1, ds)
    cmp.compare(ds, fs2)
    # every object loads the same, and the same history, in all three
    db = DB(ds)
    conn = db.open()
    root = conn.root()
    assert sorted(root) == ["doomed", "m0", "m1", "m2", "m3", "m4"] or \
        sorted(root) == ["m0", "m1", "m2", "m3", "m4"]
    longest = 0
    for k in ("m0", "m1", "m2", "m3", "m4"):
        oid = root[k]._p_oid
        assert ds.load(oid) == fs1.load(oid) == fs2.load(oid)
        # (sizes differ by design: FileStorage reports 0 for an undo's
        # backpointer record, a DirectoryStorage revision holds the data)
        h1 = [(d["tid"], d["user_name"], d["description"])
              for d in fs1.history(oid, 100)]
        h2 = [(d["tid"], d["user_name"], d["description"])
              for d in ds.history(oid, 100)]
        assert h1 == h2
        longest = max(longest, len(h1))
        for d in fs1.history(oid, 100):
            assert ds.loadSerial(oid, d["tid"]) == fs1.loadSerial(
                oid, d["tid"])
    assert longest > 3
    db.close()
    fs1.close()
    fs2.close()


def _assert_equal(a, b):
    assert a == b


def _assert_raises(exc, f, *args):
    with pytest.raises(exc):
        f(*args)


ZODBCONVERT = """\
%%import dirstorage
<%(src_kind)s source>
  path %(src)s
  %(src_extra)s
</%(src_kind)s>
<%(dst_kind)s destination>
  path %(dst)s
  create true
</%(dst_kind)s>
"""


def _zodbconvert(tmp_path, name, src_kind, src, dst_kind, dst):
    conf = tmp_path / name
    conf.write_text(ZODBCONVERT % dict(
        src_kind=src_kind, src=src, dst_kind=dst_kind, dst=dst,
        src_extra="read-only true"))
    # zodbconvert is RelStorage's (scripts/setup-deps.sh installs it)
    prog = os.path.join(os.path.dirname(sys.executable), "zodbconvert")
    subprocess.run([prog, str(conf)], check=True)


def test_zodbconvert_both_ways(tmp_path):
    fs1 = str(tmp_path / "a.fs")
    _history(FileStorage(fs1, create=True))
    ds = str(tmp_path / "ds")
    _zodbconvert(tmp_path, "fs2ds.conf", "filestorage", fs1, "dirstorage",
                 ds)
    fs2 = str(tmp_path / "b.fs")
    _zodbconvert(tmp_path, "ds2fs.conf", "dirstorage", ds, "filestorage",
                 fs2)
    a, b = FileStorage(fs1, read_only=True), FileStorage(fs2,
                                                         read_only=True)
    d = FullStorage(ds, read_only=True)
    cmp = IteratorDeepCompare()
    cmp.assertEqual = _assert_equal
    cmp.assertRaises = _assert_raises
    cmp.compare(a, d)
    cmp.compare(a, b)
    assert d.lastTransaction() == a.lastTransaction() != z64
    a.close()
    b.close()
    d.close()
    subprocess.run([os.environ.get("DS_BIN", "ds"), "check", "-q", ds],
                   check=True)
