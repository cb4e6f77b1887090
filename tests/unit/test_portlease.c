/* test_portlease.c - unit tests for diag/portlease: pool arithmetic, lease lines, liveness, IANA classes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diag/portlease.h"

static void test_iana_class(void **state)
{
	static const struct {
		uint16_t port;
		const char *want;
	} rows[] = {
	        {0, "system"},   {80, "system"},     {1023, "system"},   {1024, "user"},     {8080, "user"},
	        {49151, "user"}, {49152, "dynamic"}, {62893, "dynamic"}, {65535, "dynamic"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (strcmp(portlease_iana_class(rows[i].port), rows[i].want))
			fail_msg("row %zu: port %u: got %s, want %s", i, rows[i].port,
			         portlease_iana_class(rows[i].port), rows[i].want);
	}
}

static void test_pool(void **state)
{
	static const struct {
		struct portlease_range want, eph;
		size_t n;
		struct portlease_range out[2];
	} rows[] = {
	        /* default: disjoint */
	        {{15000, 24999}, {32768, 60999}, 1, {{15000, 24999}, {0, 0}}},
	        /* widened ephemeral range swallows the pool */
	        {{15000, 24999}, {1024, 65535}, 0, {{0, 0}, {0, 0}}},
	        /* overlap at the top */
	        {{15000, 24999}, {20000, 60999}, 1, {{15000, 19999}, {0, 0}}},
	        /* overlap at the bottom */
	        {{15000, 24999}, {10000, 16000}, 1, {{16001, 24999}, {0, 0}}},
	        /* ephemeral inside the pool: two pieces */
	        {{10000, 30000}, {15000, 20000}, 2, {{10000, 14999}, {20001, 30000}}},
	        /* edges touching */
	        {{32767, 32768}, {32768, 60999}, 1, {{32767, 32767}, {0, 0}}},
	        {{61000, 65535}, {32768, 60999}, 1, {{61000, 65535}, {0, 0}}},
	        /* empty want */
	        {{5, 4}, {32768, 60999}, 0, {{0, 0}, {0, 0}}},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct portlease_range out[2] = {{0, 0}, {0, 0}};
		size_t n = portlease_pool(rows[i].want, rows[i].eph, out);
		if (n != rows[i].n)
			fail_msg("row %zu: %zu ranges, want %zu", i, n, rows[i].n);
		for (size_t k = 0; k < n; k++)
			if (out[k].lo != rows[i].out[k].lo || out[k].hi != rows[i].out[k].hi)
				fail_msg("row %zu range %zu: %u-%u, want %u-%u", i, k, out[k].lo, out[k].hi,
				         rows[i].out[k].lo, rows[i].out[k].hi);
	}
}

static void test_parse_format_roundtrip(void **state)
{
	struct portlease l = {.port = 15001, .expires = 1795801804, .pid = 4242, .start = 987654};
	struct portlease back;
	char line[128];
	int k = portlease_format(&l, line, sizeof line);

	assert_true(k > 0);
	assert_string_equal(line, "15001 1795801804 4242 987654\n");
	assert_int_equal(portlease_parse(line, (size_t)k, &back), 0);
	assert_int_equal(back.port, 15001);
	assert_true(back.expires == 1795801804);
	assert_int_equal(back.pid, 4242);
	assert_true(back.start == 987654);
	assert_int_equal(portlease_format(&l, line, 10), -1); /* too small */
}

static void test_parse_rejects(void **state)
{
	static const char *bad[] = {
	        "",
	        "\n",
	        "15001",
	        "15001 1 2",
	        "0 1 2 3\n",
	        "70000 1 2 3\n",
	        "15001 -1 2 3\n",
	        "15001 1 -2 3\n",
	        "15001 1 2 3 4\n",
	        "15001 1 2 3x\n",
	        "x 1 2 3\n",
	        "15001 1 2 3\nmore",
	};
	struct portlease l;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (portlease_parse(bad[i], strlen(bad[i]), &l) == 0)
			fail_msg("row %zu: '%s' parsed", i, bad[i]);
	assert_int_equal(portlease_parse("15001 1 2 3", 11, &l), 0);
}

static void test_live(void **state)
{
	static const struct {
		struct portlease l;
		int64_t now;
		uint64_t pid_start;
		int want;
	} rows[] = {
	        {{15000, 100, 0, 0}, 99, 0, 1},  /* time lease, not expired */
	        {{15000, 100, 0, 0}, 100, 0, 0}, /* expired exactly now */
	        {{15000, 100, 0, 0}, 500, 0, 0}, /* expired */
	        {{15000, 0, 42, 7}, 500, 7, 1},  /* pid lease, same process */
	        {{15000, 0, 42, 7}, 500, 8, 0},  /* pid reused by another process */
	        {{15000, 0, 42, 7}, 500, 0, 0},  /* process gone */
	        {{15000, 0, 0, 0}, 500, 0, 0},   /* neither: never live */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (portlease_live(&rows[i].l, rows[i].now, rows[i].pid_start) != rows[i].want)
			fail_msg("row %zu: live != %d", i, rows[i].want);
}

static void test_expiry_holds_for_the_whole_lease(void **state)
{
	/* A 1 s lease taken at 100.999 s: time(NULL) reads 101 from 1 ms later on, and
	 * the lease must still hold then (it used to be written as 101: expired). */
	struct portlease l = {15000, portlease_expiry((struct timespec){100, 999000000}, 1), 0, 0};
	assert_int_equal(portlease_live(&l, 101, 0), 1);
	assert_int_equal(portlease_live(&l, 102, 0), 0);
	/* On a whole second it ends exactly secs later. */
	l.expires = portlease_expiry((struct timespec){100, 0}, 60);
	assert_int_equal(portlease_live(&l, 159, 0), 1);
	assert_int_equal(portlease_live(&l, 160, 0), 0);
}

static void test_proc_start(void **state)
{
	uint64_t a = 0, b = 0;

	assert_int_equal(portlease_proc_start(getpid(), &a), 0);
	assert_int_equal(portlease_proc_start(getpid(), &b), 0);
	assert_true(a == b);
	assert_int_equal(portlease_proc_start(0, &a), -1);
	assert_int_equal(portlease_proc_start(0x3ffffffe, &a), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_iana_class),
	        cmocka_unit_test(test_pool),
	        cmocka_unit_test(test_parse_format_roundtrip),
	        cmocka_unit_test(test_parse_rejects),
	        cmocka_unit_test(test_live),
	        cmocka_unit_test(test_expiry_holds_for_the_whole_lease),
	        cmocka_unit_test(test_proc_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
