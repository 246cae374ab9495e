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

/* Add (a, b) to a table of width ids per key (1: keyset_ids, 2: keyset_pairs;
 * b is 0 for width 1). *added (may be NULL) says whether it was new.
 * Errors: DS_ENOMEM. */
static int
keyset_put(uint64_t **slotp, size_t *capp, size_t *np, int *has_zero,
           int width, uint64_t a, uint64_t b, int *added, ds_error *err)
{
	uint64_t *slot = *slotp;
	size_t cap = *capp, i;

	if (added)
		*added = 0;
	if (a == 0 && b == 0) {
		if (added)
			*added = !*has_zero;
		*has_zero = 1;
		return DS_OK;
	}
	if (cap == 0 || (*np + 1) * 2 > cap) {
		size_t ncap = cap ? cap * 2 : 64;
		uint64_t *ns = calloc(ncap * (size_t)width, sizeof(*ns));

		if (ns == NULL)
			return ds_error_set(err, DS_ENOMEM,
			                    "increment: out of memory");
		for (size_t j = 0; j < cap; j++) {
			uint64_t ka = slot[j * width];
			uint64_t kb = width == 2 ? slot[j * width + 1] : 0;

			if (ka == 0 && kb == 0)
				continue;
			i = keyset_hash(ka, kb) & (ncap - 1);
			while (ns[i * width] != 0 ||
			       (width == 2 && ns[i * width + 1] != 0))
				i = (i + 1) & (ncap - 1);
			ns[i * width] = ka;
			if (width == 2)
				ns[i * width + 1] = kb;
		}
		free(slot);
		*slotp = slot = ns;
		*capp = cap = ncap;
	}
	i = keyset_hash(a, b) & (cap - 1);
	for (;;) {
		uint64_t ka = slot[i * width];
		uint64_t kb = width == 2 ? slot[i * width + 1] : 0;

		if (ka == 0 && kb == 0)
			break;
		if (ka == a && kb == b)
			return DS_OK;
		i = (i + 1) & (cap - 1);
	}
	slot[i * width] = a;
	if (width == 2)
		slot[i * width + 1] = b;
	(*np)++;
	if (added)
		*added = 1;
	return DS_OK;
}

static int
keyset_find(const uint64_t *slot, size_t cap, int has_zero, int width,
           uint64_t a, uint64_t b)
{
	size_t i;

	if (a == 0 && b == 0)
		return has_zero;
	if (cap == 0)
		return 0;
	i = keyset_hash(a, b) & (cap - 1);
	for (;;) {
		uint64_t ka = slot[i * width];
		uint64_t kb = width == 2 ? slot[i * width + 1] : 0;

		if (ka == 0 && kb == 0)
			return 0;
		if (ka == a && kb == b)
			return 1;
		i = (i + 1) & (cap - 1);
	}
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

/* The slot of key in m's table (its key is 0 when the key is absent). */
static size_t
keyset_map_slot(const uint64_t *slot, size_t cap, uint64_t key)
{
	size_t i = keyset_hash(key, 0) & (cap - 1);

	while (slot[2 * i] != 0 && slot[2 * i] != key)
		i = (i + 1) & (cap - 1);
	return i;
}

int
keyset_map_put(struct keyset_map *m, uint64_t key, uint64_t value,
               ds_error *err)
{
	size_t i;

	if (key == 0) {
		m->has_zero = 1;
		m->zero_value = value;
		return DS_OK;
	}
	if (m->cap == 0 || (m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		uint64_t *ns = calloc(ncap * 2, sizeof(*ns));

		if (ns == NULL)
			return ds_error_set(err, DS_ENOMEM, "out of memory");
		for (size_t j = 0; j < m->cap; j++) {
			if (m->slot[2 * j] == 0)
				continue;
			i = keyset_map_slot(ns, ncap, m->slot[2 * j]);
			ns[2 * i] = m->slot[2 * j];
			ns[2 * i + 1] = m->slot[2 * j + 1];
		}
		free(m->slot);
		m->slot = ns;
		m->cap = ncap;
	}
	i = keyset_map_slot(m->slot, m->cap, key);
	if (m->slot[2 * i] == 0) {
		m->slot[2 * i] = key;
		m->n++;
	}
	m->slot[2 * i + 1] = value;
	return DS_OK;
}

int
keyset_map_get(const struct keyset_map *m, uint64_t key, uint64_t *value)
{
	size_t i;

	if (key == 0) {
		if (m->has_zero)
			*value = m->zero_value;
		return m->has_zero;
	}
	if (m->cap == 0)
		return 0;
	i = keyset_map_slot(m->slot, m->cap, key);
	if (m->slot[2 * i] == 0)
		return 0;
	*value = m->slot[2 * i + 1];
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
