/*
 * cache.c - a bounded cache of current object revisions, so that a load
 * of an object read before costs no file system calls.
 *
 * Entries are keyed by oid in a chained hash table that doubles as it
 * fills; eviction is first in, first out, by the bytes of the pickles
 * (plus a fixed overhead per entry), so memory stays within the bound
 * whatever the objects' sizes. A pickle larger than an eighth of the
 * bound is not kept. What may be kept and when it must be forgotten is
 * the engine's business (read.c, txn.c, storage.c): this file only
 * keeps what it is given.
 */
#include <stdlib.h>
#include <string.h>

#include "cache.h"

/* bytes counted for an entry besides its pickle */
#define CACHE_ENTRY_COST 64

struct cache_ent {
	struct cache_ent *hnext;         /* hash chain */
	struct cache_ent *older, *newer; /* FIFO */
	ds_oid oid;
	ds_tid serial, prev;
	size_t len;
	unsigned char pickle[];
};

struct cache {
	struct cache_ent **tab;
	size_t cap;                     /* power of two, or 0 */
	size_t count, bytes, max;
	struct cache_ent *oldest, *newest;
};

int
cache_new(size_t max_bytes, struct cache **out, ds_error *err)
{
	struct cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return ds_error_set(err, DS_ENOMEM, "cache: out of memory");
	c->max = max_bytes;
	*out = c;
	return DS_OK;
}

static size_t
cache_slot(const struct cache *c, ds_oid oid)
{
	uint64_t h = oid * 0x9E3779B97F4A7C15ull;   /* Fibonacci hashing */

	return (size_t)(h >> 32) & (c->cap - 1);
}

static struct cache_ent **
cache_find(struct cache *c, ds_oid oid)
{
	struct cache_ent **pp;

	if (c->cap == 0)
		return NULL;
	for (pp = &c->tab[cache_slot(c, oid)]; *pp != NULL;
	     pp = &(*pp)->hnext)
		if ((*pp)->oid == oid)
			return pp;
	return NULL;
}

/* Unlink *pp from its chain and the FIFO, and free it. */
static void
cache_remove(struct cache *c, struct cache_ent **pp)
{
	struct cache_ent *e = *pp;

	*pp = e->hnext;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	c->count--;
	c->bytes -= e->len + CACHE_ENTRY_COST;
	free(e);
}

void
cache_clear(struct cache *c)
{
	if (c == NULL)
		return;
	while (c->oldest != NULL)
		cache_remove(c, cache_find(c, c->oldest->oid));
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	cache_clear(c);
	free(c->tab);
	free(c);
}

int
cache_get(struct cache *c, ds_oid oid, ds_tid *serial, ds_tid *prev,
          const unsigned char **pickle, size_t *len)
{
	struct cache_ent **pp;

	if (c == NULL || (pp = cache_find(c, oid)) == NULL)
		return 0;
	*serial = (*pp)->serial;
	*prev = (*pp)->prev;
	*pickle = (*pp)->pickle;
	*len = (*pp)->len;
	return 1;
}

void
cache_drop(struct cache *c, ds_oid oid)
{
	struct cache_ent **pp;

	if (c != NULL && (pp = cache_find(c, oid)) != NULL)
		cache_remove(c, pp);
}

static int
cache_grow(struct cache *c)
{
	size_t cap = c->cap ? 2 * c->cap : 256;
	struct cache_ent **tab = calloc(cap, sizeof(*tab));
	struct cache_ent *e;

	if (tab == NULL)
		return -1;
	free(c->tab);
	c->tab = tab;
	c->cap = cap;
	/* rehash through the FIFO, which links every entry */
	for (e = c->oldest; e != NULL; e = e->newer) {
		size_t i = cache_slot(c, e->oid);
		e->hnext = tab[i];
		tab[i] = e;
	}
	return 0;
}

void
cache_put(struct cache *c, ds_oid oid, ds_tid serial, ds_tid prev,
          const unsigned char *pickle, size_t len)
{
	struct cache_ent *e;
	size_t i;

	if (c == NULL)
		return;
	cache_drop(c, oid);
	if (len + CACHE_ENTRY_COST > c->max / 8)
		return;
	if (c->count >= c->cap && cache_grow(c) != 0)
		return;
	e = malloc(sizeof(*e) + len);
	if (e == NULL)
		return;
	e->oid = oid;
	e->serial = serial;
	e->prev = prev;
	e->len = len;
	memcpy(e->pickle, pickle, len);
	i = cache_slot(c, oid);
	e->hnext = c->tab[i];
	c->tab[i] = e;
	e->newer = NULL;
	e->older = c->newest;
	if (c->newest != NULL)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->count++;
	c->bytes += len + CACHE_ENTRY_COST;
	while (c->bytes > c->max && c->oldest != NULL)
		cache_remove(c, cache_find(c, c->oldest->oid));
}

size_t
cache_bytes(const struct cache *c)
{
	return c != NULL ? c->bytes : 0;
}

size_t
cache_count(const struct cache *c)
{
	return c != NULL ? c->count : 0;
}
