"""FullStorage: a ZODB storage over the DirectoryStorage engine in C.

What the original DirectoryStorage.Full does for ZODB 5, with the engine
(libdirstorage, through dirstorage._engine) doing every read and write of
the storage directory: this module only speaks ZODB's interfaces.

Threads: ZODB calls in from many threads. Reads go straight to the engine
(thread-safe, the GIL released). Commits are serialized by a commit lock
held from tpc_begin to tpc_finish/tpc_abort, as BaseStorage does; the
engine itself allows one open transaction at a time too. Because no other
transaction can commit while ours is open, the conflict check of store()
and checkCurrentSerialInTransaction() compare against a current serial
that cannot change before our commit.
"""
import os
import threading
import time

import zope.interface
from persistent.TimeStamp import TimeStamp

import ZODB.interfaces
from ZODB import POSException
from ZODB.BaseStorage import DataRecord
from ZODB.BaseStorage import TransactionRecord
from ZODB.BaseStorage import copy as _copy_transactions
from ZODB.ConflictResolution import ConflictResolvingStorage
from ZODB.UndoLogCompatible import UndoLogCompatible
from ZODB.utils import z64

from . import _engine

__all__ = ["FullStorage", "DirectoryStorageError", "PackNotSupported"]


class DirectoryStorageError(POSException.StorageError):
    """The engine refused or failed; the message names the file and the
    reason. `status` is the engine's DS_E* code."""

    def __init__(self, message, status=None):
        POSException.StorageError.__init__(self, message)
        self.status = status


class PackNotSupported(POSException.Unsupported):
    """A pack the engine does not do: without garbage collection
    (pack(..., gc=False))."""


def _status(e):
    return e.args[0] if e.args else None


def _message(e):
    return e.args[1] if len(e.args) > 1 else str(e)


def _storage_error(e):
    return DirectoryStorageError(_message(e), _status(e))


@zope.interface.implementer(
    ZODB.interfaces.IStorage,
    ZODB.interfaces.IStorageRestoreable,
    ZODB.interfaces.IStorageIteration,
    ZODB.interfaces.IStorageUndoable,
)
class FullStorage(ConflictResolvingStorage, UndoLogCompatible):
    """A DirectoryStorage "Full" storage at `path`.

    create: make a new empty storage at path when none is there
        (`format` names its layout: bushy, chunky, lawn or flat).
    read_only: refuse every write (ReadOnlyError); the storage is still
        opened through the engine (locked and recovered).
    sync: False skips fsync, like [filesystem] sync 0 (tests only).
    synchronous: as the original's synchronous=1: refuse to open
        (instead of staying in snapshot mode) while a snapshot user holds
        the storage.
    control: a writable storage listens on its control socket
        (misc/control, DS_OPEN_CONTROL) so that `ds snapshot` and the
        master side of `ds replica` can back it up and replicate it while
        it is served; False opens without it. Ignored when read-only.
    name: what getName() answers (default: the absolute path).
    """

    def __init__(self, path, create=False, read_only=False, sync=True,
                 synchronous=False, format="bushy", name=None,
                 control=True):
        path = os.path.abspath(path)
        if create and not os.path.exists(os.path.join(path, "config",
                                                      "settings")):
            if read_only:
                raise DirectoryStorageError(
                    "create %s: a new storage cannot be read-only" % path)
            try:
                if os.path.isdir(path) and not os.listdir(path):
                    # an empty directory made for us (a test's tmpdir)
                    os.rmdir(path)
                _engine.create(path, format, "Full")
            except _engine.Error as e:
                raise _storage_error(e) from None
        flags = 0
        if read_only:
            flags |= _engine.OPEN_READONLY
        if not sync:
            flags |= _engine.OPEN_NOSYNC
        if synchronous:
            flags |= _engine.OPEN_SYNCHRONOUS
        if control and not read_only:
            flags |= _engine.OPEN_CONTROL
        try:
            self._engine = _engine.Storage(path, flags)
        except _engine.Error as e:
            raise _storage_error(e) from None
        self._path = path
        self.__name__ = name or path
        self._is_read_only = bool(read_only)
        self._lock = threading.RLock()          # _ltid, _transaction
        self._commit_lock = threading.Lock()     # tpc_begin .. finish/abort
        self._transaction = None
        self._txn = None                         # the engine transaction
        self._resolved = []
        # oid -> data written by our open transaction; _py_written: the
        # oids written otherwise than by the engine's undo
        self._written = {}
        self._py_written = set()
        self._ltid = self._engine.last_tid()
        self._closed = False
        cfg = self._engine.config()
        self.identity = cfg["identity"]
        self._md5_undo = cfg["md5_undo"]
        self._pack_stats = None   # the last pack's statistics (tests)

    # ---- names, sizes, misc ----

    def getName(self):
        return self.__name__

    def sortKey(self):
        # unique per storage and stable across openings
        return "dirstorage:" + self._path

    def __len__(self):
        # As the original: counting objects needs a scan of the whole
        # storage, which no ZODB caller should trigger by asking.
        return 0

    def getSize(self):
        # Not measured, as the original (it would need a full scan).
        return 0

    def isReadOnly(self):
        return self._is_read_only

    def supportsUndo(self):
        return True

    supportsTransactionalUndo = supportsUndo

    def lastTransaction(self):
        with self._lock:
            return self._ltid

    def registerDB(self, db):
        ConflictResolvingStorage.registerDB(self, db)

    def sync(self, force=True):
        pass

    def close(self):
        if self._closed:
            return
        self._closed = True
        with self._lock:
            txn, self._txn = self._txn, None
            self._transaction = None
        if txn is not None:
            txn.abort()
        try:
            self._engine.close()
        except _engine.Error as e:
            raise _storage_error(e) from None

    def cleanup(self):
        """Remove the storage (as FileStorage.cleanup): tests only."""
        import shutil
        self.close()
        shutil.rmtree(self._path, ignore_errors=True)

    # ---- reads ----

    def _key_error(self, e, oid):
        if _status(e) == _engine.DS_ENOTFOUND:
            return POSException.POSKeyError(oid)
        return _storage_error(e)

    def load(self, oid, version=''):
        if version:
            raise POSException.Unsupported("Versions aren't supported")
        try:
            return self._engine.load(oid)
        except _engine.Error as e:
            raise self._key_error(e, oid) from None

    def getTid(self, oid):
        # through load: an object whose creation was undone has a current
        # serial but no data, and is no object (KeyError)
        return self.load(oid)[1]

    def loadSerial(self, oid, serial):
        try:
            return self._engine.load_serial(oid, serial)
        except _engine.Error as e:
            raise self._key_error(e, oid) from None

    def loadBefore(self, oid, tid):
        try:
            return self._engine.load_before(oid, tid)
        except _engine.Error as e:
            if _status(e) != _engine.DS_ENOTFOUND:
                raise _storage_error(e) from None
        # No revision before tid, or the one before it is a "creation
        # undone", or no such object at all. The engine says "not found"
        # for the three; tell them apart, as ZODB wants KeyError for the
        # last two and None for the first.
        try:
            serial = self._engine.current_serial(oid)
            while serial != z64 and serial >= tid:
                serial = self._engine.revision(oid, serial)[0]
            if serial == z64:
                return None
            if not self._engine.revision(oid, serial)[2]:
                raise POSException.POSKeyError(oid)
        except _engine.Error as e:
            raise self._key_error(e, oid) from None
        raise DirectoryStorageError(
            "loadBefore %s: revision %s of oid %s is there but did not "
            "load" % (self._path, serial.hex(), oid.hex()))

    def history(self, oid, size=1, filter=None):
        try:
            entries = self._engine.history(oid, 0 if filter else size)
        except _engine.Error as e:
            raise self._key_error(e, oid) from None
        out = []
        for (serial, undo_from, prev, length, known, user, desc,
             ext) in entries:
            if known:
                user = user.encode("utf-8", "surrogateescape")
                desc = desc.encode("utf-8", "surrogateescape")
            else:
                # transaction file removed by a pack
                user = b"User Name no longer recorded"
                desc = b"Description no longer recorded"
            d = {"time": TimeStamp(serial).timeTime(),
                 "tid": serial, "serial": serial, "version": "",
                 "user_name": user, "description": desc, "size": length}
            if filter is None or filter(d):
                out.append(d)
                if len(out) >= size:
                    break
        return out

    # ---- oids ----

    def new_oid(self):
        if self._is_read_only:
            raise POSException.ReadOnlyError()
        try:
            return self._engine.new_oid()
        except _engine.Error as e:
            raise _storage_error(e) from None

    # ---- two-phase commit ----

    def tpc_transaction(self):
        return self._transaction

    def tpc_begin(self, transaction, tid=None, status=' '):
        if self._is_read_only:
            raise POSException.ReadOnlyError()
        with self._lock:
            if self._transaction is transaction:
                raise POSException.StorageTransactionError(
                    "Duplicate tpc_begin calls for same transaction")
        self._commit_lock.acquire()
        try:
            user = transaction.user
            desc = transaction.description
            ext = transaction.extension_bytes
            if isinstance(user, str):
                user = user.encode("utf-8")
            if isinstance(desc, str):
                desc = desc.encode("utf-8")
            if tid is None:
                # As BaseStorage (and so the original) makes tids: from
                # this process's time.time(), later than the last one.
                # ZODB's tests replace that clock and compare it with the
                # tids (pack times between two commits).
                tid = _tid_of_time(time.time())
                last = self._engine.last_tid()
                if tid <= last:
                    tid = TimeStamp(tid).laterThan(TimeStamp(last)).raw()
            try:
                txn = self._engine.begin(user, desc, ext or b"", tid)
            except _engine.Error as e:
                raise _storage_error(e) from None
            with self._lock:
                self._txn = txn
                self._transaction = transaction
                self._tstatus = status
                self._written = {}
                self._py_written = set()
                del self._resolved[:]
        except BaseException:
            self._commit_lock.release()
            raise

    def _check_transaction(self, transaction):
        if transaction is not self._transaction or self._txn is None:
            raise POSException.StorageTransactionError(self, transaction)

    def store(self, oid, serial, data, version, transaction):
        if self._is_read_only:
            raise POSException.ReadOnlyError()
        self._check_transaction(transaction)
        if version:
            raise POSException.Unsupported("Versions aren't supported")
        try:
            current = self._engine.current_serial(oid)
        except _engine.Error as e:
            if _status(e) != _engine.DS_ENOTFOUND:
                raise _storage_error(e) from None
            current = z64
        resolved = False
        if current != z64 and current != serial:
            # Another transaction changed it since the caller read it:
            # let the object resolve the conflict, or raise ConflictError.
            data = self.tryToResolveConflict(oid, current, serial, data)
            resolved = True
        try:
            self._txn.store(oid, current, data)
        except _engine.Error as e:
            if _status(e) == _engine.DS_ECONFLICT:
                raise POSException.ConflictError(
                    oid=oid, serials=(current, serial)) from None
            raise _storage_error(e) from None
        self._written[oid] = data
        self._py_written.add(oid)
        if resolved:
            self._resolved.append(oid)

    def restore(self, oid, serial, data, version, prev_txn, transaction):
        """Write a revision as given (copying from another storage): no
        conflict check; data None means "creation undone"; prev_txn, the
        transaction whose data this is a copy of, is kept as the
        revision's undo-from serial."""
        if self._is_read_only:
            raise POSException.ReadOnlyError()
        self._check_transaction(transaction)
        if version:
            raise POSException.Unsupported("Versions aren't supported")
        try:
            self._txn.restore(oid, serial, data, prev_txn)
        except _engine.Error as e:
            raise _storage_error(e) from None
        self._written[oid] = data or b""
        self._py_written.add(oid)

    def checkCurrentSerialInTransaction(self, oid, serial, transaction):
        self._check_transaction(transaction)
        try:
            current = self._engine.current_serial(oid)
        except _engine.Error as e:
            if _status(e) != _engine.DS_ENOTFOUND:
                raise _storage_error(e) from None
            current = z64
        if current != serial:
            raise POSException.ReadConflictError(
                oid=oid, serials=(current, serial))

    def tpc_vote(self, transaction):
        with self._lock:
            if transaction is not self._transaction:
                raise POSException.StorageTransactionError(
                    "tpc_vote called with wrong transaction")
            try:
                self._txn.vote()
            except _engine.Error as e:
                raise _storage_error(e) from None
            return list(self._resolved)

    def tpc_finish(self, transaction, f=None):
        with self._lock:
            if transaction is not self._transaction:
                raise POSException.StorageTransactionError(
                    "tpc_finish called with wrong transaction")
            txn = self._txn
            try:
                try:
                    tid = txn.finish()
                except _engine.Error as e:
                    committed = getattr(e, "committed_tid", None)
                    if committed is not None:
                        # visible, but may not survive a crash
                        self._ltid = committed
                    raise _storage_error(e) from None
                if f is not None:
                    f(tid)
                self._ltid = tid
                return tid
            finally:
                self._txn = None
                self._transaction = None
                self._commit_lock.release()

    def tpc_abort(self, transaction):
        with self._lock:
            if transaction is not self._transaction:
                return
            txn, self._txn = self._txn, None
            self._transaction = None
            try:
                if txn is not None:
                    txn.abort()
            finally:
                self._commit_lock.release()

    # ---- undo ----

    def undo(self, transaction_id, transaction):
        if self._is_read_only:
            raise POSException.ReadOnlyError()
        self._check_transaction(transaction)
        engine = self._engine
        try:
            oids = engine.txn_info(transaction_id)[5]
        except _engine.Error as e:
            if _status(e) == _engine.DS_ENOTFOUND:
                raise POSException.UndoError(_message(e)) from None
            raise _storage_error(e) from None
        why = "some objects were modified by a later transaction"
        if not any(oid in self._py_written for oid in oids):
            # the engine's undo: it copies the revisions back (it knows
            # what earlier undos of this transaction restored), and
            # refuses (our transaction left as it was) when a later
            # transaction changed one of the objects
            try:
                oids = self._txn.undo(transaction_id)
            except _engine.Error as e:
                if _status(e) != _engine.DS_ECONFLICT:
                    raise _storage_error(e) from None
                why = _message(e)
            else:
                try:
                    for oid in oids:
                        prev = engine.revision(oid, transaction_id)[0]
                        self._written[oid] = (
                            engine.revision(oid, prev)[2]
                            if prev != z64 else b"")
                except _engine.Error as e:
                    raise _storage_error(e) from None
                return self._txn.tid, oids
        # try the objects' own conflict resolution, as FileStorage does
        return self._txn.tid, self._undo_resolving(transaction_id, why)

    def _undo_resolving(self, tid, why):
        """Undo transaction tid where later transactions changed some of
        its objects: each such object gets the result of its
        _p_resolveConflict(state written by tid, current state, state
        before tid); the others are copied back as the engine's undo
        does. Nothing is written unless every object can be undone."""
        engine = self._engine
        try:
            oids = engine.txn_info(tid)[5]
        except _engine.Error as e:
            raise _storage_error(e) from None
        writes = []
        for oid in oids:
            try:
                prev, _uf, _data = engine.revision(oid, tid)
                before = engine.revision(oid, prev)[2] if prev != z64 \
                    else b""
                current = engine.current_serial(oid)
                cur_undo_from, cur_data = engine.revision(oid, current)[1:]
            except _engine.Error as e:
                raise POSException.UndoError(_message(e), oid) from None
            if oid in self._written:
                # changed earlier in this very transaction (undoing
                # several transactions at once): resolve against that
                cur_data = self._written[oid]
            elif current == tid or cur_undo_from == tid:
                writes.append(("copy", oid, before, prev))
                continue
            if not before or not cur_data:
                # undoing a creation that later transactions built on
                raise POSException.UndoError(why, oid)
            try:
                data = self.tryToResolveConflict(oid, current, tid, before,
                                                 cur_data)
            except POSException.ConflictError:
                raise POSException.UndoError(why, oid) from None
            writes.append(("resolved", oid, data, current))
        try:
            for kind, oid, data, serial in writes:
                if kind == "copy":
                    self._txn.restore(oid, self._txn.tid, data,
                                      serial if serial != z64 else None)
                else:
                    self._txn.store(oid, serial, data)
                self._written[oid] = data
                self._py_written.add(oid)
        except _engine.Error as e:
            raise _storage_error(e) from None
        return [w[1] for w in writes]

    def _undoable(self, tid, oids):
        """The original's rule: every object of the transaction has its
        revision, and the revision before it (unless it was a creation)
        still exists (a pack may have removed it)."""
        for oid in oids:
            try:
                prev, _undo_from, _data = self._engine.revision(oid, tid)
                if prev != z64:
                    self._engine.revision(oid, prev)
            except _engine.Error as e:
                if _status(e) == _engine.DS_ENOTFOUND:
                    return False
                raise _storage_error(e) from None
        return True

    def undoLog(self, first=0, last=-20, filter=None):
        if last < 0:
            last = first - last
        out = []
        i = 0
        for (tid, _prev, user, desc, ext, oids) in self._newest_first():
            if i >= last:
                break
            d = {"id": tid, "time": TimeStamp(tid).timeTime(),
                 "user_name": user, "description": desc}
            if ext:
                try:
                    d.update(_loads(ext))
                except Exception:
                    pass
            if not self._undoable(tid, oids):
                continue
            if filter is None or filter(d):
                if i >= first:
                    out.append(d)
                i += 1
        return out

    def _newest_first(self):
        """Transactions newest first, read one at a time along the back
        pointers (a caller that stops early reads no more), ending at the
        first transaction or where a pack removed the rest."""
        engine = self._engine
        tid = self.lastTransaction()
        last_pack = engine.last_pack()
        while tid != z64:
            try:
                info = engine.txn_info(tid)
            except _engine.Error as e:
                if _status(e) == _engine.DS_ENOTFOUND and tid < last_pack:
                    return
                raise _storage_error(e) from None
            yield info
            if info[1] >= tid:
                raise DirectoryStorageError(
                    "%s: the back pointer of transaction %s does not go "
                    "back in time" % (self._path, tid.hex().upper()))
            tid = info[1]

    def lastInvalidations(self, size):
        """The last `size` transactions as [(tid, [oid, ...])], oldest
        first: what a ZEO server sends a reconnecting client so that it
        can keep its cache."""
        out = []
        for info in self._newest_first():
            if len(out) >= size:
                break
            out.append((info[0], list(info[5])))
        out.reverse()
        return out

    # ---- iteration ----

    def iterator(self, start=None, stop=None):
        return TransactionIterator(self, start, stop)

    # ---- copying ----

    def copyTransactionsFrom(self, other, verbose=0):
        _copy_transactions(other, self, verbose)

    # ---- pack ----

    def pack(self, t, referencesf, gc=None):
        """Pack as the original's Full.pack(t, referencesf): the engine's
        pack (ds_storage_pack, the GIL released; commits and reads go on
        meanwhile) at the pack time t (seconds since the epoch), which it
        moves back to now - [storage] min_pack_time and, when that is not
        0, to the last transaction. Revisions older than the pack time
        that are not current, objects unreachable from the root at that
        time and transactions that keep nothing are removed (renamed
        "*-<unixtime>-deleted", kept [storage] delay_delete seconds);
        x.packed records the pack time.

        referencesf is not called: the engine reads the references of
        ZODB pickles itself (its scanner gives ZODB.serialize.referencesf's
        answer, tests/unit/test_refscan.c), as it must to pack without
        Python (`ds pack`). gc=False (pack without garbage collection)
        raises PackNotSupported: as the original, a pack always removes
        unreachable objects. Raises DirectoryStorageError (status
        DS_EBUSY) while the storage is in snapshot mode for someone else,
        DS_ECORRUPT (nothing removed) when a reachable object is missing
        or unreadable, ReadOnlyError when read-only."""
        if self._is_read_only:
            raise POSException.ReadOnlyError()
        if gc is not None and not gc:
            raise PackNotSupported(
                "pack %s: a DirectoryStorage pack always collects garbage "
                "(gc=False is not supported); the storage is unchanged"
                % self._path)
        # The original's timestamp2tid(t); the engine lowers it to its
        # limits itself, from this process's clock as the original's
        # pack (ZODB's tests replace time.time). A time beyond now is now
        # (the engine would lower it to now at most, and a far-future
        # year has no TimeStamp).
        now = time.time()
        t = min(float(t), now)
        try:
            self._pack_stats = self._engine.pack(_tid_of_time(t), now)
        except _engine.Error as e:
            raise _storage_error(e) from None

    # ---- snapshot mode (the original's extension methods) ----

    def getExtensionMethods(self):
        return {"enter_snapshot": None, "leave_snapshot": None,
                "get_snapshot_code": None, "is_directory_storage": None}

    def is_directory_storage(self):
        return 1

    def enter_snapshot(self, code):
        """Enter snapshot mode "user/<code>" for a process outside this
        one (a backup, `ds snapshot` through a snapshot.conf `http`
        line): as the original, the journal is flushed into A, later
        writes go to B, and this process lets go of misc/sublock, which
        that process must then lock to be sure A stays a snapshot."""
        full = "user/" + code
        try:
            self._engine.snapshot_enter(full)
        except _engine.Error as e:
            raise _storage_error(e) from None
        try:
            self._engine.snapshot_let_go(full)
        except _engine.Error as e:
            try:
                self._engine.snapshot_leave(full)
            except _engine.Error:
                pass
            raise _storage_error(e) from None

    def leave_snapshot(self, code):
        """Leave snapshot mode "user/<code>": misc/sublock is taken back
        first, which fails (DirectoryStorageError, status DS_EBUSY,
        still in snapshot mode) while the snapshot user holds it, as the
        original's half_relock; then B is moved back over A."""
        try:
            self._engine.snapshot_leave("user/" + code)
        except _engine.Error as e:
            raise _storage_error(e) from None

    def get_snapshot_code(self):
        return self._engine.snapshot_code()


def _tid_of_time(t):
    """The tid of unix time t, as the original's timestamp2tid."""
    return TimeStamp(*(time.gmtime(t)[:5] + (t % 60,))).raw()


def _loads(b):
    from ZODB._compat import loads
    return loads(b)


class TransactionIterator:
    """IStorageIteration's iterator: transactions oldest first, from start
    to stop (inclusive), each iterating its data records."""

    def __init__(self, storage, start, stop):
        self._storage = storage
        try:
            tids = storage._engine.tids(start or z64)
        except _engine.Error as e:
            raise _storage_error(e) from None
        tids.reverse()
        if stop is not None:
            tids = [t for t in tids if t <= stop]
        self._tids = iter(tids)
        self._closed = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        tid = next(self._tids)
        try:
            (_t, _prev, user, desc, ext,
             oids) = self._storage._engine.txn_info(tid)
        except _engine.Error as e:
            raise _storage_error(e) from None
        return TransactionRecordIterator(self._storage, tid, user, desc,
                                         ext, oids)

    next = __next__

    def close(self):
        self._closed = True


class TransactionRecordIterator(TransactionRecord):
    """One transaction of the iteration: its records in the order the
    transaction file lists its oids."""

    def __init__(self, storage, tid, user, desc, ext, oids):
        TransactionRecord.__init__(self, tid, ' ', user, desc, ext)
        self._storage = storage
        self._oids = oids

    def __iter__(self):
        engine = self._storage._engine
        for oid in self._oids:
            try:
                _prev, undo_from, data = engine.revision(oid, self.tid)
            except _engine.Error as e:
                if _status(e) == _engine.DS_ENOTFOUND:
                    continue   # removed by a pack
                raise _storage_error(e) from None
            yield DataRecord(oid, self.tid, data if data else None,
                             undo_from if undo_from != z64 else None)
