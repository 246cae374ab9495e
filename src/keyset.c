/*
 * keyset.c - sets of fixed-size binary keys, for the increment checker
 * (recv.c): 64-bit ids (keyset_ids: 8-byte slots) or (a, b) pairs of them
 * (keyset_pairs: 16-byte slots) in open-addressing tables kept between a
 * quarter and a half full: 16..32 bytes an oid, 32..64 a pair, however
 * long the names the ids come from. The all-zero key cannot mark an empty
 * slot and is a flag of its own. keyset_map, for pack: the same table of
 * 16-byte slots, the first word the key, the second its value.
 */
#include <stdlib.h>
#include <string.h>

#include "keyset.h"

static size_t
keyset_hash(uint64_t a, uint64_t b)
{
	/* splitmix64's finaliser: ids are small sequential integers */
	uint64_t v = a ^ (b * 0x9e3779b97f4a7c15ull);

	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ull;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebull;
	v ^= v >> 31;
	return (size_t)v;
}

/* Is the slot at s (its first nkey words the key) empty? */
static int
keyset_empty(const uint64_t *s, int nkey)
{
	return s[0] == 0 && (nkey == 1 || s[1] == 0);
}

/* In a table of width words a slot whose first nkey words are the key
 * (ids: 1, 1; pairs: 2, 2; map: 2, 1, the value second): the slot of key
 * (a, b), or the empty one where it goes. */
static size_t
keyset_slot(const uint64_t *slot, size_t cap, int width, int nkey,
            uint64_t a, uint64_t b)
{
	size_t i = keyset_hash(a, b) & (cap - 1);

	for (;;) {
		const uint64_t *s = slot + i * (size_t)width;

		if (keyset_empty(s, nkey) ||
		    (s[0] == a && (nkey == 1 || s[1] == b)))
			return i;
		i = (i + 1) & (cap - 1);
	}
}

/* Room for one more key, the table kept at most half full.
 * Errors: DS_ENOMEM ("<what>: out of memory"). */
static int
keyset_grow(uint64_t **slotp, size_t *capp, size_t n, int width, int nkey,
            const char *what, ds_error *err)
{
	uint64_t *slot = *slotp, *ns;
	size_t cap = *capp, ncap;

	if (cap != 0 && (n + 1) * 2 <= cap)
		return DS_OK;
	ncap = cap ? cap * 2 : 64;
	ns = calloc(ncap * (size_t)width, sizeof(*ns));
	if (ns == NULL)
		return ds_error_set(err, DS_ENOMEM, "%s: out of memory", what);
	for (size_t j = 0; j < cap; j++) {
		const uint64_t *s = slot + j * (size_t)width;
		size_t i;

		if (keyset_empty(s, nkey))
			continue;
		i = keyset_slot(ns, ncap, width, nkey, s[0],
		                nkey == 2 ? s[1] : 0);
		memcpy(ns + i * (size_t)width, s, (size_t)width * sizeof(*s));
	}
	free(slot);
	*slotp = ns;
	*capp = ncap;
	return DS_OK;
}

/* Add (a, b) to a set of width ids per key (1: keyset_ids, 2:
 * keyset_pairs; b is 0 for width 1). *added (may be NULL) says whether
 * it was new. Errors: DS_ENOMEM. */
static int
keyset_put(uint64_t **slotp, size_t *capp, size_t *np, int *has_zero,
           int width, uint64_t a, uint64_t b, int *added, ds_error *err)
{
	uint64_t *s;
	int rc;

	if (added)
		*added = 0;
	if (a == 0 && b == 0) {
		if (added)
			*added = !*has_zero;
		*has_zero = 1;
		return DS_OK;
	}
	rc = keyset_grow(slotp, capp, *np, width, width, "increment", err);
	if (rc != DS_OK)
		return rc;
	s = *slotp + keyset_slot(*slotp, *capp, width, width, a, b) *
	             (size_t)width;
	if (!keyset_empty(s, width))
		return DS_OK;
	s[0] = a;
	if (width == 2)
		s[1] = b;
	(*np)++;
	if (added)
		*added = 1;
	return DS_OK;
}

static int
keyset_find(const uint64_t *slot, size_t cap, int has_zero, int width,
           uint64_t a, uint64_t b)
{
	if (a == 0 && b == 0)
		return has_zero;
	if (cap == 0)
		return 0;
	return !keyset_empty(slot + keyset_slot(slot, cap, width, width, a, b) *
	                     (size_t)width, width);
}

int
keyset_id_add(struct keyset_ids *s, uint64_t id, int *added, ds_error *err)
{
	return keyset_put(&s->slot, &s->cap, &s->n, &s->has_zero, 1, id, 0,
	                  added, err);
}

int
keyset_id_has(const struct keyset_ids *s, uint64_t id)
{
	return keyset_find(s->slot, s->cap, s->has_zero, 1, id, 0);
}

int
keyset_pair_add(struct keyset_pairs *s, uint64_t a, uint64_t b, int *added,
            ds_error *err)
{
	return keyset_put(&s->slot, &s->cap, &s->n, &s->has_zero, 2, a, b,
	                  added, err);
}

int
keyset_pair_has(const struct keyset_pairs *s, uint64_t a, uint64_t b)
{
	return keyset_find(s->slot, s->cap, s->has_zero, 2, a, b);
}

void
keyset_ids_free(struct keyset_ids *s)
{
	if (s == NULL)
		return;
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
	s->has_zero = 0;
}

void
keyset_pairs_free(struct keyset_pairs *s)
{
	if (s == NULL)
		return;
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
	s->has_zero = 0;
}

int
keyset_map_put(struct keyset_map *m, uint64_t key, uint64_t value,
               ds_error *err)
{
	uint64_t *s;
	int rc;

	if (key == 0) {
		m->has_zero = 1;
		m->zero_value = value;
		return DS_OK;
	}
	rc = keyset_grow(&m->slot, &m->cap, m->n, 2, 1, "pack", err);
	if (rc != DS_OK)
		return rc;
	s = m->slot + 2 * keyset_slot(m->slot, m->cap, 2, 1, key, 0);
	if (s[0] == 0) {
		s[0] = key;
		m->n++;
	}
	s[1] = value;
	return DS_OK;
}

int
keyset_map_get(const struct keyset_map *m, uint64_t key, uint64_t *value)
{
	const uint64_t *s;

	if (key == 0) {
		if (m->has_zero)
			*value = m->zero_value;
		return m->has_zero;
	}
	if (m->cap == 0)
		return 0;
	s = m->slot + 2 * keyset_slot(m->slot, m->cap, 2, 1, key, 0);
	if (s[0] == 0)
		return 0;
	*value = s[1];
	return 1;
}

void
keyset_map_free(struct keyset_map *m)
{
	if (m == NULL)
		return;
	free(m->slot);
	m->slot = NULL;
	m->cap = m->n = 0;
	m->has_zero = 0;
}
