#!/usr/bin/python3
"""Pack a storage with the ORIGINAL DirectoryStorage, as ZODB does.

usage: orig_pack.py DIR TID [MIN_PACK_TIME]

Run it in the reference environment (`$REF/bin/ref-python orig_pack.py
...`). Opens DIR through ZODB.DB and calls db.pack(t) with the unix time t
of TID (16 hex digits): ZODB then calls the storage's pack(t,
referencesf). A double cannot hold every tid (a tid's unit is 14 ns), so
the threshold the original really uses is timestamp2tid(t): it is printed
("threshold HEX"), and `ds pack --before HEX` packs at the same one. MIN_PACK_TIME, when given,
replaces [storage] min_pack_time for this run only (as the fixtures'
README says the fixture packs were made), the settings file unchanged.
"""
import sys
import time

from persistent.TimeStamp import TimeStamp
from ZODB import DB

from DirectoryStorage.Storage import Storage
from DirectoryStorage.utils import DirectoryStorageError, timestamp2tid




def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    path, tid = sys.argv[1], bytes.fromhex(sys.argv[2])
    storage = Storage(path)
    if len(sys.argv) == 4:
        storage.min_pack_time = int(sys.argv[3])
    t = TimeStamp(tid).timeTime()
    print("threshold %s" % timestamp2tid(t).hex().upper())
    sys.stdout.flush()
    db = DB(storage)
    try:
        # just after open the original moves B back over A in a thread
        # ("recombining/startup") and refuses to pack until it is done
        for _ in range(600):
            try:
                db.pack(t)
                break
            except DirectoryStorageError as e:
                if "recombining" not in str(e):
                    raise
                time.sleep(0.1)
        else:
            sys.exit("orig_pack: the storage stayed busy recombining")
    finally:
        db.close()


if __name__ == "__main__":
    main()
