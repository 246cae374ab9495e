/*
 * pickletext.c - the text arguments of protocol 0 pickle opcodes, decoded
 * as Python's unpickler decodes them. Both readers of ZODB records use
 * them: the reference scanner (refscan.c) and the class name reader
 * (classname.c).
 *
 *  - STRING 'S': a quoted Python 2 repr, through codecs.escape_decode.
 *  - UNICODE 'V': raw-unicode-escape: a \uXXXX or \UXXXXXXXX after an
 *    odd run of backslashes is a code point, every other byte the code
 *    point of its value (Latin-1); given here in UTF-8.
 * And the small pieces both need: little-endian arguments, ASCII checks,
 * hex digits, UTF-8.
 */
#include "internal.h"

uint64_t
ds_pickle_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | p[n];
	return v;
}

int
ds_pickle_ascii(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x80)
			return 0;
	return 1;
}

int
ds_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
ds_utf8_put(unsigned long cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

const char *
ds_pickletext_string0(const unsigned char *s, size_t n, unsigned char *out,
                      size_t *outlen)
{
	size_t i, o = 0;

	if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0])
		return "insecure string pickle";
	for (i = 1; i + 1 < n; i++) {
		unsigned char c = s[i];

		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (i + 2 >= n) /* the backslash is the last character */
			return "trailing \\ in string";
		c = s[++i];
		switch (c) {
		case '\n': continue;
		case '\\': case '\'': case '"': break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 't': c = '\t'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 'v': c = '\v'; break;
		case 'a': c = '\a'; break;
		case '0': case '1': case '2': case '3':
		case '4': case '5': case '6': case '7': {
			unsigned v8 = (unsigned)(c - '0');
			int k;
			for (k = 0; k < 2 && i + 2 < n && s[i + 1] >= '0' &&
			            s[i + 1] <= '7'; k++)
				v8 = v8 * 8 + (unsigned)(s[++i] - '0');
			c = (unsigned char)v8;
			break;
		}
		case 'x': {
			int h1, h2;
			if (i + 3 >= n || (h1 = ds_hex_digit(s[i + 1])) < 0 ||
			    (h2 = ds_hex_digit(s[i + 2])) < 0)
				return "invalid \\x escape in string";
			c = (unsigned char)(h1 * 16 + h2);
			i += 2;
			break;
		}
		default:
			/* unknown escapes stay as they are */
			out[o++] = '\\';
			break;
		}
		out[o++] = c;
	}
	*outlen = o;
	return NULL;
}

const char *
ds_pickletext_unicode0(const unsigned char *s, size_t n, unsigned char *out,
                       size_t *outlen)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned long cp = 0;
		size_t run = 0, digits, k;

		if (s[i] != '\\') {
			o += ds_utf8_put(s[i++], out + o);
			continue;
		}
		while (i < n && s[i] == '\\') {
			run++;
			i++;
		}
		/* the run's backslashes are characters, but for the last of
		 * an odd run that starts an escape */
		if ((run & 1) == 0 || i >= n || (s[i] != 'u' && s[i] != 'U')) {
			while (run-- > 0)
				out[o++] = '\\';
			continue;
		}
		while (--run > 0)
			out[o++] = '\\';
		digits = s[i] == 'u' ? 4 : 8;
		i++;
		if (n - i < digits)
			return "truncated \\u escape";
		for (k = 0; k < digits; k++) {
			int h = ds_hex_digit(s[i + k]);
			if (h < 0)
				return "bad \\u escape";
			cp = cp * 16 + (unsigned long)h;
		}
		if (cp > 0x10FFFF)
			return "\\U escape out of range";
		i += digits;
		o += ds_utf8_put(cp, out + o);
	}
	*outlen = o;
	return NULL;
}
