/* test_ping.c - unit tests for diag/ping's statistics and target parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "diag/ping.h"

#define NEAR(a, b) ((a) - (b) < 1e-9 && (b) - (a) < 1e-9)

static void test_percentiles(void **state)
{
	static const double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	static const struct {
		double q, want;
	} rows[] = {
	        {50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {11, 2}, {1, 1}, {0.1, 1},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		double got = ping_percentile(v, 10, rows[i].q);
		if (!NEAR(got, rows[i].want))
			fail_msg("row %zu: p%g = %g, want %g", i, rows[i].q, got, rows[i].want);
	}
	double one = 7;
	assert_true(NEAR(ping_percentile(&one, 1, 50), 7));
	assert_true(NEAR(ping_percentile(&one, 1, 99), 7));
	assert_true(NEAR(ping_percentile(NULL, 0, 50), 0));
}

static void test_summary(void **state)
{
	/* unsorted on purpose: summarize sorts */
	double v[] = {4, 2, 8, 6};
	struct ping_summary s;

	ping_summarize(v, 4, 5, &s);
	assert_int_equal(s.sent, 5);
	assert_int_equal(s.received, 4);
	assert_true(NEAR(s.loss_pct, 20));
	assert_true(NEAR(s.min, 2) && NEAR(s.max, 8) && NEAR(s.avg, 5));
	/* mean of squares 30, square of mean 25: mdev sqrt(5) */
	assert_true(NEAR(s.mdev, 2.2360679774997898));
	assert_true(NEAR(s.p50, 4) && NEAR(s.p90, 8) && NEAR(s.p99, 8));
	assert_true(NEAR(v[0], 2) && NEAR(v[3], 8));
}

static void test_summary_constant_and_empty(void **state)
{
	double v[] = {0.3, 0.3, 0.3};
	struct ping_summary s;

	ping_summarize(v, 3, 3, &s);
	assert_true(NEAR(s.mdev, 0)); /* rounding must not give NaN or a tiny negative root */
	assert_true(NEAR(s.loss_pct, 0));
	ping_summarize(NULL, 0, 4, &s);
	assert_true(NEAR(s.loss_pct, 100) && NEAR(s.min, 0) && NEAR(s.p99, 0));
	ping_summarize(NULL, 0, 0, &s);
	assert_true(NEAR(s.loss_pct, 0));
}

static void test_parse_target(void **state)
{
	static const struct {
		const char *s;
		int need_port, ok, family;
		uint16_t port;
	} rows[] = {
	        {"127.0.0.1:80", 1, 1, AF_INET, 80},
	        {"[::1]:8080", 1, 1, AF_INET6, 8080},
	        {"localhost:1", 1, 1, 0, 1},
	        {"127.0.0.1", 0, 1, AF_INET, 0},
	        {"::1", 0, 1, AF_INET6, 0},
	        {"[::1]", 0, 1, AF_INET6, 0},
	        {"127.0.0.1", 1, 0, 0, 0}, /* port missing */
	        {"127.0.0.1:0", 1, 0, 0, 0},
	        {"127.0.0.1:65536", 1, 0, 0, 0},
	        {"127.0.0.1:x", 1, 0, 0, 0},
	        {":80", 1, 0, 0, 0},
	        {"[::1]:80", 0, 0, 0, 0}, /* ICMP takes no port */
	        {"[::1", 1, 0, 0, 0},
	        {"", 0, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		int rc = ping_parse_target(rows[i].s, rows[i].need_port, &ss, &len);
		if ((rc == 0) != rows[i].ok)
			fail_msg("row %zu: '%s' rc %d", i, rows[i].s, rc);
		if (rc == 0 && rows[i].family && ss.ss_family != rows[i].family)
			fail_msg("row %zu: family %d", i, ss.ss_family);
		if (rc == 0 && rows[i].port) {
			uint16_t port = ss.ss_family == AF_INET
			                        ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
			                        : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			if (port != rows[i].port)
				fail_msg("row %zu: port %u", i, port);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_percentiles),
	        cmocka_unit_test(test_summary),
	        cmocka_unit_test(test_summary_constant_and_empty),
	        cmocka_unit_test(test_parse_target),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
