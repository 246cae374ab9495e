"""Interoperability with the original DirectoryStorage, both ways.

Every fixture storage written by the original (tests/fixtures/*.tar.gz,
described by tests/fixtures/*.manifest.json) opens read-only through
dirstorage and reads exactly as its manifest says: last transaction, every
object's current pickle (md5) and serial, every revision, every object's
history, the transaction iteration with its metadata.

A storage written through dirstorage by ZODB (commits, undo, a creation
undone, conflict resolution) passes `ds check` and the original's checkds.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import transaction
from BTrees.OOBTree import OOBTree
from persistent.mapping import PersistentMapping
from ZODB import DB
from ZODB import POSException
from ZODB.tests.ConflictResolution import PCounter

from dirstorage import FullStorage

SRC = os.environ.get("DS_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
MANIFESTS = os.environ.get("DS_MANIFEST_DIR") or os.path.join(
    SRC, "tests", "fixtures")
DS_BIN = os.environ.get("DS_BIN") or os.path.join(SRC, "build", "ds")
REF_CHECKDS = "/root/ds-ref/bin/ref-checkds"


def _names():
    return sorted(os.path.basename(p)[:-len(".manifest.json")]
                  for p in glob.glob(os.path.join(MANIFESTS,
                                                  "*.manifest.json")))


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory):
    d = os.environ.get("DS_FIXTURE_DIR")
    if d:
        return d
    # outside ctest: unpack them ourselves, as ctest's fixtures_extract
    d = str(tmp_path_factory.mktemp("fixtures"))
    subprocess.run(["sh", os.path.join(SRC, "tests", "extract-fixtures.sh"),
                    MANIFESTS, d], check=True)
    return d


def _b(hex16):
    return bytes.fromhex(hex16)


def _md5(b):
    return hashlib.md5(b).hexdigest()


def test_all_fixtures_listed():
    assert len(_names()) >= 8


@pytest.mark.parametrize("name", _names())
def test_fixture_reads_as_manifest(name, fixture_dir, tmp_path):
    with open(os.path.join(MANIFESTS, name + ".manifest.json")) as f:
        m = json.load(f)
    # never touch the extracted copy: opening takes locks, leaves and
    # re-enters snapshot mode
    home = str(tmp_path / name)
    shutil.copytree(os.path.join(fixture_dir, name), home, symlinks=True)
    s = FullStorage(home, read_only=True)
    try:
        _check_storage(s, m)
        with pytest.raises(POSException.ReadOnlyError):
            s.new_oid()
    finally:
        s.close()


def _check_storage(s, m):
    assert s.lastTransaction() == _b(m["x.serial"])
    nrev = 0
    for o in m["objects"]:
        oid = _b(o["oid"])
        revs = {r["serial"]: r for r in o["revisions"]}
        cur = revs[o["current_serial"]]
        # the current pickle and serial
        if cur["pickle_len"] == 0:
            with pytest.raises(POSException.POSKeyError):
                s.load(oid)
        else:
            data, serial = s.load(oid)
            assert serial == _b(o["current_serial"])
            assert len(data) == cur["pickle_len"]
            assert _md5(data) == cur["pickle_md5"]
        # every revision
        for r in o["revisions"]:
            nrev += 1
            if r["pickle_len"] == 0:
                with pytest.raises(POSException.POSKeyError):
                    s.loadSerial(oid, _b(r["serial"]))
            else:
                assert _md5(s.loadSerial(oid, _b(r["serial"]))) == \
                    r["pickle_md5"]
        # the history: the chain of previous serials from the current
        # revision, as far as the files go (a pack removed the rest)
        want = []
        serial = o["current_serial"]
        while serial in revs:
            want.append((serial, revs[serial]["pickle_len"]))
            serial = revs[serial]["prev_serial"]
        got = [(d["tid"].hex().upper(), d["size"])
               for d in s.history(oid, 10000)]
        assert got == want, o["oid"]
        # loadBefore the current revision gives the one before it
        if len(want) > 1 and cur["pickle_len"]:
            prev = revs[want[1][0]]
            r = s.loadBefore(oid, _b(o["current_serial"]))
            if prev["pickle_len"]:
                assert r[1] == _b(prev["serial"])
                assert r[2] == _b(o["current_serial"])
                assert _md5(r[0]) == prev["pickle_md5"]
    assert nrev == m["counts"]["revisions"]

    # the transactions, oldest first, with their metadata and records
    txns = sorted((t for t in m["transactions"] if t["in_chain"]),
                  key=lambda t: t["tid"])
    have = {(o["oid"], r["serial"]) for o in m["objects"]
            for r in o["revisions"]}
    got = list(s.iterator())
    assert [t.tid.hex().upper() for t in got] == [t["tid"] for t in txns]
    for t, w in zip(got, txns):
        assert t.user == w["user"].encode("utf-8")
        assert t.description == w["description"].encode("utf-8")
        assert len(t.extension_bytes) == w["extension_len"]
        if w["extension_len"]:
            assert _md5(t.extension_bytes) == w["extension_md5"]
        recs = list(t)
        assert [r.oid.hex().upper() for r in recs] == [
            oid for oid in w["oids"] if (oid, w["tid"]) in have]
    # the undo log reads (the original's rule decides what is undoable)
    for d in s.undoLog(0, 20):
        assert d["id"] in {t.tid for t in got}


def _write_through_zodb(path):
    """Commit through ZODB: a tree of objects, edits, an undo, a creation
    undone, and a conflict resolved by the object itself."""
    storage = FullStorage(path, create=True)
    db = DB(storage)
    conn = db.open()
    root = conn.root()
    root["tree"] = OOBTree()
    root["counter"] = PCounter()
    for i in range(30):
        root["tree"]["k%03d" % i] = PersistentMapping(i=i)
    transaction.get().note("bulk")
    transaction.commit()
    for i in range(10):
        root["tree"]["k%03d" % (i * 3)]["i"] = -i
        root["counter"].inc()
        transaction.commit()
    db.undo(db.undoLog(0, 1)[0]["id"])
    transaction.commit()
    root["doomed"] = PersistentMapping()
    transaction.commit()
    db.undo(db.undoLog(0, 1)[0]["id"])
    transaction.commit()
    # two connections increment the counter concurrently: the second
    # commit conflicts and PCounter resolves it
    tm2 = transaction.TransactionManager()
    conn2 = db.open(tm2)
    conn2.root()["counter"].inc()
    root["counter"].inc()
    transaction.commit()
    tm2.commit()
    conn.sync()
    assert root["counter"]._value == 10 + 2 - 1 or \
        root["counter"]._value == 10 + 2
    conn2.close()
    conn.close()
    db.close()


def _corrupt_one_revision(home):
    """Flip a pickle byte of one revision file: the control showing that
    the checker run on the good storage could have failed."""
    for d, _dirs, files in sorted(os.walk(os.path.join(home, "A"))):
        for f in sorted(files):
            p = os.path.join(d, f)
            if "/o" in p and f != "c" and os.path.getsize(p) > 80:
                with open(p, "r+b") as fp:
                    fp.seek(80)
                    b = fp.read(1)
                    fp.seek(80)
                    fp.write(bytes([b[0] ^ 0xFF]))
                return p
    raise AssertionError("no revision file in " + home)


def test_written_by_zodb_passes_ds_check(tmp_path):
    home = str(tmp_path / "ds")
    _write_through_zodb(home)
    r = subprocess.run([DS_BIN, "check", home], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 problems" in r.stdout + r.stderr
    assert "1 revisions whose creation was undone" in r.stdout + r.stderr
    _corrupt_one_revision(home)
    r = subprocess.run([DS_BIN, "check", home], capture_output=True,
                       text=True)
    assert r.returncode != 0


@pytest.mark.skipif(not os.path.exists(REF_CHECKDS),
                    reason="the original's checkds (/root/ds-ref, see "
                           "tests/fixtures/README.md) is not on this machine")
def test_written_by_zodb_passes_original_checkds(tmp_path):
    home = str(tmp_path / "ds")
    _write_through_zodb(home)
    # the original runs with its own Python and ZODB, not our venv's
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_PRELOAD", "VIRTUAL_ENV")}
    r = subprocess.run([REF_CHECKDS, "--storage", home], capture_output=True,
                       text=True, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "checking all data files" in out and "\ndone" in out, out
    assert "error" not in out.lower() and "warning" not in out.lower(), out
    bad = _corrupt_one_revision(home)
    r = subprocess.run([REF_CHECKDS, "--storage", home], capture_output=True,
                       text=True, env=env)
    assert r.returncode != 0
    assert "bad md5" in r.stdout + r.stderr
    assert os.path.relpath(bad, home) in r.stdout + r.stderr
