/* util.c - the version, big-endian fields, hex, md5, whole-file reads,
 * path joins. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "internal.h"

#ifndef DS_VERSION
#error "DS_VERSION (the project version) is defined by CMakeLists.txt"
#endif

const char *
ds_version(void)
{
	return DS_VERSION;
}

uint64_t
ds_get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

uint32_t
ds_get_u32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

uint16_t
ds_get_u16(const unsigned char *p)
{
	return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

void
ds_put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

void
ds_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

void
ds_put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
hex_encode(const unsigned char *in, size_t n, char *out, const char *digits)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void
ds_hex_upper(const unsigned char *in, size_t n, char *out)
{
	hex_encode(in, n, out, "0123456789ABCDEF");
}

void
ds_hex_lower(const unsigned char *in, size_t n, char *out)
{
	hex_encode(in, n, out, "0123456789abcdef");
}

int
ds_hex_decode(const char *hex, unsigned char *out, size_t n)
{
	if (hex == NULL || strlen(hex) != 2 * n)
		return DS_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = ds_hex_digit((unsigned char)hex[2 * i]);
		int lo = ds_hex_digit((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return DS_EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return DS_OK;
}

void
ds_id_format(uint64_t v, char out[17])
{
	snprintf(out, 17, "%016" PRIX64, v);
}

int
ds_id_parse(const char *hex, uint64_t *out)
{
	unsigned char b[8];

	if (ds_hex_decode(hex, b, 8) != DS_OK)
		return DS_EINVAL;
	*out = ds_get_u64(b);
	return DS_OK;
}

void
ds_md5(const void *data, size_t len, unsigned char out[16])
{
	unsigned int outlen = 16;

	/* EVP_Digest is the supported one-shot interface of OpenSSL 3. */
	EVP_Digest(data, len, out, &outlen, EVP_md5(), NULL);
}

int
ds_file_read(const char *path, size_t max_len, unsigned char **out,
             size_t *outlen, ds_error *err)
{
	return ds_file_read_flags(path, max_len, 0, out, outlen, err);
}

int
ds_file_read_flags(const char *path, size_t max_len, int flags,
                   unsigned char **out, size_t *outlen, ds_error *err)
{
	int fd = -1, rc = DS_OK;
	struct stat st;
	unsigned char *buf = NULL;
	size_t cap, len = 0;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		/* O_NOATIME is for the file's owner (or CAP_FOWNER) only */
		fd = open(path, O_RDONLY | O_CLOEXEC | (flags & ~O_NOATIME));
	if (fd < 0)
		return ds_error_sys(err, errno, "open", path);
	if (fstat(fd, &st) != 0) {
		rc = ds_error_sys(err, errno, "stat", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ds_error_set(err, DS_ECORRUPT, "read %s: not a regular file",
		                  path);
		goto out;
	}
	if (max_len != 0 && (uint64_t)st.st_size > max_len) {
		rc = ds_error_set(err, DS_ECORRUPT,
		                  "read %s: file is %jd bytes, more than the %zu allowed",
		                  path, (intmax_t)st.st_size, max_len);
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		rc = ds_error_set(err, DS_ENOMEM, "read %s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (len == cap) {
			/* the file grew since fstat: keep reading */
			unsigned char *nb;
			if (max_len != 0 && len > max_len) {
				rc = ds_error_set(err, DS_ECORRUPT,
				                  "read %s: more than the %zu bytes allowed",
				                  path, max_len);
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				rc = ds_error_set(err, DS_ENOMEM,
				                  "read %s: out of memory", path);
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ds_error_sys(err, errno, "read", path);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (max_len != 0 && len > max_len) {
		rc = ds_error_set(err, DS_ECORRUPT,
		                  "read %s: more than the %zu bytes allowed", path,
		                  max_len);
		goto out;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int
ds_path_join(char *out, size_t outsz, const char *a, const char *b,
             ds_error *err)
{
	int n = snprintf(out, outsz, "%s/%s", a, b);

	if (n < 0 || (size_t)n >= outsz)
		return ds_error_set(err, DS_EINVAL, "path %s/%s: too long", a, b);
	return DS_OK;
}

double
ds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
ds_size_format(uint64_t n, char out[32])
{
	if (n < 10 * 1024)
		snprintf(out, 32, "%llu bytes", (unsigned long long)n);
	else if (n < 10ull * 1024 * 1024)
		snprintf(out, 32, "%.1f KiB", n / 1024.0);
	else
		snprintf(out, 32, "%.1f MiB", n / (1024.0 * 1024.0));
}
