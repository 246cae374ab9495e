/*
 * hashmap.c - a string -> pointer map: open addressing, linear probing,
 * tombstones, FNV-1a. Keys are copied. Used for the engine's relocation
 * map (database name -> journal directory holding it), the sets of
 * directories a flush touched, a transaction's written names and pack's
 * marks. Not thread-safe: the caller locks.
 */
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

static char hashmap_tomb_[1];
#define MAP_TOMB hashmap_tomb_

void
hashmap_init(struct hashmap *m)
{
	memset(m, 0, sizeof(*m));
}

void
hashmap_free(struct hashmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->tab[i].key != NULL && m->tab[i].key != MAP_TOMB)
			free(m->tab[i].key);
	free(m->tab);
	memset(m, 0, sizeof(*m));
}

static size_t
hashmap_hash(const char *k)
{
	size_t h = 1469598103934665603ull;   /* FNV-1a */

	for (; *k; k++) {
		h ^= (unsigned char)*k;
		h *= 1099511628211ull;
	}
	return h;
}

/* Index of key's slot, or of the slot where it would go (cap > 0). */
static size_t
hashmap_find(const struct hashmap *m, const char *key, int *found)
{
	size_t mask = m->cap - 1, i = hashmap_hash(key) & mask;
	size_t first_tomb = (size_t)-1;

	for (;;) {
		const char *k = m->tab[i].key;
		if (k == NULL) {
			*found = 0;
			return first_tomb != (size_t)-1 ? first_tomb : i;
		}
		if (k == MAP_TOMB) {
			if (first_tomb == (size_t)-1)
				first_tomb = i;
		} else if (strcmp(k, key) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & mask;
	}
}

void *
hashmap_get(const struct hashmap *m, const char *key)
{
	int found;
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = hashmap_find(m, key, &found);
	return found ? m->tab[i].val : NULL;
}

static int
hashmap_grow(struct hashmap *m, ds_error *err)
{
	struct hashmap n;
	size_t cap = m->cap ? m->cap * 2 : 64;

	/* rehash only live entries (drops tombstones); keep the size when
	 * mostly tombstones */
	if (m->cap && m->live * 4 < m->cap)
		cap = m->cap;
	n.tab = calloc(cap, sizeof(*n.tab));
	if (n.tab == NULL)
		return ds_error_set(err, DS_ENOMEM, "map: out of memory");
	n.cap = cap;
	n.used = n.live = 0;
	for (size_t i = 0; i < m->cap; i++) {
		char *k = m->tab[i].key;
		int found;
		size_t j;
		if (k == NULL || k == MAP_TOMB)
			continue;
		j = hashmap_find(&n, k, &found);
		n.tab[j] = m->tab[i];
		n.used++;
		n.live++;
	}
	free(m->tab);
	*m = n;
	return DS_OK;
}

int
hashmap_put(struct hashmap *m, const char *key, void *val,
                ds_error *err)
{
	int found, rc;
	size_t i;
	char *k;

	if (m->cap == 0 || (m->used + 1) * 4 > m->cap * 3) {
		rc = hashmap_grow(m, err);
		if (rc != DS_OK)
			return rc;
	}
	i = hashmap_find(m, key, &found);
	if (found) {
		m->tab[i].val = val;
		return DS_OK;
	}
	k = strdup(key);
	if (k == NULL)
		return ds_error_set(err, DS_ENOMEM, "map: out of memory");
	if (m->tab[i].key == NULL)
		m->used++;
	m->tab[i].key = k;
	m->tab[i].val = val;
	m->live++;
	return DS_OK;
}

void
hashmap_del(struct hashmap *m, const char *key)
{
	int found;
	size_t i;

	if (m->cap == 0)
		return;
	i = hashmap_find(m, key, &found);
	if (!found)
		return;
	free(m->tab[i].key);
	m->tab[i].key = MAP_TOMB;
	m->tab[i].val = NULL;
	m->live--;
}

void
hashmap_each(const struct hashmap *m,
                 void (*fn)(const char *key, void *val, void *ctx), void *ctx)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->tab[i].key != NULL && m->tab[i].key != MAP_TOMB)
			fn(m->tab[i].key, m->tab[i].val, ctx);
}
