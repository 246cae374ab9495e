/*
 * hashmap.h - a string -> pointer map (hashmap.c). Open addressing,
 * linear probing, tombstones; keys are copied. Not thread-safe.
 */
#ifndef DS_HASHMAP_H
#define DS_HASHMAP_H

#include <stddef.h>

#include "internal.h"

struct hashmap_ent {
	char *key;          /* NULL: empty; hashmap_tomb: deleted */
	void *val;
};
struct hashmap {
	struct hashmap_ent *tab;
	size_t cap;         /* power of two, or 0 */
	size_t used;        /* live + tombstones */
	size_t live;
};

void hashmap_init(struct hashmap *m);
void hashmap_free(struct hashmap *m);
void *hashmap_get(const struct hashmap *m, const char *key);
/* Insert or replace. Errors: DS_ENOMEM. */
int hashmap_put(struct hashmap *m, const char *key, void *val,
                    ds_error *err);
void hashmap_del(struct hashmap *m, const char *key);
/* Call fn on every live entry (no modification during the walk). */
void hashmap_each(const struct hashmap *m,
                      void (*fn)(const char *key, void *val, void *ctx),
                      void *ctx);

#endif /* DS_HASHMAP_H */
