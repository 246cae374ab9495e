"""FullStorage's snapshot mode for another process, as the original's
DirectoryStorage.Full: enter_snapshot(code) flushes into A, writes
misc/snapshot "user/<code>" and lets go of misc/sublock so that the
snapshot user (a backup script, `ds snapshot`) can lock it; commits go on
into B meanwhile and A stays unchanged; leave_snapshot(code) takes the
sublock back (refused while the user holds it) and moves B over A.

The second test is the original's whole path: a server exposes
enterSnapshot/leaveSnapshot over XML-RPC (as Zope's Control_Panel did)
and `ds snapshot` with a snapshot.conf `http` line backs up the storage
while a thread commits.
"""
import base64
import fcntl
import hashlib
import os
import subprocess
import threading
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest
import transaction
from BTrees.OOBTree import OOBTree
from ZODB import DB

from dirstorage import DirectoryStorageError, FullStorage
from dirstorage import _engine

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("DS_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    HERE))
DS_BIN = os.environ.get("DS_BIN") or os.path.join(SRC, "build", "ds")


def _tree_md5(top):
    """{relative path: md5} of every file under top."""
    out = {}
    for d, _dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, top)] = hashlib.md5(
                    fh.read()).hexdigest()
    return out


def _try_lock(path):
    """An fd holding an exclusive flock on path, or None when another
    holder has it (flock locks belong to the open file, so this
    conflicts with the storage's own lock in this process too)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _commit(db, key, value):
    with db.transaction() as conn:
        conn.root()["tree"][key] = value


def test_enter_lets_go_of_sublock(tmp_path):
    path = str(tmp_path / "ds")
    storage = FullStorage(path, create=True, control=False)
    db = DB(storage)
    try:
        with db.transaction() as conn:
            conn.root()["tree"] = OOBTree()
        _commit(db, "a", 1)
        sublock = os.path.join(path, "misc", "sublock")
        # A is written: the storage holds the sublock
        assert _try_lock(sublock) is None
        with pytest.raises(DirectoryStorageError):
            storage.leave_snapshot("backup")   # not in that mode

        storage.enter_snapshot("backup")
        assert storage.get_snapshot_code() == "user/backup"
        with open(os.path.join(path, "misc", "snapshot")) as f:
            assert f.read() == "user/backup"
        # the snapshot user takes the sublock: A must not change now
        fd = _try_lock(sublock)
        assert fd is not None, "enter_snapshot kept misc/sublock"
        try:
            before = _tree_md5(os.path.join(path, "A"))
            for i in range(5):
                _commit(db, "b%d" % i, i)      # commits go on, into B
            storage._engine.flush()
            assert _tree_md5(os.path.join(path, "A")) == before
            # leaving needs the sublock back: refused while held
            with pytest.raises(DirectoryStorageError) as e:
                storage.leave_snapshot("backup")
            assert e.value.status == _engine.DS_EBUSY
            assert "still held" in str(e.value)
            assert storage.get_snapshot_code() == "user/backup"
            # a second user cannot enter meanwhile
            with pytest.raises(DirectoryStorageError) as e:
                storage.enter_snapshot("other")
            assert e.value.status == _engine.DS_EBUSY
        finally:
            os.close(fd)
        with pytest.raises(DirectoryStorageError):
            storage.leave_snapshot("other")
        storage.leave_snapshot("backup")
        storage._engine.flush()
        assert not os.path.exists(os.path.join(path, "misc", "snapshot"))
        # the storage writes A again: it holds the sublock once more
        assert _try_lock(sublock) is None
        _commit(db, "c", 3)
        with db.transaction() as conn:
            tree = conn.root()["tree"]
            assert sorted(tree.keys()) == ["a", "b0", "b1", "b2", "b3",
                                           "b4", "c"]
    finally:
        db.close()
    r = subprocess.run([DS_BIN, "check", path], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class _Handler(SimpleXMLRPCRequestHandler):
    want = "Basic " + base64.b64encode(b"operator:s3cret").decode()

    def parse_request(self):
        if not super().parse_request():
            return False
        if self.headers.get("Authorization") != self.want:
            self.send_error(401, "Unauthorized")
            return False
        return True

    def log_message(self, *args):
        pass


def test_ds_snapshot_http_while_committing(tmp_path):
    """The original's setup: the storage process serves
    enterSnapshot/leaveSnapshot over XML-RPC; `ds snapshot` (snapshot.conf
    `http`, `nodirect`) asks it, takes misc/sublock and runs a copy of the
    storage while commits go on. The copy is a sound storage at a
    transaction boundary; afterwards the storage has left snapshot mode
    and kept every commit."""
    path = str(tmp_path / "ds")
    storage = FullStorage(path, create=True, control=False)
    db = DB(storage)
    calls = []

    def enterSnapshot(code):
        calls.append("enter " + code)
        storage.enter_snapshot(code)
        return True

    def leaveSnapshot(code):
        calls.append("leave " + code)
        storage.leave_snapshot(code)
        return True

    server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=_Handler,
                                logRequests=False)
    server.register_function(enterSnapshot)
    server.register_function(leaveSnapshot)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    stop = threading.Event()
    committed = []

    def committer():
        i = 0
        while not stop.is_set():
            _commit(db, "k%05d" % i, i)
            committed.append(i)
            i += 1

    try:
        with db.transaction() as conn:
            conn.root()["tree"] = OOBTree()
        _commit(db, "first", 0)
        with open(os.path.join(path, "config", "access"), "w") as f:
            f.write("operator:s3cret\n")
        with open(os.path.join(path, "config", "snapshot.conf"), "w") as f:
            f.write("http http://127.0.0.1:%d/ access\nnodirect\n"
                    % server.server_address[1])
        thread = threading.Thread(target=committer)
        thread.start()
        try:
            copy = str(tmp_path / "copy")
            r = subprocess.run(
                # what snapshot mode holds still: A/ (with config/ and
                # misc/snapshot); journal/ and B/ go on changing under
                # the commits, so the copy gets them empty
                [DS_BIN, "snapshot", "--storage", path, "sh", "-c",
                 'mkdir "$0" && cd "$SNAPSHOT_DIRECTORY" && '
                 'cp -a A config misc "$0"/ && mkdir "$0/B" "$0/journal"',
                 copy],
                capture_output=True, text=True, timeout=600)
        finally:
            stop.set()
            thread.join()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Entered snapshot using http://127.0.0.1" in r.stderr
        assert [c.split()[0] for c in calls] == ["enter", "leave"]
        assert committed, "no commit ran"
        storage._engine.flush()
        assert storage.get_snapshot_code() in ("", "recombining/user/"
                                               + calls[0].split()[1])
        _commit(db, "last", -1)
        with db.transaction() as conn:
            assert len(conn.root()["tree"]) == len(committed) + 2
    finally:
        server.shutdown()
        server.server_close()
        db.close()
    # the copy: a storage in snapshot mode (A whole transactions), sound
    with open(os.path.join(copy, "misc", "snapshot")) as f:
        assert f.read().startswith("user/")
    # restored elsewhere, it is opened directly, not through the server
    os.unlink(os.path.join(copy, "config", "snapshot.conf"))
    r = subprocess.run([DS_BIN, "check", copy], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    copied = FullStorage(copy, read_only=True)
    cdb = DB(copied)
    try:
        with cdb.transaction() as conn:
            keys = list(conn.root()["tree"].keys())
            assert "first" in keys
            assert "last" not in keys
    finally:
        cdb.close()
