"""demo-zodb.py HOME: commit through ZODB into the storage at HOME with
the dirstorage package (the C engine behind ZODB's storage API), then
read it back and show the undo log. Used by scripts/demo.sh."""
import sys

import ZODB
from BTrees.OOBTree import OOBTree
from persistent.mapping import PersistentMapping

from dirstorage import FullStorage

db = ZODB.DB(FullStorage(sys.argv[1]))
with db.transaction("demo: a catalogue through ZODB") as conn:
    root = conn.root()
    cat = root["catalogue"] = OOBTree()
    for i in range(100):
        cat["item%03d" % i] = PersistentMapping(title="Item %d" % i, n=i)
with db.transaction("demo: edit through ZODB") as conn:
    conn.root()["catalogue"]["item042"]["title"] = "The answer"
with db.transaction() as conn:
    cat = conn.root()["catalogue"]
    print("ZODB reads back %d items; item042 is %r" % (
        len(cat), cat["item042"]["title"]))
for d in db.undoLog(0, 2):
    print("undo log: %s  %s" % (d["id"].hex().upper(), d["description"]))
db.close()
