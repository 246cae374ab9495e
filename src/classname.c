/*
 * classname.c - the class name of a ZODB record, as the original's pack
 * reads it to apply [keepclass] settings.
 *
 * The original (DirectoryStorage.utils.class_name_from_pickle, Python 3
 * port) reads the name in one of three ways, reproduced here in order:
 *
 *  1. A record starting "((U" (ZODB 3 on Python 2: MARK MARK
 *     SHORT_BINSTRING module, BINPUT 1, SHORT_BINSTRING class, BINPUT) is
 *     taken apart byte by byte: "module.Class" (bytes read as latin-1,
 *     given here in UTF-8), or no name when the bytes after the strings
 *     are not exactly those.
 *  2. Otherwise ZODB.utils.get_pickle_metadata: a leading PROTO opcode
 *     (0x80 and its argument) is skipped; a record then starting with
 *     GLOBAL ("c", or MARK GLOBAL "(c": what ZODB 3, 4 and 5 write) gives
 *     the two newline-terminated names that follow (no name unless the
 *     record holds two newlines and both names are UTF-8).
 *  3. Any other record is unpickled (Python's unpickler, with the PROTO
 *     opcode already skipped) and its first object read: a tuple whose
 *     first element is a tuple gives that pair, a pair gives itself
 *     ("%s.%s": a text string as itself, an integer in decimal, None,
 *     True, False), another tuple gives no name, and any other object
 *     its repr() followed by "."; a record the unpickler refuses (an
 *     unknown or protocol 4 opcode, a persistent id, a missing memo
 *     entry, a truncated pickle, a byte string that is not ASCII) gives
 *     the name ".".
 *
 * Step 3 is a small stack machine over the opcodes those class pickles
 * use (strings of every protocol 0 to 3 form: pickletext.c decodes the
 * protocol 0 ones as refscan.c does; small integers, None, booleans,
 * tuples, the memo). A record that needs more of Python's unpickler (a
 * float, a dict, a nested global...) gives DS_ENOTFOUND here, as if
 * it had no name: no ZODB writes class pickles like those, and a
 * [keepclass] key would have to spell that object's repr() to match it.
 * tests/unit/test_classname.c checks every record of
 * tests/fixtures/refscan.json against the name the original read.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define CN_STACK 32      /* a class pickle holds a handful of values */

enum cn_kind { CN_MARK, CN_STR, CN_INT, CN_NONE, CN_BOOL, CN_TUPLE };

struct cn_val {
	enum cn_kind kind;
	const unsigned char *s;  /* CN_STR: the text (UTF-8 or ASCII) */
	size_t len;
	long long i;             /* CN_INT, CN_BOOL */
	int nitems;              /* CN_TUPLE: its first two items follow */
	int item[2];             /* indexes into cn.vals */
};

struct cn {
	struct cn_val vals[CN_STACK * 4];  /* every value made, by index */
	int nvals;
	int stack[CN_STACK];
	int nstack;
	int memo[CN_STACK];                /* memo key -> value index */
	long memokey[CN_STACK];
	int nmemo;
	unsigned char text[1024];          /* decoded STRING / UNICODE */
	size_t ntext;
};

/* What step 3 came to. */
enum cn_result { CN_FOUND, CN_REFUSED, CN_UNKNOWN };

static int
cn_new(struct cn *c, enum cn_kind kind)
{
	if (c->nvals == (int)(sizeof(c->vals) / sizeof(c->vals[0])))
		return -1;
	memset(&c->vals[c->nvals], 0, sizeof(c->vals[0]));
	c->vals[c->nvals].kind = kind;
	return c->nvals++;
}

static int
cn_push(struct cn *c, int v)
{
	if (v < 0 || c->nstack == CN_STACK)
		return -1;
	c->stack[c->nstack++] = v;
	return 0;
}

/* Pop the top n values (all those above the topmost mark, and the mark,
 * when n < 0) into a new tuple. Python's unpickler keeps its marks apart
 * from the stack: a mark among the n values is its stack underflow. */
static int
cn_tuple(struct cn *c, int n)
{
	int first, top, t, k;

	if (n < 0) {
		for (top = c->nstack - 1; top >= 0; top--)
			if (c->vals[c->stack[top]].kind == CN_MARK)
				break;
		if (top < 0)
			return -1;
		first = top + 1;
	} else {
		if (c->nstack < n)
			return -1;
		first = top = c->nstack - n;
		for (k = first; k < c->nstack; k++)
			if (c->vals[c->stack[k]].kind == CN_MARK)
				return -1;
	}
	if ((t = cn_new(c, CN_TUPLE)) < 0)
		return -2;
	c->vals[t].nitems = c->nstack - first;
	for (k = 0; k < c->vals[t].nitems && k < 2; k++)
		c->vals[t].item[k] = c->stack[first + k];
	c->nstack = top;
	return t;
}

/* UTF-8 as Python decodes it: no overlongs; surrogates only with
 * "surrogatepass" (what the unpickler uses for BINUNICODE). */
static int
cn_is_utf8(const unsigned char *s, size_t len, int surrogates)
{
	size_t i = 0;

	while (i < len) {
		unsigned char b = s[i];
		size_t n;
		unsigned long cp;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf) {
			n = 1;
			cp = b & 0x1f;
		} else if (b >= 0xe0 && b <= 0xef) {
			n = 2;
			cp = b & 0x0f;
		} else if (b >= 0xf0 && b <= 0xf4) {
			n = 3;
			cp = b & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 ||
		                 (!surrogates && cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* The decimal digits of a protocol 0 argument line "[-]digits\n" (INT,
 * PUT, GET); 0 when the line is anything else. */
static int
cn_line_int(const unsigned char *p, size_t avail, long long *v, size_t *used)
{
	size_t i = 0;
	int neg = 0;
	long long x = 0;

	if (i < avail && (p[i] == '-' || p[i] == '+'))
		neg = p[i++] == '-';
	if (i >= avail || p[i] < '0' || p[i] > '9')
		return 0;
	while (i < avail && p[i] >= '0' && p[i] <= '9') {
		if (x > 100000000000000LL)
			return 0;
		x = x * 10 + (p[i++] - '0');
	}
	if (i >= avail || p[i] != '\n')
		return 0;
	*v = neg ? -x : x;
	*used = i + 1;
	return 1;
}

static int
cn_memo_find(const struct cn *c, long key)
{
	for (int k = c->nmemo - 1; k >= 0; k--)
		if (c->memokey[k] == key)
			return c->memo[k];
	return -1;
}

static int
cn_memo_put(struct cn *c, long key)
{
	if (c->nstack == 0 || c->nmemo == CN_STACK)
		return -1;
	c->memokey[c->nmemo] = key;
	c->memo[c->nmemo++] = c->stack[c->nstack - 1];
	return 0;
}

/* Step 3's unpickler: the first object of p, or why there is none. */
static enum cn_result
cn_load(struct cn *c, const unsigned char *p, size_t len, int *out)
{
	size_t i = 0;

	c->nvals = c->nstack = c->nmemo = 0;
	c->ntext = 0;
	for (;;) {
		unsigned char op;
		size_t n, used;
		long long v;
		int t;

		if (i >= len)
			return CN_REFUSED;        /* EOFError */
		op = p[i++];
		switch (op) {
		case '.':                         /* STOP */
			if (c->nstack == 0 ||
			    c->vals[c->stack[c->nstack - 1]].kind == CN_MARK)
				return CN_REFUSED;  /* stack underflow */
			*out = c->stack[c->nstack - 1];
			return CN_FOUND;
		case '(':                         /* MARK */
			if (cn_push(c, cn_new(c, CN_MARK)) < 0)
				return CN_UNKNOWN;
			break;
		case 'U':                         /* SHORT_BINSTRING */
		case 'T':                         /* BINSTRING */
		case 'X':                         /* BINUNICODE */
			n = op == 'U' ? 1 : 4;
			if (len - i < n)
				return CN_REFUSED;
			v = (long long)ds_pickle_le(p + i, (int)n);
			if (op == 'T' && v > 0x7fffffffLL)
				return CN_REFUSED;  /* negative length */
			i += n;
			if ((unsigned long long)v > len - i)
				return CN_REFUSED;
			if (op == 'X' ? !cn_is_utf8(p + i, (size_t)v, 1) :
			    !ds_pickle_ascii(p + i, (size_t)v))
				return CN_REFUSED;  /* UnicodeDecodeError */
			if ((t = cn_new(c, CN_STR)) < 0)
				return CN_UNKNOWN;
			c->vals[t].s = p + i;
			c->vals[t].len = (size_t)v;
			i += (size_t)v;
			if (cn_push(c, t) < 0)
				return CN_UNKNOWN;
			break;
		case 'S':                         /* STRING */
		case 'V': {                       /* UNICODE */
			const unsigned char *nl = memchr(p + i, '\n', len - i);
			size_t ln, tl = 0;

			if (nl == NULL)
				return CN_REFUSED;        /* EOF in the line */
			ln = (size_t)(nl - p) - i;
			/* the decoded text needs ln (STRING) or 2 ln (UNICODE,
			 * in UTF-8) bytes at most */
			if ((op == 'S' ? ln : 2 * ln) > sizeof(c->text) - c->ntext)
				return CN_UNKNOWN;
			if ((op == 'S' ? ds_pickletext_string0(p + i, ln,
			                 c->text + c->ntext, &tl) :
			     ds_pickletext_unicode0(p + i, ln, c->text + c->ntext,
			                            &tl)) != NULL)
				return CN_REFUSED;
			/* the unpickler decodes a py2 string as ASCII */
			if (op == 'S' && !ds_pickle_ascii(c->text + c->ntext, tl))
				return CN_REFUSED;
			i = (size_t)(nl - p) + 1;
			if ((t = cn_new(c, CN_STR)) < 0)
				return CN_UNKNOWN;
			c->vals[t].s = c->text + c->ntext;
			c->vals[t].len = tl;
			c->ntext += tl;
			if (cn_push(c, t) < 0)
				return CN_UNKNOWN;
			break;
		}
		case 'N':                         /* NONE */
		case 0x88:                        /* NEWTRUE */
		case 0x89:                        /* NEWFALSE */
			if ((t = cn_new(c, op == 'N' ? CN_NONE : CN_BOOL)) < 0)
				return CN_UNKNOWN;
			c->vals[t].i = op == 0x88;
			if (cn_push(c, t) < 0)
				return CN_UNKNOWN;
			break;
		case 'K':                         /* BININT1 */
		case 'M':                         /* BININT2 */
		case 'J':                         /* BININT */
			n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
			if (len - i < n)
				return CN_REFUSED;
			v = (long long)ds_pickle_le(p + i, (int)n);
			if (op == 'J')
				v = (long long)(int32_t)(uint32_t)v;
			i += n;
			if ((t = cn_new(c, CN_INT)) < 0)
				return CN_UNKNOWN;
			c->vals[t].i = v;
			if (cn_push(c, t) < 0)
				return CN_UNKNOWN;
			break;
		case ')':                         /* EMPTY_TUPLE */
		case 't':                         /* TUPLE */
		case 0x85:                        /* TUPLE1 */
		case 0x86:                        /* TUPLE2 */
		case 0x87:                        /* TUPLE3 */
			t = cn_tuple(c, op == ')' ? 0 : op == 't' ? -1 :
			             op - 0x84);
			if (t == -1)
				return CN_REFUSED;  /* stack underflow */
			if (t < 0 || cn_push(c, t) < 0)
				return CN_UNKNOWN;
			break;
		case 'q':                         /* BINPUT */
		case 'r':                         /* LONG_BINPUT */
		case 'h':                         /* BINGET */
		case 'j':                         /* LONG_BINGET */
			n = (op == 'q' || op == 'h') ? 1 : 4;
			if (len - i < n)
				return CN_REFUSED;
			v = (long long)ds_pickle_le(p + i, (int)n);
			i += n;
			goto memo;
		case 'p':                         /* PUT */
		case 'g':                         /* GET */
			if (!cn_line_int(p + i, len - i, &v, &used))
				return CN_UNKNOWN;
			i += used;
		memo:
			if (op == 'q' || op == 'r' || op == 'p') {
				if (c->nstack == 0 ||
				    c->vals[c->stack[c->nstack - 1]].kind ==
				    CN_MARK)
					return CN_REFUSED;
				if (cn_memo_put(c, (long)v) < 0)
					return CN_UNKNOWN;
			} else {
				t = cn_memo_find(c, (long)v);
				if (t < 0)
					return CN_REFUSED;
				if (cn_push(c, t) < 0)
					return CN_UNKNOWN;
			}
			break;
		case 'P': case 'Q':               /* persistent ids: no loader */
		case 0x8c: case 0x8d: case 0x8e: case 0x8f: case 0x90:
		case 0x91: case 0x92: case 0x93: case 0x94: case 0x95:
			/* protocol 4 and 5 opcodes: the PROTO that allowed them
			 * was skipped */
			return CN_REFUSED;
		default:
			/* an opcode of protocols 0 to 3 we do not follow is
			 * CN_UNKNOWN; a byte that is no opcode at all is
			 * refused by Python's unpickler */
			if (op >= 0x80 ? (op <= 0x84 || op == 0x8a ||
			                  op == 0x8b) :
			    strchr("0123BCFGILR]abcdeilosu}", op) != NULL)
				return CN_UNKNOWN;
			return CN_REFUSED;
		}
	}
}

/* Append s to out (at *at), in UTF-8 from latin-1 when latin1. A NUL
 * byte fails: such a name cannot be a C string (nor a settings key, so
 * no [keepclass] option could name it). */
static int
cn_put(char *out, size_t outsz, size_t *at, const unsigned char *s,
       size_t len, int latin1)
{
	for (size_t k = 0; k < len; k++) {
		unsigned char b = s[k];

		if (b == 0)
			return -1;

		if (latin1 && b >= 0x80) {
			if (*at + 2 >= outsz)
				return -1;
			out[(*at)++] = (char)(0xc0 | (b >> 6));
			out[(*at)++] = (char)(0x80 | (b & 0x3f));
		} else {
			if (*at + 1 >= outsz)
				return -1;
			out[(*at)++] = (char)b;
		}
	}
	out[*at] = '\0';
	return 0;
}

/* "%s" of a value (str()), or repr() when repr; -1 when not one we
 * reproduce. */
static int
cn_format(const struct cn *c, int v, int repr, char *out, size_t outsz,
          size_t *at)
{
	const struct cn_val *x = &c->vals[v];
	char num[32];

	switch (x->kind) {
	case CN_STR:
		if (!repr)
			return cn_put(out, outsz, at, x->s, x->len, 0);
		/* repr() of a plain printable ASCII string without quotes or
		 * backslashes is the string in single quotes */
		for (size_t k = 0; k < x->len; k++)
			if (x->s[k] < 0x20 || x->s[k] > 0x7e ||
			    x->s[k] == '\'' || x->s[k] == '\\')
				return -1;
		return cn_put(out, outsz, at, (const unsigned char *)"'", 1,
		              0) || cn_put(out, outsz, at, x->s, x->len, 0) ||
		       cn_put(out, outsz, at, (const unsigned char *)"'", 1,
		              0) ? -1 : 0;
	case CN_INT:
		snprintf(num, sizeof(num), "%lld", x->i);
		return cn_put(out, outsz, at, (const unsigned char *)num,
		              strlen(num), 0);
	case CN_NONE:
		return cn_put(out, outsz, at, (const unsigned char *)"None",
		              4, 0);
	case CN_BOOL:
		return cn_put(out, outsz, at, (const unsigned char *)
		              (x->i ? "True" : "False"), x->i ? 4 : 5, 0);
	default:
		return -1;
	}
}

int
ds_classname_get(const unsigned char *p, size_t len, char *out,
                 size_t outsz)
{
	const unsigned char *d = p;
	size_t at = 0, l;
	struct cn c;
	int v, pair;

	if (outsz == 0)
		return DS_ENOTFOUND;
	out[0] = '\0';
	/* 1. "((U" */
	if (len >= 3 && memcmp(p, "((U", 3) == 0) {
		if (len < 4)
			return DS_ENOTFOUND;
		l = p[3];
		d = p + 4;
		len -= 4;
		if (cn_put(out, outsz, &at, d, l < len ? l : len, 1) < 0)
			goto none;
		if (l >= len)
			goto none;    /* nothing left: d[:3] is not "q\1U" */
		d += l;
		len -= l;
		if (len >= 3 && memcmp(d, "q\001U", 3) == 0) {
			if (len < 4)
				goto none;
			l = d[3];
			d += 4;
			len -= 4;
			if (cn_put(out, outsz, &at, (const unsigned char *)".",
			           1, 0) < 0 ||
			    cn_put(out, outsz, &at, d, l < len ? l : len, 1) < 0)
				goto none;
			if (l < len && d[l] == 'q')
				return DS_OK;
		}
		goto none;
	}
	/* 2. get_pickle_metadata: data[0] of an empty record is an
	 * IndexError; then PROTO skipped, then GLOBAL */
	if (len == 0)
		return DS_ENOTFOUND;
	if (p[0] == 0x80) {
		d = len >= 2 ? p + 2 : p + len;
		len = len >= 2 ? len - 2 : 0;
	}
	if (len >= 1 && (d[0] == 'c' || (len >= 2 && d[0] == '(' &&
	                                  d[1] == 'c'))) {
		size_t skip = d[0] == 'c' ? 1 : 2;
		const unsigned char *nl1, *nl2;

		nl1 = memchr(d, '\n', len);
		if (nl1 == NULL)
			return DS_ENOTFOUND;
		nl2 = memchr(nl1 + 1, '\n', len - (size_t)(nl1 + 1 - d));
		if (nl2 == NULL)
			return DS_ENOTFOUND;
		/* modname is the first line less the opcode(s): a first line
		 * shorter than those is an empty name */
		if ((size_t)(nl1 - d) < skip)
			skip = (size_t)(nl1 - d);
		if (!cn_is_utf8(d + skip, (size_t)(nl1 - d) - skip, 0) ||
		    !cn_is_utf8(nl1 + 1, (size_t)(nl2 - nl1 - 1), 0))
			return DS_ENOTFOUND;
		if (cn_put(out, outsz, &at, d + skip, (size_t)(nl1 - d) - skip,
		           0) < 0 ||
		    cn_put(out, outsz, &at, (const unsigned char *)".", 1,
		           0) < 0 ||
		    cn_put(out, outsz, &at, nl1 + 1, (size_t)(nl2 - nl1 - 1),
		           0) < 0)
			goto none;
		return DS_OK;
	}
	/* 3. the unpickler */
	switch (cn_load(&c, d, len, &v)) {
	case CN_REFUSED:
		return cn_put(out, outsz, &at, (const unsigned char *)".", 1,
		              0) < 0 ? DS_ENOTFOUND : DS_OK;
	case CN_UNKNOWN:
		goto none;
	case CN_FOUND:
		break;
	}
	if (c.vals[v].kind != CN_TUPLE) {
		if (cn_format(&c, v, 1, out, outsz, &at) < 0 ||
		    cn_put(out, outsz, &at, (const unsigned char *)".", 1, 0) < 0)
			goto none;
		return DS_OK;
	}
	if (c.vals[v].nitems == 0)
		goto none;                        /* IndexError */
	pair = v;
	if (c.vals[c.vals[v].item[0]].kind == CN_TUPLE)
		pair = c.vals[v].item[0];
	if (c.vals[pair].nitems != 2)
		goto none;                        /* unpacking: ValueError */
	if (cn_format(&c, c.vals[pair].item[0], 0, out, outsz, &at) < 0 ||
	    cn_put(out, outsz, &at, (const unsigned char *)".", 1, 0) < 0 ||
	    cn_format(&c, c.vals[pair].item[1], 0, out, outsz, &at) < 0)
		goto none;
	return DS_OK;
none:
	out[0] = '\0';
	return DS_ENOTFOUND;
}
