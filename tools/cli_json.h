/*
 * cli_json.h - the JSON output of ds log, history and dump (--json) is
 * written with jansson. jansson is needed only for that (and by the unit
 * tests): a ds configured without libjansson-dev (CMake says so) refuses
 * --json when it parses the options (cli_json_ok), and the stand-ins
 * below, which are never reached then, only let the code behind --json
 * compile.
 */
#ifndef DS_CLI_JSON_H
#define DS_CLI_JSON_H

#ifdef DS_HAVE_JANSSON
#include <jansson.h>
#else
#include <stddef.h>
#include <stdio.h>

typedef struct cli_no_json json_t;
typedef long long json_int_t;

#define JSON_INDENT(n) 0
#define JSON_COMPACT 0

static inline json_t *json_object(void) { return NULL; }
static inline json_t *json_array(void) { return NULL; }
static inline json_t *json_null(void) { return NULL; }
static inline json_t *json_true(void) { return NULL; }
static inline json_t *json_false(void) { return NULL; }
static inline json_t *json_boolean(int v) { (void)v; return NULL; }
static inline json_t *json_integer(json_int_t v) { (void)v; return NULL; }
static inline json_t *json_string(const char *s) { (void)s; return NULL; }
static inline json_t *
json_stringn(const char *s, size_t n)
{
	(void)s;
	(void)n;
	return NULL;
}
static inline int
json_object_set_new(json_t *o, const char *k, json_t *v)
{
	(void)o;
	(void)k;
	(void)v;
	return -1;
}
static inline int json_object_clear(json_t *o) { (void)o; return -1; }
static inline int
json_array_append_new(json_t *a, json_t *v)
{
	(void)a;
	(void)v;
	return -1;
}
static inline int
json_dumpf(const json_t *j, FILE *out, size_t flags)
{
	(void)j;
	(void)out;
	(void)flags;
	return -1;
}
static inline void json_decref(json_t *j) { (void)j; }
#endif

/* 1 when --json can be honoured; else "ds SUB: --json: ..." is printed
 * and 0 returned (the caller exits DS_EXIT_USAGE). */
int cli_json_ok(const char *sub);

#endif /* DS_CLI_JSON_H */
