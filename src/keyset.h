/*
 * keyset.h - sets of 64-bit ids and of (id, id) pairs (keyset.c); what the
 * increment checker remembers: the oids of an increment (the "first time
 * seen" rule for .c pointers), and for an init answer the transactions,
 * pointers and revisions sent and the revisions the pointers name. Not
 * installed. A zeroed struct is an empty set.
 */
#ifndef DS_KEYSET_H
#define DS_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct keyset_ids {
	uint64_t *slot;          /* 0: empty */
	size_t cap, n;           /* cap: a power of two */
	int has_zero;
};

struct keyset_pairs {
	uint64_t *slot;          /* 2 per key; (0, 0): empty */
	size_t cap, n;
	int has_zero;
};

/* A map of 64-bit keys to 64-bit values (pack: kept oid -> the oldest
 * serial kept). A zeroed struct is an empty map. */
struct keyset_map {
	uint64_t *slot;          /* key, value per slot; key 0: empty */
	size_t cap, n;
	int has_zero;
	uint64_t zero_value;
};

/* Add id (or the pair (a, b)); *added (may be NULL) says whether it was
 * new. Errors: DS_ENOMEM (the message names the increment). */
int keyset_id_add(struct keyset_ids *s, uint64_t id, int *added,
                  ds_error *err);
int keyset_pair_add(struct keyset_pairs *s, uint64_t a, uint64_t b,
                    int *added, ds_error *err);
/* 1 when id (the pair) is in the set, else 0. */
int keyset_id_has(const struct keyset_ids *s, uint64_t id);
int keyset_pair_has(const struct keyset_pairs *s, uint64_t a, uint64_t b);
/* Set key's value (added or replaced). Errors: DS_ENOMEM. */
int keyset_map_put(struct keyset_map *m, uint64_t key, uint64_t value,
                   ds_error *err);
/* 1 and *value when key is in the map, else 0. */
int keyset_map_get(const struct keyset_map *m, uint64_t key,
                   uint64_t *value);
void keyset_map_free(struct keyset_map *m);
/* Empty the set and free its table; NULL is accepted. */
void keyset_ids_free(struct keyset_ids *s);
void keyset_pairs_free(struct keyset_pairs *s);

#endif /* DS_KEYSET_H */
