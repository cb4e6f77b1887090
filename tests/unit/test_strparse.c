/* test_strparse.c - table-driven tests of core/strparse: counts, sizes, durations, decimals, ranges,
 * HOST:PORT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/strparse.h"

#define SEC  STRPARSE_NS_PER_SEC
#define MSEC STRPARSE_NS_PER_MS
#define MAXU UINT64_MAX

/* Each input is copied with its NUL flush against a PROT_NONE page: reading past the
 * NUL faults. */
static char *guarded(const char *s)
{
	static char *map;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = strlen(s) + 1;
	if (!map) {
		map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(map != MAP_FAILED);
		assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
	}
	assert_true(n <= page);
	return memcpy(map + page - n, s, n);
}

enum fn { UINT, SIZE, DUR, DEC, RANGE };
static const char *const fn_names[] = {"uint", "size", "duration", "decimal", "range"};

struct row {
	enum fn fn;
	const char *in;
	uint64_t min, max; /* DEC: as whole numbers, scaled by 1/1000 */
	int ok;
	uint64_t want, want_hi; /* DEC: want / 1000; RANGE: want..want_hi */
	const char *why;        /* a substring of the reason when !ok */
};

static const struct row rows[] = {
        {UINT, "0", 0, 65535, 1, 0, 0, NULL},
        {UINT, "65535", 0, 65535, 1, 65535, 0, NULL},
        {UINT, "007", 0, 65535, 1, 7, 0, NULL},
        {UINT, "18446744073709551615", 0, MAXU, 1, MAXU, 0, NULL},
        {UINT, "65536", 0, 65535, 0, 0, 0, "more than 65535"},
        {UINT, "0", 1, 256, 0, 0, 0, "less than 1"},
        {UINT, "18446744073709551616", 0, MAXU, 0, 0, 0, "more than 18446744073709551615"},
        {UINT, "99999999999999999999999", 0, 65535, 0, 0, 0, "more than 65535"},
        {UINT, "", 0, 10, 0, 0, 0, "empty"},
        {UINT, "-1", 0, 10, 0, 0, 0, "negative"},
        {UINT, "+1", 0, 10, 0, 0, 0, "not a number"},
        {UINT, " 1", 0, 10, 0, 0, 0, "not a number"},
        {UINT, "1 ", 0, 10, 0, 0, 0, "unexpected ' ' after the number"},
        {UINT, "1.5", 0, 10, 0, 0, 0, "not a whole number"},
        {UINT, "12abc", 0, 100, 0, 0, 0, "unexpected 'abc' after the number"},
        {UINT, "1e3", 0, MAXU, 0, 0, 0, "unexpected 'e3'"},
        {UINT, "0x10", 0, MAXU, 0, 0, 0, "unexpected 'x10'"},
        {UINT, "abc", 0, MAXU, 0, 0, 0, "not a number"},

        {SIZE, "1024", 0, MAXU, 1, 1024, 0, NULL},
        {SIZE, "64K", 0, MAXU, 1, 64 << 10, 0, NULL},
        {SIZE, "64k", 0, MAXU, 1, 64 << 10, 0, NULL},
        {SIZE, "10M", 0, MAXU, 1, 10 << 20, 0, NULL},
        {SIZE, "1MiB", 0, MAXU, 1, 1 << 20, 0, NULL},
        {SIZE, "10mb", 0, MAXU, 1, 10 << 20, 0, NULL},
        {SIZE, "1KB", 0, MAXU, 1, 1024, 0, NULL},
        {SIZE, "2G", 0, MAXU, 1, 2ull << 30, 0, NULL},
        {SIZE, "1T", 0, MAXU, 1, 1ull << 40, 0, NULL},
        {SIZE, "512B", 0, MAXU, 1, 512, 0, NULL},
        {SIZE, "0", 0, MAXU, 1, 0, 0, NULL},
        {SIZE, "16777215T", 0, MAXU, 1, 16777215ull << 40, 0, NULL},
        {SIZE, "16777216T", 0, MAXU, 0, 0, 0, "more than"},
        {SIZE, "12X", 0, MAXU, 0, 0, 0, "unknown unit 'X' (use K, M, G or T)"},
        {SIZE, "1 K", 0, MAXU, 0, 0, 0, "unknown unit ' K'"},
        {SIZE, "1Ki", 0, MAXU, 0, 0, 0, "unknown unit 'Ki'"},
        {SIZE, "1KiBB", 0, MAXU, 0, 0, 0, "unknown unit 'KiBB'"},
        {SIZE, "1iB", 0, MAXU, 0, 0, 0, "unknown unit 'iB'"},
        {SIZE, "1.5G", 0, MAXU, 0, 0, 0, "whole numbers"},
        {SIZE, "K", 0, MAXU, 0, 0, 0, "not a number"},
        {SIZE, "-1K", 0, MAXU, 0, 0, 0, "negative"},
        {SIZE, "", 0, MAXU, 0, 0, 0, "empty"},
        {SIZE, "1G", 1, 64 << 20, 0, 0, 0, "more than 64M"},
        {SIZE, "0", 1, 64 << 20, 0, 0, 0, "less than 1"},
        {SIZE, "1000", 1, 1000, 1, 1000, 0, NULL},
        {SIZE, "1001", 1, 1000, 0, 0, 0, "more than 1000"},

        {DUR, "1.5", 0, MAXU, 1, 1500 * MSEC, 0, NULL},
        {DUR, "500ms", 0, MAXU, 1, 500 * MSEC, 0, NULL},
        {DUR, "30s", 0, MAXU, 1, 30 * SEC, 0, NULL},
        {DUR, "2m", 0, MAXU, 1, 120 * SEC, 0, NULL},
        {DUR, "1.5m", 0, MAXU, 1, 90 * SEC, 0, NULL},
        {DUR, "1h", 0, MAXU, 1, 3600 * SEC, 0, NULL},
        {DUR, "250us", 0, MAXU, 1, 250000, 0, NULL},
        {DUR, "0.001", 0, MAXU, 1, MSEC, 0, NULL},
        {DUR, ".5", 0, MAXU, 1, SEC / 2, 0, NULL},
        {DUR, "0", 0, MAXU, 1, 0, 0, NULL},
        {DUR, "1.0000000019", 0, MAXU, 1, SEC + 1, 0, NULL},
        {DUR, "0.333333333333", 0, MAXU, 1, 333333333, 0, NULL},
        {DUR, "10", 0, 5 * SEC, 0, 0, 0, "more than 5s"},
        {DUR, "3601", MSEC, 3600 * SEC, 0, 0, 0, "more than 1h"},
        {DUR, "0", MSEC, MAXU, 0, 0, 0, "less than 1ms"},
        {DUR, "0.0005", MSEC, MAXU, 0, 0, 0, "less than 1ms"},
        {DUR, "5x", 0, MAXU, 0, 0, 0, "unknown unit 'x' (use us, ms, s, m or h; a number alone is seconds)"},
        {DUR, "5S", 0, MAXU, 0, 0, 0, "unknown unit 'S'"},
        {DUR, "5 s", 0, MAXU, 0, 0, 0, "unknown unit ' s'"},
        {DUR, "1e3", 0, MAXU, 0, 0, 0, "unknown unit 'e3'"},
        {DUR, "", 0, MAXU, 0, 0, 0, "empty"},
        {DUR, "ms", 0, MAXU, 0, 0, 0, "not a number"},
        {DUR, "-1", 0, MAXU, 0, 0, 0, "negative"},
        {DUR, "-.5", 0, MAXU, 0, 0, 0, "negative"},
        {DUR, ".", 0, MAXU, 0, 0, 0, "not a number"},
        {DUR, "5.", 0, MAXU, 0, 0, 0, "unknown unit '.'"},
        {DUR, "nan", 0, MAXU, 0, 0, 0, "not a number"},
        {DUR, "5124095576h", 0, MAXU, 0, 0, 0, "more than"},
        {DUR, "18446744073709551616", 0, MAXU, 0, 0, 0, "too large"},

        {DEC, "2000", 1, 100000000000, 1, 2000000, 0, NULL},
        {DEC, "0.5", 1, 100000000000, 1, 500, 0, NULL},
        {DEC, "0", 1, 100000000000, 0, 0, 0, "less than 0.001"},
        {DEC, "100000001", 1, 100000000000, 0, 0, 0, "more than 100000000"},
        {DEC, "1e3", 1, 100000000000, 0, 0, 0, "unexpected 'e3'"},
        {DEC, "abc", 1, 100000000000, 0, 0, 0, "not a number"},
        {DEC, "inf", 1, 100000000000, 0, 0, 0, "not a number"},

        {RANGE, "50000-50100", 1, 65535, 1, 50000, 50100, NULL},
        {RANGE, "80", 1, 65535, 1, 80, 80, NULL},
        {RANGE, "1-65535", 1, 65535, 1, 1, 65535, NULL},
        {RANGE, "100-50", 1, 65535, 0, 0, 0, "the first number is larger than the second"},
        {RANGE, "0-10", 1, 65535, 0, 0, 0, "less than 1"},
        {RANGE, "1-70000", 1, 65535, 0, 0, 0, "more than 65535"},
        {RANGE, "1-99999999999999999999", 1, 65535, 0, 0, 0, "more than 65535"},
        {RANGE, "1-", 1, 65535, 0, 0, 0, "want N or A-B within 1-65535"},
        {RANGE, "-5", 1, 65535, 0, 0, 0, "want N or A-B within 1-65535"},
        {RANGE, "a-b", 1, 65535, 0, 0, 0, "want N or A-B within 1-65535"},
        {RANGE, "1-2-3", 1, 65535, 0, 0, 0, "want N or A-B within 1-65535"},
        {RANGE, "1 - 2", 1, 65535, 0, 0, 0, "want N or A-B within 1-65535"},
        {RANGE, "", 1, 65535, 0, 0, 0, "empty"},
};

static int run_row(const struct row *r, char *err, size_t errlen, uint64_t *got, uint64_t *got_hi)
{
	const char *s = guarded(r->in);
	double d = -1;
	struct strparse_range rg = {7, 7};
	int rc;
	*got = *got_hi = 12345; /* must stay untouched on failure */
	switch (r->fn) {
	case UINT: return strparse_uint(s, r->min, r->max, got, err, errlen);
	case SIZE: return strparse_size(s, r->min, r->max, got, err, errlen);
	case DUR: return strparse_duration(s, r->min, r->max, got, err, errlen);
	case DEC:
		rc = strparse_decimal(s, (double)r->min / 1000, (double)r->max / 1000, &d, err, errlen);
		if (d >= 0)
			*got = (uint64_t)(d * 1000 + 0.5);
		return rc;
	case RANGE:
		rc = strparse_range(s, r->min, r->max, &rg, err, errlen);
		if (rc == 0)
			*got = rg.lo, *got_hi = rg.hi;
		else if (rg.lo != 7 || rg.hi != 7)
			*got = 0; /* touched on failure */
		return rc;
	}
	return -2;
}

static void test_rows(void **state)
{
	(void)state;
	int failed = 0;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		char err[STRPARSE_ERR_MAX] = "";
		uint64_t got, got_hi;
		int rc = run_row(r, err, sizeof err, &got, &got_hi);
		int bad = r->ok ? rc != 0 || got != r->want || (r->fn == RANGE && got_hi != r->want_hi)
		                : rc != -1 || !strstr(err, r->why) || got != 12345 || got_hi != 12345;
		if (bad) {
			print_error("row %zu: %s(\"%s\", %llu, %llu): rc %d, value %llu-%llu, reason \"%s\"; "
			            "want %s %llu-%llu \"%s\"\n",
			            i, fn_names[r->fn], r->in, (unsigned long long)r->min,
			            (unsigned long long)r->max, rc, (unsigned long long)got,
			            (unsigned long long)got_hi, err, r->ok ? "ok" : "error",
			            (unsigned long long)r->want, (unsigned long long)r->want_hi,
			            r->why ? r->why : "");
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* HOST:PORT as people type it; a failure leaves host and port untouched. */
static void test_hostport(void **state)
{
	(void)state;
	static const struct {
		const char *in, *bare; /* bare: the host a bare port means, or NULL */
		int ok;
		const char *host; /* the host, or a substring of the reason */
		unsigned port;
	} hp_rows[] = {
	        {"127.0.0.1:8080", "127.0.0.1", 1, "127.0.0.1", 8080},
	        {"localhost:1", NULL, 1, "localhost", 1},
	        {"[::1]:65535", NULL, 1, "::1", 65535},
	        {":5432", NULL, 1, "", 5432},
	        {"8080", "127.0.0.1", 1, "127.0.0.1", 8080},
	        {"0", "::1", 1, "::1", 0},
	        {"127.0.0.1:0", NULL, 1, "127.0.0.1", 0},
	        {"::1:80", NULL, 1, "::1", 80}, /* unbracketed: the last ':' */
	        {"8080", NULL, 0, "want HOST:PORT", 0},
	        {"localhost", "127.0.0.1", 0, "want HOST:PORT", 0},
	        {"", "127.0.0.1", 0, "empty", 0},
	        {"65536", "127.0.0.1", 0, "the port: more than 65535", 0},
	        {"127.0.0.1:65536", NULL, 0, "the port: more than 65535", 0},
	        {"127.0.0.1:", NULL, 0, "the port: empty", 0},
	        {"127.0.0.1:http", NULL, 0, "the port: not a number", 0},
	        {"127.0.0.1:80x", NULL, 0, "the port: unexpected 'x'", 0},
	        {"[::1]", NULL, 0, "want [IPv6]:PORT", 0},
	        {"[::1:80", NULL, 0, "want [IPv6]:PORT", 0},
	        {"0123456789abcdef:1", NULL, 0, "longer than 15 bytes", 0},
	        {"0123456789abcde:1", NULL, 1, "0123456789abcde", 1},
	};
	int failed = 0;
	for (size_t i = 0; i < sizeof(hp_rows) / sizeof(hp_rows[0]); i++) {
		char host[16] = "untouched", err[STRPARSE_ERR_MAX] = "";
		uint16_t port = 7;
		int rc = strparse_hostport(guarded(hp_rows[i].in), hp_rows[i].bare, host, sizeof host, &port,
		                           err, sizeof err);
		int bad = hp_rows[i].ok ? rc != 0 || strcmp(host, hp_rows[i].host) || port != hp_rows[i].port
		                        : rc != -1 || !strstr(err, hp_rows[i].host) ||
		                                  strcmp(host, "untouched") || port != 7;
		if (bad) {
			print_error("row %zu: \"%s\": rc %d host \"%s\" port %u reason \"%s\"; want %s "
			            "\"%s\" %u\n",
			            i, hp_rows[i].in, rc, host, port, err, hp_rows[i].ok ? "ok" : "error",
			            hp_rows[i].host, hp_rows[i].port);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* Reasons fit STRPARSE_ERR_MAX and a NULL err is allowed. */
static void test_reasons_fit(void **state)
{
	(void)state;
	char err[STRPARSE_ERR_MAX];
	uint64_t v;
	const char *long_junk =
	        "1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	assert_int_equal(strparse_duration(guarded(long_junk), 0, MAXU, &v, err, sizeof err), -1);
	assert_true(strlen(err) < sizeof err - 1);
	assert_int_equal(strparse_size(guarded(long_junk), 0, MAXU, &v, err, sizeof err), -1);
	assert_true(strlen(err) < sizeof err - 1);
	assert_int_equal(strparse_uint(guarded(long_junk), 0, MAXU, &v, NULL, 0), -1);
	char tiny[4];
	assert_int_equal(strparse_uint(guarded("x"), 0, 1, &v, tiny, sizeof tiny), -1);
	assert_string_equal(tiny, "not");
}

/* What the formatters write, and that it reads back to the same value. */
static void test_format_round_trip(void **state)
{
	(void)state;
	static const struct {
		uint64_t v;
		const char *size, *dur;
	} cases[] = {
	        {0, "0", "0"},
	        {1, "1", "0.000000001"},
	        {1000, "1000", "1us"},
	        {1024, "1K", "0.000001024"},
	        {1536, "1536", "0.000001536"},
	        {1ull << 30, "1G", "1.073741824"},
	        {3ull << 40, "3T", "3298.534883328"},
	        {1500 * MSEC, "1500000000", "1500ms"},
	        {90 * SEC, "87890625K", "90s"},
	        {3600 * SEC, "3515625000K", "1h"},
	        {120 * SEC, "117187500K", "2m"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char a[40], b[40];
		uint64_t back;
		strparse_fmt_size(cases[i].v, a, sizeof a);
		strparse_fmt_duration(cases[i].v, b, sizeof b);
		const char *want_dur = cases[i].dur;
		if (strcmp(a, cases[i].size) || strcmp(b, want_dur))
			print_error("case %zu: %llu -> size \"%s\" dur \"%s\"; want \"%s\" \"%s\"\n", i,
			            (unsigned long long)cases[i].v, a, b, cases[i].size, want_dur);
		assert_string_equal(a, cases[i].size);
		assert_string_equal(b, want_dur);
		assert_int_equal(strparse_size(a, 0, MAXU, &back, NULL, 0), 0);
		assert_int_equal(back, cases[i].v);
		assert_int_equal(strparse_duration(b, 0, MAXU, &back, NULL, 0), 0);
		assert_int_equal(back, cases[i].v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rows),
	        cmocka_unit_test(test_hostport),
	        cmocka_unit_test(test_reasons_fit),
	        cmocka_unit_test(test_format_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
