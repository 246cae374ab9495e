/*
 * test_keyset.c - the open-addressing tables of src/keyset.c (the
 * increment checker's sets, pack's marks): ids, pairs and the map of
 * pack's kept objects to their oldest kept serial, through many growths,
 * with the all-zero key (which cannot mark an empty slot) and keys that
 * collide in their low bits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "keyset.h"

#define N 100000

static void
test_ids_and_pairs(void **state)
{
	struct keyset_ids ids = {0};
	struct keyset_pairs pairs = {0};
	ds_error err;
	int added;

	(void)state;
	assert_false(keyset_id_has(&ids, 0));
	assert_false(keyset_pair_has(&pairs, 0, 0));
	for (uint64_t i = 0; i < N; i++) {
		/* multiples of 2^20: equal low bits */
		assert_int_equal(keyset_id_add(&ids, i << 20, &added, &err),
		                 DS_OK);
		assert_true(added);
		assert_int_equal(keyset_pair_add(&pairs, i, i * 7, &added,
		                                 &err), DS_OK);
		assert_true(added);
	}
	assert_int_equal(keyset_id_add(&ids, 5ull << 20, &added, &err), DS_OK);
	assert_false(added);
	assert_int_equal(ids.n, N - 1);          /* 0 is a flag, not a slot */
	assert_true(ids.cap >= 2 * ids.n);
	for (uint64_t i = 0; i < N; i++) {
		assert_true(keyset_id_has(&ids, i << 20));
		assert_false(keyset_id_has(&ids, (i << 20) + 1));
		assert_true(keyset_pair_has(&pairs, i, i * 7));
		assert_false(keyset_pair_has(&pairs, i, i * 7 + 1));
	}
	keyset_ids_free(&ids);
	keyset_pairs_free(&pairs);
	keyset_ids_free(NULL);
	keyset_pairs_free(NULL);
	assert_false(keyset_id_has(&ids, 1ull << 20));
}

static void
test_map(void **state)
{
	struct keyset_map m = {0};
	uint64_t v = 0;
	ds_error err;

	(void)state;
	assert_false(keyset_map_get(&m, 0, &v));
	assert_false(keyset_map_get(&m, 42, &v));
	for (uint64_t i = 0; i < N; i++)
		assert_int_equal(keyset_map_put(&m, i << 20, UINT64_MAX, &err),
		                 DS_OK);
	/* values replaced, keys not added twice */
	for (uint64_t i = 0; i < N; i += 3)
		assert_int_equal(keyset_map_put(&m, i << 20, i, &err), DS_OK);
	assert_int_equal(m.n, N - 1);
	assert_true(m.cap >= 2 * m.n);
	for (uint64_t i = 0; i < N; i++) {
		assert_true(keyset_map_get(&m, i << 20, &v));
		assert_true(v == (i % 3 == 0 ? i : UINT64_MAX));
		assert_false(keyset_map_get(&m, (i << 20) + 1, &v));
	}
	keyset_map_free(&m);
	keyset_map_free(NULL);
	assert_false(keyset_map_get(&m, 0, &v));
	assert_false(keyset_map_get(&m, 1ull << 20, &v));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_and_pairs),
		cmocka_unit_test(test_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
