/*
 * cache.h - the engine's cache of current object revisions (cache.c):
 * oid -> (serial, previous serial, pickle) of the object's current
 * revision, bounded by bytes. Not thread-safe: the engine calls it with
 * its mutex held.
 */
#ifndef DS_CACHE_H
#define DS_CACHE_H

#include <stddef.h>

#include "internal.h"

struct cache;

/* A cache of at most max_bytes of pickles (0: a cache that keeps
 * nothing). Errors: DS_ENOMEM. */
int cache_new(size_t max_bytes, struct cache **out, ds_error *err);
/* Accepts NULL. */
void cache_free(struct cache *c);
/* oid's entry: 1 and its fields (*pickle points into the cache: copy it
 * before the mutex is released), or 0. */
int cache_get(struct cache *c, ds_oid oid, ds_tid *serial, ds_tid *prev,
              const unsigned char **pickle, size_t *len);
/* Remember oid's current revision (replacing an older entry), evicting
 * the oldest entries beyond the bound; too large or out of memory: not
 * kept (best effort, no error). */
void cache_put(struct cache *c, ds_oid oid, ds_tid serial, ds_tid prev,
               const unsigned char *pickle, size_t len);
/* Forget oid. */
void cache_drop(struct cache *c, ds_oid oid);
/* Forget everything. */
void cache_clear(struct cache *c);
/* Bytes of pickles kept, entries kept (tests). */
size_t cache_bytes(const struct cache *c);
size_t cache_count(const struct cache *c);

#endif /* DS_CACHE_H */
