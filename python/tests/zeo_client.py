"""One ZEO client process of test_zeo.py: commits `n` transactions to a
ZEO server, each adding its own key to a shared OOBTree and incrementing
a shared BTrees.Length (whose conflict resolution merges concurrent
increments); ConflictErrors are retried, as an application does. Then it
waits until the other client's `done` marker shows up and checks that it
sees every key the other committed. Prints a JSON summary.

usage: zeo_client.py PORT NAME OTHER N
"""
import json
import sys
import time

import transaction
from ZODB import DB
from ZODB.POSException import ConflictError
from ZEO.ClientStorage import ClientStorage


def main():
    port, me, other, n = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                          int(sys.argv[4]))
    db = DB(ClientStorage(("127.0.0.1", port), wait_timeout=60))
    conn = db.open()
    conflicts = 0
    for i in range(n):
        while True:
            try:
                root = conn.root()
                root["tree"]["%s-%03d" % (me, i)] = i
                root["count"].change(1)
                transaction.get().note("%s %d" % (me, i))
                transaction.commit()
                break
            except ConflictError:
                transaction.abort()
                conflicts += 1
    while True:   # the root mapping cannot resolve conflicts: retry
        try:
            conn.root()["done-" + me] = True
            transaction.commit()
            break
        except ConflictError:
            transaction.abort()
            conflicts += 1
    # wait (bounded) for the other client's marker: its commits are then
    # all visible to us through ZEO's invalidations
    deadline = time.monotonic() + 120
    while True:
        transaction.abort()
        conn.sync()
        if conn.root().get("done-" + other):
            break
        if time.monotonic() > deadline:
            print(json.dumps({"error": "never saw " + other}))
            sys.exit(1)
        time.sleep(0.1)
    root = conn.root()
    seen = sorted(k for k in root["tree"].keys() if k.startswith(other))
    print(json.dumps({"me": me, "conflicts": conflicts,
                      "other_keys": len(seen),
                      "count": root["count"].value}))
    conn.close()
    db.close()


if __name__ == "__main__":
    main()
