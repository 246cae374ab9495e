/*
 * _engine.c - the CPython extension over libdirstorage: one Storage object
 * per open storage home and one Txn object per open transaction. Only what
 * ZODB's interfaces need; the ZODB semantics (exceptions, conflict
 * resolution, the commit lock, undo log, iteration) live in the Python
 * package around it.
 *
 * Every call into the engine runs with the GIL released, so ZODB's
 * threads read and commit concurrently; the engine is thread-safe (one
 * mutex for its state, reads on their own descriptors, one transaction at
 * a time). A read-write lock per Storage keeps close() from freeing the
 * engine under a call in another thread: calls hold it shared, close
 * exclusive.
 *
 * Oids and tids cross the boundary as ZODB carries them: 8-byte big-endian
 * bytes. Engine failures raise dirstorage._engine.Error(status, message)
 * whose `status` is the engine's DS_E* code (module constants of the same
 * names).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dirstorage.h"

static PyObject *EngineError;

typedef struct {
	PyObject_HEAD
	ds_storage *s;
	pthread_rwlock_t rw;    /* shared: any call; exclusive: close */
	int rw_init;
} StorageObject;

typedef struct {
	PyObject_HEAD
	StorageObject *owner;   /* strong reference */
	ds_txn *t;              /* NULL once finished or aborted */
	ds_tid tid;
} TxnObject;

static PyTypeObject StorageType;
static PyTypeObject TxnType;

/* ---- helpers ---- */

static PyObject *
engine_raise(int status, const ds_error *err)
{
	PyObject *args;

	/* Error(status, message): the Python layer maps the status */
	args = Py_BuildValue("(is)", status,
	                     err->msg[0] ? err->msg : ds_strerror(status));
	if (args == NULL)
		return NULL;
	PyErr_SetObject(EngineError, args);
	Py_DECREF(args);
	return NULL;
}

static PyObject *
id_to_bytes(uint64_t v)
{
	unsigned char b[8];

	ds_put_u64(b, v);
	return PyBytes_FromStringAndSize((const char *)b, 8);
}

/* "O&" converter: 8 bytes -> uint64_t. */
static int
bytes_to_id(PyObject *o, void *out)
{
	char *p;
	Py_ssize_t n;

	if (!PyBytes_Check(o) || PyBytes_AsStringAndSize(o, &p, &n) < 0 ||
	    n != 8) {
		PyErr_SetString(PyExc_TypeError,
		                "oids and tids are 8-byte bytes objects");
		return 0;
	}
	*(uint64_t *)out = ds_get_u64((const unsigned char *)p);
	return 1;
}

/* Take the storage's lock shared without the GIL; fails when closed. The
 * caller has released the GIL. */
static int
storage_enter(StorageObject *so)
{
	pthread_rwlock_rdlock(&so->rw);
	if (so->s == NULL) {
		pthread_rwlock_unlock(&so->rw);
		return -1;
	}
	return 0;
}

static void
storage_leave(StorageObject *so)
{
	pthread_rwlock_unlock(&so->rw);
}

static PyObject *
closed_error(void)
{
	PyErr_SetString(PyExc_ValueError, "the storage is closed");
	return NULL;
}

/* Run `stmt` (which sets rc) with the GIL released and the storage held
 * open; rc = -1 when it was closed. */
#define ENGINE(so, stmt)                                                  \
	do {                                                              \
		Py_BEGIN_ALLOW_THREADS                                    \
		if (storage_enter(so) == 0) {                             \
			stmt;                                             \
			storage_leave(so);                                \
		} else {                                                  \
			rc = -1;                                          \
		}                                                         \
		Py_END_ALLOW_THREADS                                      \
	} while (0)

#define ENGINE_FAIL(rc, err) \
	((rc) < 0 ? closed_error() : engine_raise((rc), &(err)))

/* ---- Storage ---- */

static PyObject *
Storage_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	StorageObject *so = (StorageObject *)type->tp_alloc(type, 0);

	if (so == NULL)
		return NULL;
	so->s = NULL;
	pthread_rwlock_init(&so->rw, NULL);
	so->rw_init = 1;
	return (PyObject *)so;
}

static int
Storage_init(StorageObject *so, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"home", "flags", NULL};
	PyObject *homeobj = NULL;
	unsigned int flags = 0;
	ds_error err;
	ds_storage *s = NULL;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|I", kwlist,
	                                 PyUnicode_FSConverter, &homeobj,
	                                 &flags))
		return -1;
	if (so->s != NULL) {
		Py_DECREF(homeobj);
		PyErr_SetString(PyExc_ValueError, "already open");
		return -1;
	}
	ds_error_clear(&err);
	Py_BEGIN_ALLOW_THREADS
	rc = ds_storage_open(PyBytes_AS_STRING(homeobj), flags, &s, &err);
	Py_END_ALLOW_THREADS
	Py_DECREF(homeobj);
	if (rc != DS_OK) {
		engine_raise(rc, &err);
		return -1;
	}
	so->s = s;
	return 0;
}

static PyObject *
Storage_close(StorageObject *so, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"quick", NULL};
	int quick = 0, rc = DS_OK;
	ds_error err;
	ds_storage *s;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", kwlist, &quick))
		return NULL;
	ds_error_clear(&err);
	Py_BEGIN_ALLOW_THREADS
	pthread_rwlock_wrlock(&so->rw);
	s = so->s;
	so->s = NULL;
	pthread_rwlock_unlock(&so->rw);
	if (s != NULL)
		rc = ds_storage_close(s, quick ? DS_CLOSE_QUICK : 0, &err);
	Py_END_ALLOW_THREADS
	if (rc != DS_OK)
		return engine_raise(rc, &err);
	Py_RETURN_NONE;
}

static void
Storage_dealloc(StorageObject *so)
{
	if (so->s != NULL) {
		ds_error err;
		Py_BEGIN_ALLOW_THREADS
		ds_storage_close(so->s, 0, &err);
		Py_END_ALLOW_THREADS
		so->s = NULL;
	}
	if (so->rw_init)
		pthread_rwlock_destroy(&so->rw);
	Py_TYPE(so)->tp_free((PyObject *)so);
}

static PyObject *
Storage_closed(StorageObject *so, void *unused)
{
	return PyBool_FromLong(so->s == NULL);
}

/* last_tid / last_oid / last_pack: cheap, under the engine's mutex. */
static PyObject *
Storage_last(StorageObject *so, int which)
{
	uint64_t v = 0;
	int rc = 0;

	ENGINE(so, v = which == 0 ? ds_storage_last_tid(so->s) :
	               which == 1 ? ds_storage_last_oid(so->s) :
	                            ds_storage_last_pack(so->s));
	if (rc < 0)
		return closed_error();
	return id_to_bytes(v);
}

static PyObject *
Storage_last_tid(StorageObject *so, PyObject *unused)
{
	return Storage_last(so, 0);
}

static PyObject *
Storage_last_oid(StorageObject *so, PyObject *unused)
{
	return Storage_last(so, 1);
}

static PyObject *
Storage_last_pack(StorageObject *so, PyObject *unused)
{
	return Storage_last(so, 2);
}

static PyObject *
Storage_config(StorageObject *so, PyObject *unused)
{
	ds_config c;
	char home[4096];
	int rc = 0;

	ENGINE(so, (c = *ds_storage_config(so->s),
	            snprintf(home, sizeof(home), "%s",
	                     ds_storage_home(so->s))));
	if (rc < 0)
		return closed_error();
	return Py_BuildValue(
	    "{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:l,s:l}",
	    "home", home, "format", ds_layout_str(c.layout),
	    "classname", c.classname, "identity", c.identity,
	    "md5_write", c.md5_write, "md5_read", c.md5_read,
	    "md5_undolog", c.md5_undolog, "md5_undo", c.md5_undo,
	    "md5_history", c.md5_history, "sync", c.sync,
	    "quick_shutdown", c.quick_shutdown, "dirsync", c.dirsync,
	    "delay_delete", c.delay_delete, "min_pack_time", c.min_pack_time);
}

static PyObject *
Storage_new_oid(StorageObject *so, PyObject *unused)
{
	ds_error err;
	ds_oid oid = 0;
	int rc;

	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_new_oid(so->s, &oid, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	return id_to_bytes(oid);
}

static PyObject *
Storage_save_oid(StorageObject *so, PyObject *unused)
{
	ds_error err;
	int rc;

	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_save_oid(so->s, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	Py_RETURN_NONE;
}

static PyObject *
Storage_flush(StorageObject *so, PyObject *unused)
{
	ds_error err;
	int rc;

	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_flush(so->s, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	Py_RETURN_NONE;
}

/* Bytes from a malloc'd buffer (freed here). */
static PyObject *
take_bytes(unsigned char *buf, size_t len)
{
	PyObject *r = PyBytes_FromStringAndSize((const char *)buf,
	                                        (Py_ssize_t)len);
	free(buf);
	return r;
}

static PyObject *
Storage_current_serial(StorageObject *so, PyObject *args)
{
	ds_oid oid;
	ds_tid serial = 0;
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "O&", bytes_to_id, &oid))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_current_serial(so->s, oid, &serial, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	return id_to_bytes(serial);
}

static PyObject *
Storage_load(StorageObject *so, PyObject *args)
{
	ds_oid oid;
	ds_tid serial = 0;
	unsigned char *p = NULL;
	size_t len = 0;
	ds_error err;
	PyObject *data;
	int rc;

	if (!PyArg_ParseTuple(args, "O&", bytes_to_id, &oid))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_load(so->s, oid, &p, &len, &serial, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	data = take_bytes(p, len);
	if (data == NULL)
		return NULL;
	return Py_BuildValue("(NN)", data, id_to_bytes(serial));
}

static PyObject *
Storage_load_serial(StorageObject *so, PyObject *args)
{
	ds_oid oid;
	ds_tid serial;
	unsigned char *p = NULL;
	size_t len = 0;
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "O&O&", bytes_to_id, &oid, bytes_to_id,
	                      &serial))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_load_serial(so->s, oid, serial, &p, &len,
	                                       &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	return take_bytes(p, len);
}

static PyObject *
Storage_load_before(StorageObject *so, PyObject *args)
{
	ds_oid oid;
	ds_tid tid, serial = 0, next = 0;
	unsigned char *p = NULL;
	size_t len = 0;
	ds_error err;
	PyObject *data, *nextobj;
	int rc;

	if (!PyArg_ParseTuple(args, "O&O&", bytes_to_id, &oid, bytes_to_id,
	                      &tid))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_load_before(so->s, oid, tid, &p, &len,
	                                       &serial, &next, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	data = take_bytes(p, len);
	if (data == NULL)
		return NULL;
	if (next == 0) {
		nextobj = Py_None;
		Py_INCREF(nextobj);
	} else {
		nextobj = id_to_bytes(next);
	}
	return Py_BuildValue("(NNN)", data, id_to_bytes(serial), nextobj);
}

/* revision(oid, serial) -> (prev_serial, undo_from, data): the revision
 * file as written, data b"" for "creation undone". md5 checked when
 * present. */
static PyObject *
Storage_revision(StorageObject *so, PyObject *args)
{
	ds_oid oid;
	ds_tid serial;
	char name[DS_NAME_MAX];
	unsigned char *buf = NULL;
	size_t len = 0;
	ds_objrec rec;
	ds_error err;
	PyObject *r;
	int rc;

	if (!PyArg_ParseTuple(args, "O&O&", bytes_to_id, &oid, bytes_to_id,
	                      &serial))
		return NULL;
	ds_name_revision(oid, serial, name);
	ds_error_clear(&err);
	ENGINE(so, {
		rc = ds_storage_read_name(so->s, name, &buf, &len, &err);
		if (rc == DS_OK)
			rc = ds_objrec_decode(buf, len, name, &rec, &err);
		if (rc == DS_OK && (rec.oid != oid || rec.serial != serial)) {
			rc = DS_ECORRUPT;
			snprintf(err.msg, sizeof(err.msg),
			         "read %s in %s: oid or serial mismatch", name,
			         ds_storage_home(so->s));
		}
	});
	if (rc != DS_OK) {
		free(buf);
		return ENGINE_FAIL(rc, err);
	}
	r = Py_BuildValue("(NNy#)", id_to_bytes(rec.prev_serial),
	                  id_to_bytes(rec.undo_from), rec.pickle,
	                  (Py_ssize_t)rec.pickle_len);
	free(buf);
	return r;
}

static PyObject *
Storage_read_name(StorageObject *so, PyObject *args)
{
	const char *name;
	unsigned char *buf = NULL;
	size_t len = 0;
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "s", &name))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_read_name(so->s, name, &buf, &len, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	return take_bytes(buf, len);
}

static PyObject *
txninfo_tuple(const ds_txninfo *info)
{
	PyObject *oids, *o;

	oids = PyList_New((Py_ssize_t)info->noids);
	if (oids == NULL)
		return NULL;
	for (size_t i = 0; i < info->noids; i++) {
		o = id_to_bytes(info->oids[i]);
		if (o == NULL) {
			Py_DECREF(oids);
			return NULL;
		}
		PyList_SET_ITEM(oids, (Py_ssize_t)i, o);
	}
	return Py_BuildValue("(NNy#y#y#N)", id_to_bytes(info->tid),
	                     id_to_bytes(info->prev_tid), info->user,
	                     (Py_ssize_t)info->user_len, info->description,
	                     (Py_ssize_t)info->description_len,
	                     info->extension, (Py_ssize_t)info->extension_len,
	                     oids);
}

/* txn_info(tid) -> (tid, prev_tid, user, description, extension, oids) */
static PyObject *
Storage_txn_info(StorageObject *so, PyObject *args)
{
	ds_tid tid;
	ds_txninfo *info = NULL;
	ds_error err;
	PyObject *r;
	int rc;

	if (!PyArg_ParseTuple(args, "O&", bytes_to_id, &tid))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_txn_info(so->s, tid, &info, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	r = txninfo_tuple(info);
	ds_txninfo_free(info);
	return r;
}

struct tids_ctx {
	ds_tid start;
	ds_tid *v;
	size_t n, cap;
	int nomem;
};

/* A value no engine status uses: the walk stopped on purpose. */
#define TIDS_STOP 1000
#define TIDS_NOMEM 1001

static int
tids_collect(const ds_txninfo *info, void *vctx)
{
	struct tids_ctx *c = vctx;

	if (info->tid < c->start)
		return TIDS_STOP;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		ds_tid *v = realloc(c->v, cap * sizeof(*v));
		if (v == NULL)
			return TIDS_NOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = info->tid;
	return 0;
}

/* tids(start=0) -> list of the tids of the transaction chain that are
 * >= start, newest first (walking back from x.serial; stops where a pack
 * removed the rest of the history). */
static PyObject *
Storage_tids(StorageObject *so, PyObject *args)
{
	struct tids_ctx c;
	ds_error err;
	PyObject *list = NULL, *o;
	int rc;

	memset(&c, 0, sizeof(c));
	if (!PyArg_ParseTuple(args, "|O&", bytes_to_id, &c.start))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_txn_iterate(so->s, 0, DS_ITER_NEWEST_FIRST,
	                                       tids_collect, &c, &err));
	if (rc == TIDS_STOP)
		rc = DS_OK;
	if (rc == TIDS_NOMEM) {
		free(c.v);
		return PyErr_NoMemory();
	}
	if (rc != DS_OK) {
		free(c.v);
		return ENGINE_FAIL(rc, err);
	}
	list = PyList_New((Py_ssize_t)c.n);
	for (size_t i = 0; list != NULL && i < c.n; i++) {
		o = id_to_bytes(c.v[i]);
		if (o == NULL) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, o);
	}
	free(c.v);
	return list;
}

/* history(oid, max=0) -> [(serial, undo_from, prev_serial, size,
 * txn_known, user, description, extension)], newest first. */
static PyObject *
Storage_history(StorageObject *so, PyObject *args)
{
	ds_oid oid;
	Py_ssize_t max = 0;
	ds_history_entry *h = NULL;
	size_t n = 0;
	ds_error err;
	PyObject *list, *e;
	int rc;

	if (!PyArg_ParseTuple(args, "O&|n", bytes_to_id, &oid, &max))
		return NULL;
	if (max < 0)
		max = 0;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_history(so->s, oid, (size_t)max, &h, &n,
	                                   &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list != NULL && i < n; i++) {
		e = Py_BuildValue("(NNNnis#s#y#)", id_to_bytes(h[i].serial),
		                  id_to_bytes(h[i].undo_from),
		                  id_to_bytes(h[i].prev_serial),
		                  (Py_ssize_t)h[i].size, h[i].txn_known,
		                  h[i].user, (Py_ssize_t)strlen(h[i].user),
		                  h[i].description,
		                  (Py_ssize_t)strlen(h[i].description),
		                  h[i].extension ? (const char *)h[i].extension
		                                 : "",
		                  (Py_ssize_t)h[i].extension_len);
		if (e == NULL) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, e);
	}
	ds_history_free(h, n);
	return list;
}

/* op: 0 leave, 1 enter, 2 let go of misc/sublock */
static PyObject *
Storage_snapshot(StorageObject *so, PyObject *args, int op)
{
	const char *code;
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "s", &code))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = op == 1 ? ds_storage_snapshot_enter(so->s, code, &err)
	           : op == 2 ? ds_storage_snapshot_let_go(so->s, code, &err)
	           : ds_storage_snapshot_leave(so->s, code, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	Py_RETURN_NONE;
}

static PyObject *
Storage_snapshot_enter(StorageObject *so, PyObject *args)
{
	return Storage_snapshot(so, args, 1);
}

static PyObject *
Storage_snapshot_leave(StorageObject *so, PyObject *args)
{
	return Storage_snapshot(so, args, 0);
}

static PyObject *
Storage_snapshot_let_go(StorageObject *so, PyObject *args)
{
	return Storage_snapshot(so, args, 2);
}

static PyObject *
Storage_snapshot_code(StorageObject *so, PyObject *unused)
{
	char code[DS_SNAPSHOT_CODE_MAX + 16];
	int rc = 0;

	ENGINE(so, ds_storage_snapshot_code(so->s, code));
	if (rc < 0)
		return closed_error();
	return PyUnicode_DecodeFSDefault(code);
}

/* pack(before, now=0.0) -> dict of ds_pack_stats: ds_storage_pack with
 * the GIL released (other threads commit and read meanwhile: the engine
 * packs online); now: ds_pack_opts.now. */
static PyObject *
Storage_pack(StorageObject *so, PyObject *args)
{
	struct ds_pack_opts opts;
	struct ds_pack_stats st;
	ds_tid before;
	ds_error err;
	int rc;

	memset(&opts, 0, sizeof(opts));
	if (!PyArg_ParseTuple(args, "O&|d", bytes_to_id, &before, &opts.now))
		return NULL;
	ds_error_clear(&err);
	ENGINE(so, rc = ds_storage_pack(so->s, before, &opts, &st, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	return Py_BuildValue("{s:N,s:N,s:O,s:k,s:k,s:k,s:k,s:k,s:k}",
	                     "threshold", id_to_bytes(st.threshold),
	                     "packed", id_to_bytes(st.packed),
	                     "empty", st.empty ? Py_True : Py_False,
	                     "objects_kept", st.objects_kept,
	                     "revisions_kept", st.revisions_kept,
	                     "files_kept", st.files_kept,
	                     "files_removed", st.files_removed,
	                     "leftovers_purged", st.leftovers_purged,
	                     "relinked", st.relinked);
}

/* begin(user, description, extension, tid=None) -> Txn. Waits (without
 * the GIL) while another transaction of this storage is open. */
static PyObject *
Storage_begin(StorageObject *so, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"user", "description", "extension", "tid",
	                         NULL};
	const char *user, *desc;
	Py_buffer ext = {0};
	PyObject *tidobj = Py_None;
	ds_tid want = 0;
	ds_txn *t = NULL;
	ds_error err;
	TxnObject *to;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "yyy*|O", kwlist, &user,
	                                 &desc, &ext, &tidobj))
		return NULL;
	if (tidobj != Py_None && !bytes_to_id(tidobj, &want)) {
		PyBuffer_Release(&ext);
		return NULL;
	}
	ds_error_clear(&err);
	ENGINE(so, rc = tidobj == Py_None
	           ? ds_txn_begin(so->s, user, desc, ext.buf,
	                          (size_t)ext.len, &t, &err)
	           : ds_txn_begin_at(so->s, want, user, desc, ext.buf,
	                             (size_t)ext.len, &t, &err));
	PyBuffer_Release(&ext);
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	to = PyObject_New(TxnObject, &TxnType);
	if (to == NULL) {
		Py_BEGIN_ALLOW_THREADS
		ds_txn_abort(t);
		Py_END_ALLOW_THREADS
		return NULL;
	}
	Py_INCREF(so);
	to->owner = so;
	to->t = t;
	to->tid = ds_txn_tid(t);
	return (PyObject *)to;
}

static PyMethodDef Storage_methods[] = {
	{"close", (PyCFunction)(void (*)(void))Storage_close,
	 METH_VARARGS | METH_KEYWORDS,
	 "close(quick=False): flush, enter snapshot mode, unlock"},
	{"last_tid", (PyCFunction)Storage_last_tid, METH_NOARGS, NULL},
	{"last_oid", (PyCFunction)Storage_last_oid, METH_NOARGS, NULL},
	{"last_pack", (PyCFunction)Storage_last_pack, METH_NOARGS, NULL},
	{"config", (PyCFunction)Storage_config, METH_NOARGS, NULL},
	{"new_oid", (PyCFunction)Storage_new_oid, METH_NOARGS, NULL},
	{"save_oid", (PyCFunction)Storage_save_oid, METH_NOARGS, NULL},
	{"flush", (PyCFunction)Storage_flush, METH_NOARGS, NULL},
	{"current_serial", (PyCFunction)Storage_current_serial, METH_VARARGS,
	 NULL},
	{"load", (PyCFunction)Storage_load, METH_VARARGS, NULL},
	{"load_serial", (PyCFunction)Storage_load_serial, METH_VARARGS, NULL},
	{"load_before", (PyCFunction)Storage_load_before, METH_VARARGS, NULL},
	{"revision", (PyCFunction)Storage_revision, METH_VARARGS, NULL},
	{"read_name", (PyCFunction)Storage_read_name, METH_VARARGS, NULL},
	{"txn_info", (PyCFunction)Storage_txn_info, METH_VARARGS, NULL},
	{"tids", (PyCFunction)Storage_tids, METH_VARARGS, NULL},
	{"history", (PyCFunction)Storage_history, METH_VARARGS, NULL},
	{"snapshot_enter", (PyCFunction)Storage_snapshot_enter, METH_VARARGS,
	 NULL},
	{"snapshot_leave", (PyCFunction)Storage_snapshot_leave, METH_VARARGS,
	 NULL},
	{"snapshot_let_go", (PyCFunction)Storage_snapshot_let_go, METH_VARARGS,
	 "snapshot_let_go(code): release misc/sublock while in snapshot mode "
	 "code (ds_storage_snapshot_let_go)"},
	{"pack", (PyCFunction)Storage_pack, METH_VARARGS,
	 "pack(before, now=0.0): ds_storage_pack, -> its statistics"},
	{"snapshot_code", (PyCFunction)Storage_snapshot_code, METH_NOARGS,
	 NULL},
	{"begin", (PyCFunction)(void (*)(void))Storage_begin,
	 METH_VARARGS | METH_KEYWORDS, NULL},
	{NULL, NULL, 0, NULL}
};

static PyGetSetDef Storage_getset[] = {
	{"closed", (getter)Storage_closed, NULL, NULL, NULL},
	{NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject StorageType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "dirstorage._engine.Storage",
	.tp_basicsize = sizeof(StorageObject),
	.tp_dealloc = (destructor)Storage_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Storage(home, flags=0): an open DirectoryStorage home",
	.tp_methods = Storage_methods,
	.tp_getset = Storage_getset,
	.tp_init = (initproc)Storage_init,
	.tp_new = Storage_new,
};

/* ---- Txn ---- */

static int
txn_usable(TxnObject *to)
{
	if (to->t == NULL) {
		PyErr_SetString(PyExc_ValueError,
		                "the transaction is finished or aborted");
		return 0;
	}
	return 1;
}

static PyObject *
Txn_store(TxnObject *to, PyObject *args)
{
	ds_oid oid;
	ds_tid expected;
	Py_buffer data;
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "O&O&y*", bytes_to_id, &oid, bytes_to_id,
	                      &expected, &data))
		return NULL;
	if (!txn_usable(to)) {
		PyBuffer_Release(&data);
		return NULL;
	}
	ds_error_clear(&err);
	ENGINE(to->owner, rc = ds_txn_store(to->t, oid, expected, data.buf,
	                                    (size_t)data.len, &err));
	PyBuffer_Release(&data);
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	Py_RETURN_NONE;
}

/* restore(oid, serial, data or None, data_serial or None) */
static PyObject *
Txn_restore(TxnObject *to, PyObject *args)
{
	ds_oid oid;
	ds_tid serial, dserial = 0;
	PyObject *dataobj, *dsobj;
	Py_buffer data = {0};
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "O&O&OO", bytes_to_id, &oid, bytes_to_id,
	                      &serial, &dataobj, &dsobj))
		return NULL;
	if (dsobj != Py_None && !bytes_to_id(dsobj, &dserial))
		return NULL;
	if (dataobj != Py_None &&
	    PyObject_GetBuffer(dataobj, &data, PyBUF_SIMPLE) < 0)
		return NULL;
	if (!txn_usable(to)) {
		PyBuffer_Release(&data);
		return NULL;
	}
	ds_error_clear(&err);
	ENGINE(to->owner, rc = ds_txn_restore(to->t, oid, serial, data.buf,
	                                      (size_t)data.len, dserial,
	                                      &err));
	if (dataobj != Py_None)
		PyBuffer_Release(&data);
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	Py_RETURN_NONE;
}

static PyObject *
Txn_undo(TxnObject *to, PyObject *args)
{
	ds_tid tid;
	ds_oid *oids = NULL;
	size_t n = 0;
	ds_error err;
	PyObject *list, *o;
	int rc;

	if (!PyArg_ParseTuple(args, "O&", bytes_to_id, &tid))
		return NULL;
	if (!txn_usable(to))
		return NULL;
	ds_error_clear(&err);
	ENGINE(to->owner, rc = ds_txn_undo(to->t, tid, &oids, &n, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list != NULL && i < n; i++) {
		o = id_to_bytes(oids[i]);
		if (o == NULL) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, o);
	}
	free(oids);
	return list;
}

static PyObject *
Txn_vote(TxnObject *to, PyObject *unused)
{
	ds_error err;
	int rc;

	if (!txn_usable(to))
		return NULL;
	ds_error_clear(&err);
	ENGINE(to->owner, rc = ds_txn_vote(to->t, &err));
	if (rc != DS_OK)
		return ENGINE_FAIL(rc, err);
	Py_RETURN_NONE;
}

/* finish() -> tid. The transaction object is spent afterwards, whatever
 * happens. An engine error after the commit point (only the fsync of
 * journal/ failed) carries `committed_tid`. */
static PyObject *
Txn_finish(TxnObject *to, PyObject *unused)
{
	ds_error err;
	ds_tid tid = 0;
	ds_txn *t;
	int rc;

	if (!txn_usable(to))
		return NULL;
	t = to->t;
	to->t = NULL;
	ds_error_clear(&err);
	ENGINE(to->owner, rc = ds_txn_finish(t, &tid, &err));
	if (rc < 0) {
		/* closed under us: the engine aborted nothing; the close
		 * freed everything already */
		return closed_error();
	}
	if (rc != DS_OK) {
		PyObject *exc_type, *exc, *tb;
		engine_raise(rc, &err);
		if (tid != 0) {
			PyErr_Fetch(&exc_type, &exc, &tb);
			PyErr_NormalizeException(&exc_type, &exc, &tb);
			if (exc != NULL) {
				PyObject *v = id_to_bytes(tid);
				if (v != NULL)
					PyObject_SetAttrString(
					    exc, "committed_tid", v);
				Py_XDECREF(v);
			}
			PyErr_Restore(exc_type, exc, tb);
		}
		return NULL;
	}
	return id_to_bytes(tid);
}

static void
txn_abort_nogil(TxnObject *to)
{
	ds_txn *t = to->t;
	int rc = 0;

	to->t = NULL;
	if (t == NULL)
		return;
	ENGINE(to->owner, ds_txn_abort(t));
	(void)rc;
}

static PyObject *
Txn_abort(TxnObject *to, PyObject *unused)
{
	txn_abort_nogil(to);
	Py_RETURN_NONE;
}

static PyObject *
Txn_get_tid(TxnObject *to, void *unused)
{
	return id_to_bytes(to->tid);
}

static void
Txn_dealloc(TxnObject *to)
{
	txn_abort_nogil(to);
	Py_XDECREF(to->owner);
	PyObject_Free(to);
}

static PyMethodDef Txn_methods[] = {
	{"store", (PyCFunction)Txn_store, METH_VARARGS, NULL},
	{"restore", (PyCFunction)Txn_restore, METH_VARARGS, NULL},
	{"undo", (PyCFunction)Txn_undo, METH_VARARGS, NULL},
	{"vote", (PyCFunction)Txn_vote, METH_NOARGS, NULL},
	{"finish", (PyCFunction)Txn_finish, METH_NOARGS, NULL},
	{"abort", (PyCFunction)Txn_abort, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL}
};

static PyGetSetDef Txn_getset[] = {
	{"tid", (getter)Txn_get_tid, NULL, NULL, NULL},
	{NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject TxnType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "dirstorage._engine.Txn",
	.tp_basicsize = sizeof(TxnObject),
	.tp_dealloc = (destructor)Txn_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "an open transaction (Storage.begin)",
	.tp_methods = Txn_methods,
	.tp_getset = Txn_getset,
};

/* ---- module ---- */

static PyObject *
mod_create(PyObject *self, PyObject *args)
{
	PyObject *homeobj;
	const char *classname = "Full", *format = "bushy";
	ds_error err;
	int rc;

	if (!PyArg_ParseTuple(args, "O&|ss", PyUnicode_FSConverter, &homeobj,
	                      &format, &classname))
		return NULL;
	ds_error_clear(&err);
	Py_BEGIN_ALLOW_THREADS
	rc = ds_storage_create(PyBytes_AS_STRING(homeobj), classname, format,
	                       &err);
	Py_END_ALLOW_THREADS
	Py_DECREF(homeobj);
	if (rc != DS_OK)
		return engine_raise(rc, &err);
	Py_RETURN_NONE;
}

static PyObject *
mod_tid_from_time(PyObject *self, PyObject *args)
{
	double t;

	if (!PyArg_ParseTuple(args, "d", &t))
		return NULL;
	return id_to_bytes(ds_tid_from_time(t));
}

static PyMethodDef module_methods[] = {
	{"create", mod_create, METH_VARARGS,
	 "create(home, format='bushy', classname='Full'): a new empty "
	 "storage, as mkds"},
	{"tid_from_time", mod_tid_from_time, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef engine_module = {
	PyModuleDef_HEAD_INIT, "dirstorage._engine",
	"libdirstorage, the DirectoryStorage engine in C", -1, module_methods,
	NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__engine(void)
{
	PyObject *m;
	static const struct { const char *name; int v; } consts[] = {
		{"DS_OK", DS_OK}, {"DS_EIO", DS_EIO}, {"DS_ENOMEM", DS_ENOMEM},
		{"DS_EINVAL", DS_EINVAL}, {"DS_ECORRUPT", DS_ECORRUPT},
		{"DS_ENOTFOUND", DS_ENOTFOUND}, {"DS_EEXIST", DS_EEXIST},
		{"DS_ELOCKED", DS_ELOCKED}, {"DS_ECONFIG", DS_ECONFIG},
		{"DS_ECONFLICT", DS_ECONFLICT}, {"DS_ESTATE", DS_ESTATE},
		{"DS_EPROTO", DS_EPROTO}, {"DS_EREFUSED", DS_EREFUSED},
		{"DS_EBUSY", DS_EBUSY},
		{"OPEN_READONLY", DS_OPEN_READONLY},
		{"OPEN_NOSYNC", DS_OPEN_NOSYNC},
		{"OPEN_NOTHREAD", DS_OPEN_NOTHREAD},
		{"OPEN_SYNCHRONOUS", DS_OPEN_SYNCHRONOUS},
		{"OPEN_CONTROL", DS_OPEN_CONTROL},
	};

	if (PyType_Ready(&StorageType) < 0 || PyType_Ready(&TxnType) < 0)
		return NULL;
	m = PyModule_Create(&engine_module);
	if (m == NULL)
		return NULL;
	EngineError = PyErr_NewException("dirstorage._engine.Error",
	                                 PyExc_Exception, NULL);
	if (EngineError == NULL)
		goto fail;
	Py_INCREF(EngineError);
	if (PyModule_AddObject(m, "Error", EngineError) < 0)
		goto fail;
	Py_INCREF(&StorageType);
	if (PyModule_AddObject(m, "Storage", (PyObject *)&StorageType) < 0)
		goto fail;
	Py_INCREF(&TxnType);
	if (PyModule_AddObject(m, "Txn", (PyObject *)&TxnType) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
		if (PyModule_AddIntConstant(m, consts[i].name, consts[i].v) < 0)
			goto fail;
	if (PyModule_AddStringConstant(m, "ENGINE_VERSION", ds_version()) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
