/*
 * test_transport.c - the command transport.c runs for the master side,
 * checked by running it for real: `echo` stands in for ssh (-e), so what
 * comes back on "stdout" is the argv ssh would get, the remote command
 * last, exactly as the remote shell would receive it; in local mode
 * `echo` is the master command itself.
 *  - the default `'<ds>' replica [-v...] + 'DIR'`;
 *  - a master command (--master-command) replaces `<ds> replica`, split
 *    on whitespace, each word single-quoted over ssh (a quote in a word
 *    arrives intact), run as words locally;
 *  - an exact command (how the replica side reads a file of an original
 *    master with cat): only its words, nothing appended;
 *  - an empty master command is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replica_internal.h"

/* Run the transport with an empty request, return what it printed. */
static void
run(const struct transport_opts *o, char *out, size_t outsz)
{
	struct transport *t = NULL;
	ds_error err;
	size_t len = 0;
	int how = -2;

	assert_int_equal(transport_start(o, "", 0, &t, &err), DS_OK);
	for (;;) {
		ssize_t n = transport_read(t, out + len, outsz - 1 - len, &err);

		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
		assert_true(len < outsz - 1);
	}
	out[len] = '\0';
	assert_int_equal(transport_wait(t, 0, &how, &err), DS_OK);
	assert_int_equal(how, 0);
	transport_free(t);
}

static void
ssh_opts(struct transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "dshost";
	o->command = "echo";
	o->master_dir = "/srv/it's ds";
	o->verbosity = 1;
}

static void
test_default_command(void **state)
{
	struct transport_opts o;
	char out[4096];

	(void)state;
	ssh_opts(&o);
	o.remote_program = "/usr/local/bin/ds";
	o.verbosity = 3;
	run(&o, out, sizeof(out));
	assert_string_equal(out, "dshost '/usr/local/bin/ds' replica -v -v + "
	                    "'/srv/it'\\''s ds'\n");
}

static void
test_master_command_ssh(void **state)
{
	struct transport_opts o;
	char out[4096];

	(void)state;
	ssh_opts(&o);
	o.remote_program = "/usr/local/bin/ds";   /* replaced */
	o.master_command = " /usr/bin/python3\t/opt/it's/replica.py ";
	run(&o, out, sizeof(out));
	assert_string_equal(out, "dshost '/usr/bin/python3' "
	                    "'/opt/it'\\''s/replica.py' + '/srv/it'\\''s ds'\n");
	o.verbosity = 0;
	run(&o, out, sizeof(out));
	assert_string_equal(out, "dshost '/usr/bin/python3' "
	                    "'/opt/it'\\''s/replica.py' -q + "
	                    "'/srv/it'\\''s ds'\n");
}

static void
test_exact_argv(void **state)
{
	const char *argv[] = {"cat", "--", "/srv/it's ds/config/identity", NULL};
	const char *largv[] = {"echo", "a  b", "c", NULL};
	struct transport_opts o;
	char out[4096];

	(void)state;
	ssh_opts(&o);
	o.master_command = "python3 replica.py";  /* not used */
	o.exact_argv = argv;
	o.verbosity = 3;
	run(&o, out, sizeof(out));
	assert_string_equal(out, "dshost 'cat' '--' "
	                    "'/srv/it'\\''s ds/config/identity'\n");
	/* locally: the words as they are, nothing appended */
	memset(&o, 0, sizeof(o));
	o.master_dir = "/srv/ds";
	o.exact_argv = largv;
	o.verbosity = 2;
	run(&o, out, sizeof(out));
	assert_string_equal(out, "a  b c\n");
}

static void
test_master_command_local(void **state)
{
	struct transport_opts o;
	char out[4096];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.master_dir = "/srv/it's ds";
	o.master_command = "echo replica.py";  /* no local_program needed */
	o.verbosity = 2;
	run(&o, out, sizeof(out));
	assert_string_equal(out, "replica.py -v + /srv/it's ds\n");
}

static void
test_empty_master_command(void **state)
{
	struct transport *t = NULL;
	struct transport_opts o;
	ds_error err;

	(void)state;
	ssh_opts(&o);
	o.master_command = " \t ";
	assert_int_equal(transport_start(&o, "", 0, &t, &err), DS_EINVAL);
	assert_null(t);
	assert_non_null(strstr(err.msg, "empty master command"));
	memset(&o, 0, sizeof(o));
	o.master_dir = "/srv/ds";
	o.master_command = " ";
	assert_int_equal(transport_start(&o, "", 0, &t, &err), DS_EINVAL);
	assert_null(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_command),
		cmocka_unit_test(test_master_command_ssh),
		cmocka_unit_test(test_exact_argv),
		cmocka_unit_test(test_master_command_local),
		cmocka_unit_test(test_empty_master_command),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
