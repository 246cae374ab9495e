"""Commit transactions into a storage through the ORIGINAL implementation.

usage: orig_commit.py STORAGE_DIR NTRANSACTIONS TAG

Run with the reference build's Python path ($DS_REF/bin/ref-python, see
t_replica_orig_live.sh). Opens the storage with the original's Full
storage through ZODB, commits NTRANSACTIONS transactions that add and
change PersistentMapping objects under the root (TAG makes their contents
differ between calls), and closes it: the original's close flushes the
journal into A/ and leaves the storage in snapshot mode "shutdown".
"""
import sys

import transaction
from persistent.mapping import PersistentMapping
from ZODB import DB

from DirectoryStorage.Storage import Storage


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    db = DB(Storage(path))
    try:
        conn = db.open()
        root = conn.root()
        items = root.setdefault("items", PersistentMapping())
        for i in range(n):
            txn = transaction.get()
            txn.setUser("orig_commit")
            txn.note("%s %d" % (tag, i))
            items["%s-%d" % (tag, i)] = PersistentMapping(
                {"n": i, "tag": tag, "blob": bytes(range(i % 200))})
            if i and "%s-%d" % (tag, i - 1) in items:
                items["%s-%d" % (tag, i - 1)]["next"] = i
            transaction.commit()
        conn.close()
    finally:
        db.close()


if __name__ == "__main__":
    main()
