/*
 * refscan.c - the persistent references of a ZODB record, as
 * ZODB.serialize.referencesf finds them.
 *
 * A ZODB record is two pickles back to back: the class description, then
 * the state. Other persistent objects appear in them as "persistent ids":
 * an opcode PERSID (protocol 0: the id is the rest of the line) or
 * BINPERSID (protocols 1 and up: the id is the object on top of the
 * stack). ZODB writes these ids as
 *   - the oid, a byte string (py3 ZODB: SHORT_BINBYTES; py2 ZODB:
 *     SHORT_BINSTRING), for an object whose class is not needed;
 *   - a tuple (oid, class), the common form;
 *   - a list for the other kinds: ['w', (oid[, dbname])] weak reference,
 *     ['m', (dbname, oid, class)] cross-database reference, ['n', (dbname,
 *     oid)] cross-database without class, and ['p', ...] old forms.
 * referencesf runs the unpickler's "noload" twice (nothing is imported or
 * instantiated: globals load as None) collecting every persistent id, and
 * returns the oids of the first two kinds in order of appearance,
 * duplicates included; lists are skipped (weak and cross-database
 * references keep nothing alive). This file is a small pickle machine that
 * tracks only what that needs: which stack values are byte strings, text
 * strings, tuples (with their first element) and lists, the memo, and the
 * marks. Everything else is "some other object".
 *
 * What referencesf refuses is refused here too (DS_ECORRUPT with the
 * reason and the byte offset): an unknown opcode, a truncated pickle, a
 * stack or mark underflow, a memo key never stored, a persistent id that
 * is neither a string, a tuple nor a list, a text oid with non-ASCII
 * characters, a py2 string (STRING, BINSTRING, SHORT_BINSTRING) with a
 * byte over 0x7F anywhere (referencesf's unpickler decodes those as
 * ASCII), an extension code (none is registered), and fewer than two
 * pickles. A protocol 0 persistent id (PERSID) is its line's bytes: that
 * is what ZODB's pickler writes there, the id's str(). Bytes after the second STOP are
 * ignored, as the unpickler never reads them.
 *
 * Limits: the stack and the memo grow with the pickle (each opcode adds at
 * most one entry) and live only for the call; no recursion.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum rs_kind {
	RS_OTHER = 0,  /* anything we need not follow (None, int, dict, ...) */
	RS_MARK,
	RS_BYTES,      /* bytes, or a protocol 0-2 (py2) str */
	RS_TEXT,       /* unicode str (its UTF-8, possibly escaped form) */
	RS_TUPLE,
	RS_LIST,
};

/* One stack or memo value. Strings are (off, len) in the input (arena 0)
 * or in the decoded-string arena (arena 1). A tuple keeps its first
 * element's string, when it is one, in the same fields (fkind says which
 * kind it was). */
struct rs_val {
	unsigned char kind;
	unsigned char fkind;   /* RS_TUPLE: kind of element 0 (or RS_OTHER) */
	unsigned char arena;
	unsigned char ascii;   /* RS_TEXT: every character < 0x80 */
	size_t off, len;
};

struct rs_memo_ent {
	uint64_t key;
	int used;
	struct rs_val val;
};

struct rs {
	const unsigned char *p;
	size_t len, pos;
	struct rs_val *stack;
	size_t sp, scap;
	struct rs_memo_ent *memo;
	size_t mcap, mlive;
	unsigned char *arena;
	size_t alen, acap;
	ds_refscan_fn fn;
	void *ctx;
	ds_error *err;
};

static int
rs_fail(struct rs *r, const char *why)
{
	return ds_error_set(r->err, DS_ECORRUPT,
	                    "scan pickle for references: %s at byte %zu", why,
	                    r->pos);
}

static int
rs_push(struct rs *r, struct rs_val v)
{
	if (r->sp == r->scap) {
		size_t ncap = r->scap ? r->scap * 2 : 64;
		struct rs_val *n = realloc(r->stack, ncap * sizeof(*n));
		if (n == NULL)
			return ds_error_set(r->err, DS_ENOMEM,
			                    "scan pickle for references: out of "
			                    "memory");
		r->stack = n;
		r->scap = ncap;
	}
	r->stack[r->sp++] = v;
	return DS_OK;
}

static int
rs_push_kind(struct rs *r, int kind)
{
	struct rs_val v;

	memset(&v, 0, sizeof(v));
	v.kind = (unsigned char)kind;
	return rs_push(r, v);
}

/* Pop one value that must not be a mark (the unpickler would hand the
 * mark object on as a value; for us that is a malformed pickle). */
static int
rs_pop(struct rs *r, struct rs_val *out)
{
	if (r->sp == 0)
		return rs_fail(r, "stack underflow");
	r->sp--;
	if (out != NULL)
		*out = r->stack[r->sp];
	return DS_OK;
}

/* Index of the topmost mark. */
static int
rs_marker(struct rs *r, size_t *at)
{
	size_t i = r->sp;

	while (i > 0) {
		i--;
		if (r->stack[i].kind == RS_MARK) {
			*at = i;
			return DS_OK;
		}
	}
	return rs_fail(r, "no mark on the stack");
}

static int
rs_need(struct rs *r, size_t n)
{
	if (r->len - r->pos < n)
		return rs_fail(r, "pickle truncated");
	return DS_OK;
}

/* A line ending in '\n' starting at pos: its length without the '\n'. */
static int
rs_line(struct rs *r, size_t *len)
{
	const unsigned char *nl = memchr(r->p + r->pos, '\n', r->len - r->pos);

	if (nl == NULL)
		return rs_fail(r, "pickle truncated (line without newline)");
	*len = (size_t)(nl - (r->p + r->pos));
	return DS_OK;
}

/* Room for need more bytes in the arena. */
static int
rs_arena_reserve(struct rs *r, size_t need)
{
	if (r->acap - r->alen < need) {
		size_t ncap = r->acap ? r->acap : 256;
		unsigned char *n;

		while (ncap - r->alen < need)
			ncap *= 2;
		n = realloc(r->arena, ncap);
		if (n == NULL)
			return ds_error_set(r->err, DS_ENOMEM,
			                    "scan pickle for references: out of "
			                    "memory");
		r->arena = n;
		r->acap = ncap;
	}
	return DS_OK;
}

static const unsigned char *
rs_bytes(const struct rs *r, const struct rs_val *v)
{
	static const unsigned char empty[1];

	if (v->len == 0)
		return empty; /* the arena may not exist yet */
	return v->arena ? r->arena + v->off : r->p + v->off;
}

/* ---- memo: open addressing on the integer key ---- */

static size_t
rs_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k;
}

static int
rs_memo_put(struct rs *r, uint64_t key, const struct rs_val *v)
{
	size_t i;

	if ((r->mlive + 1) * 2 > r->mcap) {
		size_t ncap = r->mcap ? r->mcap * 2 : 64, j;
		struct rs_memo_ent *n = calloc(ncap, sizeof(*n));
		if (n == NULL)
			return ds_error_set(r->err, DS_ENOMEM,
			                    "scan pickle for references: out of "
			                    "memory");
		for (j = 0; j < r->mcap; j++) {
			if (!r->memo[j].used)
				continue;
			i = rs_hash(r->memo[j].key) & (ncap - 1);
			while (n[i].used)
				i = (i + 1) & (ncap - 1);
			n[i] = r->memo[j];
		}
		free(r->memo);
		r->memo = n;
		r->mcap = ncap;
	}
	i = rs_hash(key) & (r->mcap - 1);
	while (r->memo[i].used && r->memo[i].key != key)
		i = (i + 1) & (r->mcap - 1);
	if (!r->memo[i].used)
		r->mlive++;
	r->memo[i].used = 1;
	r->memo[i].key = key;
	r->memo[i].val = *v;
	return DS_OK;
}

static int
rs_memo_get(struct rs *r, uint64_t key)
{
	size_t i;

	if (r->mcap == 0)
		return rs_fail(r, "memo key not found");
	i = rs_hash(key) & (r->mcap - 1);
	while (r->memo[i].used) {
		if (r->memo[i].key == key)
			return rs_push(r, r->memo[i].val);
		i = (i + 1) & (r->mcap - 1);
	}
	return rs_fail(r, "memo key not found");
}

static int
rs_memo_top(struct rs *r, uint64_t key)
{
	if (r->sp == 0)
		return rs_fail(r, "memo store with an empty stack");
	if (r->stack[r->sp - 1].kind == RS_MARK)
		return rs_fail(r, "memo store of a mark");
	return rs_memo_put(r, key, &r->stack[r->sp - 1]);
}

/* Decimal key of PUT/GET (protocol 0 text). */
static int
rs_decimal(struct rs *r, size_t linelen, uint64_t *out)
{
	const unsigned char *s = r->p + r->pos;
	uint64_t v = 0;
	size_t i;

	if (linelen == 0 || linelen > 19)
		return rs_fail(r, "bad memo key");
	for (i = 0; i < linelen; i++) {
		if (s[i] < '0' || s[i] > '9')
			return rs_fail(r, "bad memo key");
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return DS_OK;
}

/* ---- strings ---- */

/* A string value spanning input bytes [pos, pos+n). */
static int
rs_push_span(struct rs *r, int kind, size_t n)
{
	struct rs_val v;
	size_t i;

	memset(&v, 0, sizeof(v));
	v.kind = (unsigned char)kind;
	v.off = r->pos;
	v.len = n;
	v.ascii = 1;
	if (kind == RS_TEXT)
		for (i = 0; i < n; i++)
			if (r->p[r->pos + i] >= 0x80)
				v.ascii = 0;
	r->pos += n;
	return rs_push(r, v);
}

/* STRING: a quoted Python 2 repr decoded as codecs.escape_decode does. */
static int
rs_string0(struct rs *r)
{
	size_t n = 0, len = 0, start = r->alen;
	const char *why;
	struct rs_val v;
	int rc;

	if ((rc = rs_line(r, &n)) != DS_OK ||
	    (rc = rs_arena_reserve(r, n + 1)) != DS_OK)
		return rc;
	why = ds_pickletext_string0(r->p + r->pos, n, r->arena + start, &len);
	if (why != NULL)
		return rs_fail(r, why);
	r->alen += len;
	memset(&v, 0, sizeof(v));
	v.kind = RS_BYTES;
	v.arena = 1;
	v.off = start;
	v.len = len;
	if (!ds_pickle_ascii(rs_bytes(r, &v), v.len))
		return rs_fail(r, "py2 string with non-ASCII bytes "
		                  "(referencesf decodes them as ASCII)");
	r->pos += n + 1;
	return rs_push(r, v);
}

/* UNICODE: raw-unicode-escape (only \uXXXX and \UXXXXXXXX are escapes);
 * we keep the characters as UTF-8 and whether all of them are ASCII. */
static int
rs_unicode0(struct rs *r)
{
	size_t n = 0, len = 0, start = r->alen;
	const char *why;
	struct rs_val v;
	int rc;

	if ((rc = rs_line(r, &n)) != DS_OK ||
	    (rc = rs_arena_reserve(r, 2 * n + 1)) != DS_OK)
		return rc;
	why = ds_pickletext_unicode0(r->p + r->pos, n, r->arena + start, &len);
	if (why != NULL)
		return rs_fail(r, why);
	r->alen += len;
	memset(&v, 0, sizeof(v));
	v.kind = RS_TEXT;
	v.arena = 1;
	v.ascii = (unsigned char)ds_pickle_ascii(r->arena + start, len);
	v.off = start;
	v.len = len;
	r->pos += n + 1;
	return rs_push(r, v);
}

/* ---- persistent ids ---- */

/* Report the oid of persistent id v, as referencesf: a string is the oid,
 * a tuple's first element is, a list is skipped. */
static int
rs_persistent(struct rs *r, const struct rs_val *v)
{
	int kind = v->kind, ascii = v->ascii;

	if (kind == RS_LIST)
		return DS_OK;
	if (kind == RS_TUPLE) {
		kind = v->fkind;
		if (kind != RS_BYTES && kind != RS_TEXT)
			return rs_fail(r, "persistent id is a tuple whose first "
			                  "element is not a string");
	} else if (kind != RS_BYTES && kind != RS_TEXT) {
		return rs_fail(r, "persistent id is not a string, tuple or "
		                  "list");
	}
	if (kind == RS_TEXT && !ascii)
		return rs_fail(r, "persistent id is text with non-ASCII "
		                  "characters");
	return r->fn(rs_bytes(r, v), v->len, r->ctx, r->err);
}

/* Build a tuple from stack[from..sp) (replacing those entries). */
static int
rs_tuple(struct rs *r, size_t from)
{
	struct rs_val t;

	memset(&t, 0, sizeof(t));
	t.kind = RS_TUPLE;
	if (r->sp > from) {
		const struct rs_val *e = &r->stack[from];
		if (e->kind == RS_BYTES || e->kind == RS_TEXT) {
			t.fkind = e->kind;
			t.arena = e->arena;
			t.ascii = e->ascii;
			t.off = e->off;
			t.len = e->len;
		}
	}
	r->sp = from;
	return rs_push(r, t);
}

/* Run the machine from r->pos to the next STOP. */
static int
rs_noload(struct rs *r)
{
	struct rs_val a;
	size_t n = 0, m = 0;
	uint64_t k = 0;
	int rc;

	r->sp = 0;
	for (;;) {
		unsigned char op;

		if (r->pos >= r->len)
			return rs_fail(r, "pickle truncated (no STOP)");
		op = r->p[r->pos++];
		switch (op) {
		case '.': /* STOP */
			if (r->sp == 0)
				return rs_fail(r, "STOP with an empty stack");
			return DS_OK;
		case 0x80: /* PROTO */
			if ((rc = rs_need(r, 1)) != DS_OK)
				return rc;
			if (r->p[r->pos] > 5)
				return rs_fail(r, "unsupported pickle protocol");
			r->pos++;
			break;
		case 0x95: /* FRAME */
			if ((rc = rs_need(r, 8)) != DS_OK)
				return rc;
			r->pos += 8;
			break;
		case '(': /* MARK */
			if ((rc = rs_push_kind(r, RS_MARK)) != DS_OK)
				return rc;
			break;
		case '0': /* POP */
			if (r->sp == 0)
				return rs_fail(r, "stack underflow");
			r->sp--;
			break;
		case '1': /* POP_MARK */
			if ((rc = rs_marker(r, &m)) != DS_OK)
				return rc;
			r->sp = m;
			break;
		case '2': /* DUP */
			if (r->sp == 0)
				return rs_fail(r, "stack underflow");
			if ((rc = rs_push(r, r->stack[r->sp - 1])) != DS_OK)
				return rc;
			break;
		/* numbers, None, booleans: values we never follow */
		case 'I': case 'L': case 'F':
			if ((rc = rs_line(r, &n)) != DS_OK)
				return rc;
			r->pos += n + 1;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'J': case 'G': case 'K': case 'M':
			n = op == 'J' ? 4 : op == 'G' ? 8 : op == 'K' ? 1 : 2;
			if ((rc = rs_need(r, n)) != DS_OK)
				return rc;
			r->pos += n;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 0x8a: /* LONG1 */
		case 0x8b: /* LONG4 */
			n = op == 0x8a ? 1 : 4;
			if ((rc = rs_need(r, n)) != DS_OK)
				return rc;
			k = ds_pickle_le(r->p + r->pos, (int)n);
			if (op == 0x8b && (k & 0x80000000u))
				return rs_fail(r, "LONG pickle has negative byte "
				                  "count");
			r->pos += n;
			if ((rc = rs_need(r, (size_t)k)) != DS_OK)
				return rc;
			r->pos += (size_t)k;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'N': case 0x88: case 0x89: /* NONE NEWTRUE NEWFALSE */
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		/* strings */
		case 'S':
			if ((rc = rs_string0(r)) != DS_OK)
				return rc;
			break;
		case 'V':
			if ((rc = rs_unicode0(r)) != DS_OK)
				return rc;
			break;
		case 'T': /* BINSTRING (signed length) */
		case 'U': /* SHORT_BINSTRING */
		case 'B': /* BINBYTES */
		case 'C': /* SHORT_BINBYTES */
		case 0x8e: /* BINBYTES8 */
		case 0x96: /* BYTEARRAY8 */
		case 'X': /* BINUNICODE */
		case 0x8c: /* SHORT_BINUNICODE */
		case 0x8d: /* BINUNICODE8 */ {
			int w = (op == 'U' || op == 'C' || op == 0x8c) ? 1 :
			        (op == 0x8e || op == 0x96 || op == 0x8d) ? 8 : 4;
			int kind = (op == 'X' || op == 0x8c || op == 0x8d) ?
			           RS_TEXT : op == 0x96 ? RS_OTHER : RS_BYTES;
			if ((rc = rs_need(r, (size_t)w)) != DS_OK)
				return rc;
			k = ds_pickle_le(r->p + r->pos, w);
			if (op == 'T' && (k & 0x80000000u))
				return rs_fail(r, "BINSTRING pickle has negative "
				                  "byte count");
			r->pos += (size_t)w;
			if (k > r->len - r->pos)
				return rs_fail(r, "pickle truncated");
			if ((op == 'T' || op == 'U') &&
			    !ds_pickle_ascii(r->p + r->pos, (size_t)k))
				return rs_fail(r, "py2 string with non-ASCII "
				                  "bytes (referencesf decodes "
				                  "them as ASCII)");
			if (kind == RS_OTHER) {
				r->pos += (size_t)k;
				rc = rs_push_kind(r, RS_OTHER);
			} else {
				rc = rs_push_span(r, kind, (size_t)k);
			}
			if (rc != DS_OK)
				return rc;
			break;
		}
		/* containers */
		case ')': /* EMPTY_TUPLE */
			if ((rc = rs_tuple(r, r->sp)) != DS_OK)
				return rc;
			break;
		case 't': /* TUPLE */
			if ((rc = rs_marker(r, &m)) != DS_OK)
				return rc;
			/* drop the mark itself, then build from what is above */
			memmove(&r->stack[m], &r->stack[m + 1],
			        (r->sp - m - 1) * sizeof(r->stack[0]));
			r->sp--;
			if ((rc = rs_tuple(r, m)) != DS_OK)
				return rc;
			break;
		case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
			n = (size_t)(op - 0x84);
			if (r->sp < n)
				return rs_fail(r, "stack underflow");
			for (m = r->sp - n; m < r->sp; m++)
				if (r->stack[m].kind == RS_MARK)
					return rs_fail(r, "mark inside a tuple");
			if ((rc = rs_tuple(r, r->sp - n)) != DS_OK)
				return rc;
			break;
		case ']': /* EMPTY_LIST */
			if ((rc = rs_push_kind(r, RS_LIST)) != DS_OK)
				return rc;
			break;
		case 'l': /* LIST */
			if ((rc = rs_marker(r, &m)) != DS_OK)
				return rc;
			r->sp = m;
			if ((rc = rs_push_kind(r, RS_LIST)) != DS_OK)
				return rc;
			break;
		case '}': case 0x8f: /* EMPTY_DICT EMPTY_SET */
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'd': case 0x91: /* DICT FROZENSET */
			if ((rc = rs_marker(r, &m)) != DS_OK)
				return rc;
			r->sp = m;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'a': /* APPEND: the value goes into the list (or away) */
			if (r->sp < 2)
				return rs_fail(r, "stack underflow");
			r->sp--;
			break;
		case 's': /* SETITEM */
			if (r->sp < 3)
				return rs_fail(r, "stack underflow");
			r->sp -= 2;
			break;
		case 'e': case 'u': case 0x90: /* APPENDS SETITEMS ADDITEMS */
			if ((rc = rs_marker(r, &m)) != DS_OK)
				return rc;
			if (m == 0)
				return rs_fail(r, "stack underflow");
			r->sp = m;
			break;
		/* classes and instances: noload makes None of them */
		case 'c': /* GLOBAL: module line, name line */
			for (n = 0; n < 2; n++) {
				size_t l;
				if ((rc = rs_line(r, &l)) != DS_OK)
					return rc;
				r->pos += l + 1;
			}
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 0x93: /* STACK_GLOBAL */
			if ((rc = rs_pop(r, NULL)) != DS_OK ||
			    (rc = rs_pop(r, NULL)) != DS_OK)
				return rc;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'i': /* INST: two lines, then objects from the mark */
			for (n = 0; n < 2; n++) {
				size_t l;
				if ((rc = rs_line(r, &l)) != DS_OK)
					return rc;
				r->pos += l + 1;
			}
			/* fall through */
		case 'o': /* OBJ */
			if ((rc = rs_marker(r, &m)) != DS_OK)
				return rc;
			if (op == 'o' && m + 1 >= r->sp)
				return rs_fail(r, "OBJ without a class");
			r->sp = m;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'R': case 0x81: /* REDUCE NEWOBJ */
			if ((rc = rs_pop(r, NULL)) != DS_OK ||
			    (rc = rs_pop(r, NULL)) != DS_OK)
				return rc;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 0x92: /* NEWOBJ_EX */
			if (r->sp < 3)
				return rs_fail(r, "stack underflow");
			r->sp -= 3;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'b': /* BUILD */
			if ((rc = rs_pop(r, NULL)) != DS_OK)
				return rc;
			break;
		case 0x82: case 0x83: case 0x84: /* EXT1 EXT2 EXT4 */
			/* the extension registry is empty in ZODB: the
			 * unpickler fails to find any code */
			return rs_fail(r, "unregistered extension code");
		/* persistent ids */
		case 'P': /* PERSID: the rest of the line; its raw bytes are
		           * the oid (zodbpickle hands on a non-ASCII line as
		           * bytes) */
			if ((rc = rs_line(r, &n)) != DS_OK)
				return rc;
			memset(&a, 0, sizeof(a));
			a.kind = RS_BYTES;
			a.off = r->pos;
			a.len = n;
			r->pos += n + 1;
			if ((rc = rs_persistent(r, &a)) != DS_OK)
				return rc;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		case 'Q': /* BINPERSID */
			if ((rc = rs_pop(r, &a)) != DS_OK)
				return rc;
			if (a.kind == RS_MARK)
				return rs_fail(r, "persistent id is a mark");
			if ((rc = rs_persistent(r, &a)) != DS_OK)
				return rc;
			if ((rc = rs_push_kind(r, RS_OTHER)) != DS_OK)
				return rc;
			break;
		/* memo */
		case 'p': case 'g': /* PUT GET (decimal line) */
			if ((rc = rs_line(r, &n)) != DS_OK)
				return rc;
			if ((rc = rs_decimal(r, n, &k)) != DS_OK)
				return rc;
			r->pos += n + 1;
			rc = op == 'p' ? rs_memo_top(r, k) : rs_memo_get(r, k);
			if (rc != DS_OK)
				return rc;
			break;
		case 'q': case 'h': /* BINPUT BINGET */
		case 'r': case 'j': /* LONG_BINPUT LONG_BINGET */
			n = (op == 'q' || op == 'h') ? 1 : 4;
			if ((rc = rs_need(r, n)) != DS_OK)
				return rc;
			k = ds_pickle_le(r->p + r->pos, (int)n);
			r->pos += n;
			rc = (op == 'q' || op == 'r') ? rs_memo_top(r, k) :
			                                rs_memo_get(r, k);
			if (rc != DS_OK)
				return rc;
			break;
		case 0x94: /* MEMOIZE */
			if ((rc = rs_memo_top(r, (uint64_t)r->mlive)) != DS_OK)
				return rc;
			break;
		default:
			r->pos--;
			return rs_fail(r, "unknown pickle opcode");
		}
	}
}

int
ds_refscan(const unsigned char *pickle, size_t len, ds_refscan_fn fn,
           void *ctx, ds_error *err)
{
	struct rs r;
	int rc, i;

	memset(&r, 0, sizeof(r));
	r.p = pickle;
	r.len = pickle != NULL ? len : 0;
	r.fn = fn;
	r.ctx = ctx;
	r.err = err;
	/* the class pickle, then the state pickle: one memo for both, as
	 * one unpickler reads them */
	for (i = 0; i < 2; i++) {
		rc = rs_noload(&r);
		if (rc != DS_OK)
			goto out;
	}
	rc = DS_OK;
out:
	free(r.stack);
	free(r.memo);
	free(r.arena);
	return rc;
}
