"""FullStorage served by a real ZEO server: `runzeo` with a zeo.conf that
imports dirstorage's ZConfig component (<dirstorage> section) listens on
127.0.0.1; two ZEO client processes commit concurrently to shared objects
and each sees all of the other's changes; afterwards the server stops,
the storage is closed cleanly (a snapshot) and `ds check` finds it sound.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import transaction
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from ZODB import DB
from ZEO.ClientStorage import ClientStorage

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("DS_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    HERE))
DS_BIN = os.environ.get("DS_BIN") or os.path.join(SRC, "build", "ds")
BIN = os.path.dirname(sys.executable)

ZEO_CONF = """\
%%import dirstorage
<zeo>
  address 127.0.0.1:%(port)d
</zeo>
<dirstorage 1>
  path %(path)s
  create true
</dirstorage>
<eventlog>
  <logfile>
    path %(log)s
    level INFO
  </logfile>
</eventlog>
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port, proc, errlog, log):
    """Until runzeo's event log says it listens on our port (a bounded
    wait: connecting alone could reach another process that took the
    port)."""
    want = "listening on ('127.0.0.1', %d)" % port
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("runzeo exited %s:\n%s" % (
                proc.returncode, open(errlog).read()))
        if want in open(log).read():
            return
        time.sleep(0.1)
    raise AssertionError("runzeo never listened:\n" + open(log).read())


def test_zeo_two_clients(tmp_path):
    path = str(tmp_path / "ds")
    log = str(tmp_path / "zeo.log")
    conf = tmp_path / "zeo.conf"
    for attempt in range(5):
        # a free port now may be taken by another test before runzeo
        # binds it: then runzeo exits and we try another
        port = _free_port()
        conf.write_text(ZEO_CONF % dict(port=port, path=path, log=log))
        open(log, "w").close()
        errlog = str(tmp_path / "runzeo.err")
        with open(errlog, "w") as err:
            server = subprocess.Popen([os.path.join(BIN, "runzeo"), "-C",
                                       str(conf)], stdout=err,
                                      stderr=subprocess.STDOUT)
        try:
            _wait_listening(port, server, errlog, log)
            break
        except AssertionError:
            if server.poll() is None or "in use" not in open(errlog).read() \
                    or attempt == 4:
                server.kill()
                server.wait()
                raise
    try:
        # the shared objects
        db = DB(ClientStorage(("127.0.0.1", port)))
        conn = db.open()
        conn.root()["tree"] = OOBTree()
        conn.root()["count"] = Length()
        transaction.commit()
        conn.close()
        db.close()

        n = 25
        clients = [subprocess.Popen(
            [sys.executable, os.path.join(HERE, "zeo_client.py"), str(port),
             me, other, str(n)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
            for me, other in (("a", "b"), ("b", "a"))]
        results = []
        for c in clients:
            out, err = c.communicate(timeout=600)
            assert c.returncode == 0, out + err
            results.append(json.loads(out.strip().splitlines()[-1]))
        print("clients:", results)
        for r in results:
            assert r["other_keys"] == n, r
            assert r["count"] == 2 * n, r

        # a third client sees everything, through the history too
        db = DB(ClientStorage(("127.0.0.1", port)))
        conn = db.open()
        root = conn.root()
        assert len(root["tree"]) == 2 * n
        assert root["count"].value == 2 * n
        notes = {d["description"] for d in db.undoLog(0, 200)}
        assert {"a %d" % i for i in range(n)} <= notes
        assert {"b %d" % i for i in range(n)} <= notes
        conn.close()
        db.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    # closed cleanly: a snapshot, nothing left in the journal
    assert open(os.path.join(path, "misc", "snapshot")).read() == "shutdown"
    assert os.listdir(os.path.join(path, "journal")) == []
    r = subprocess.run([DS_BIN, "check", path], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 problems" in r.stdout
