/* test_core.c - unit tests of the core library: buffers, JSON, the event loop, sockets, fsroot, errors. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"

#include "core/buf.h"
#include "core/decimal.h"
#include "core/dirsnap.h"
#include "core/filesend.h"
#include "core/errors.h"
#include "core/fsroot.h"
#include "core/json.h"
#include "core/loop.h"
#include "core/net.h"

/*
 * Helpers
 */

/* s[0..n) with C escapes, for failure messages. */
static const char *show(const void *s, size_t n, char *out, size_t outlen)
{
	const unsigned char *p = s;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (o + 8 >= outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (p[i] == '\\' || p[i] == '"')
			o += (size_t)snprintf(out + o, outlen - o, "\\%c", p[i]);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", p[i]);
	}
	out[o] = '\0';
	return out;
}

#define SHOWN      600
#define SHOW(s, n) show((s), (n), (char[SHOWN]){0}, SHOWN)

/* Deterministic generator, so a failing row is the same on every run. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Descriptor accounting: every test that opens something runs between fx_setup and
 * fx_teardown, which fail the test when /proc/self/fd grew.
 */

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void fd_dump(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[64], target[PATH_MAX];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%.20s", e->d_name);
		n = readlink(path, target, sizeof target - 1);
		target[n < 0 ? 0 : n] = '\0';
		print_message("    fd %s -> %s\n", e->d_name, target);
	}
	closedir(d);
}

struct tree;

struct fx {
	int fds;           /* open descriptors when the test began */
	struct tree *tree; /* fsroot tests only */
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->fds = fd_count();
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	int now = fd_count();
	int ok = f->fds >= 0 && now == f->fds;

	if (!ok) {
		print_error("descriptor leak: %d open before the test, %d after\n", f->fds, now);
		fd_dump();
	}
	free(f);
	return ok ? 0 : -1;
}

/*
 * buf
 */

/* Fills buffers of several maxima exactly, in several chunk sizes. */
static void test_buf_limits(void **state)
{
	static const struct {
		size_t max, chunk;
	} rows[] = {
	        {1, 1},       {16, 1},   {16, 7},      {16, 16},  {1023, 100},  {1024, 1024}, {1025, 1},
	        {1025, 1025}, {3000, 7}, {4095, 4095}, {4096, 1}, {4097, 4097}, {5000, 4096}, {9000, 1000},
	};
	static char src[9001];

	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t max = rows[i].max, chunk = rows[i].chunk;
		struct buf b;
		char *snap;

		buf_init(&b, max);
		while (buf_used(&b) < max) {
			size_t n = max - buf_used(&b) < chunk ? max - buf_used(&b) : chunk;

			if (buf_append(&b, src + buf_used(&b), n) != 0)
				fail_msg("row %zu (max %zu, chunk %zu): append of %zu at %zu failed", i, max,
				         chunk, n, buf_used(&b));
		}
		if (buf_used(&b) != max || memcmp(buf_start(&b), src, max))
			fail_msg("row %zu (max %zu, chunk %zu): content wrong after filling", i, max, chunk);
		if (b.cap > max)
			fail_msg("row %zu (max %zu): cap %zu exceeds max", i, max, b.cap);
		snap = malloc(max);
		assert_non_null(snap);
		memcpy(snap, buf_start(&b), max);

		/* One more byte: refused, and nothing changes. */
		if (buf_append(&b, "X", 1) != -1)
			fail_msg("row %zu (max %zu): append past max succeeded", i, max);
		if (buf_printf(&b, "%c", 'X') != -1)
			fail_msg("row %zu (max %zu): printf past max succeeded", i, max);
		if (buf_space(&b, 1, NULL) != NULL)
			fail_msg("row %zu (max %zu): buf_space(1) on a full buffer succeeded", i, max);
		if (buf_used(&b) != max || memcmp(buf_start(&b), snap, max))
			fail_msg("row %zu (max %zu): a refused append changed the content", i, max);

		/* Room made by consuming can be used again, to exactly max. */
		buf_consume(&b, 1);
		if (max > 1 && buf_append(&b, "XY", 2) != -1)
			fail_msg("row %zu (max %zu): append of 2 into 1 free byte succeeded", i, max);
		if (buf_append(&b, "Z", 1) != 0)
			fail_msg("row %zu (max %zu): append into the consumed byte failed", i, max);
		if (buf_used(&b) != max || memcmp(buf_start(&b), snap + 1, max - 1) ||
		    buf_start(&b)[max - 1] != 'Z')
			fail_msg("row %zu (max %zu): content wrong after consume + append", i, max);
		free(snap);
		buf_free(&b);
		assert_null(b.data);
		assert_int_equal(b.max, max);
		assert_int_equal(buf_used(&b), 0);
	}
}

/* Appending nothing never exceeds max, even to a buffer that owns no memory yet. */
static void test_buf_append_empty(void **state)
{
	struct buf b = {.max = 16};
	int fresh = buf_append(&b, "", 0);
	size_t used0 = buf_used(&b);
	int abc = buf_append(&b, "abc", 3);
	int later = buf_append(&b, "", 0);
	size_t used3 = buf_used(&b);

	buf_free(&b);
	if (fresh || later || abc || used0 != 0 || used3 != 3)
		fail_msg("append of 0 bytes: %d to a fresh buffer, %d after \"abc\"; want 0 and 0", fresh,
		         later);
}

/* The pool keeps first blocks only, at most BUF_POOL_MAX, and gives them back empty;
 * a buffer whose max is below a first block, or that owns memory, is not given one. */
static void test_buf_pool(void **state)
{
	struct buf_pool pool = {0};
	struct buf b[BUF_POOL_MAX + 1], big, small = {.max = 100}, owns = {.max = 1 << 20};

	for (size_t i = 0; i <= BUF_POOL_MAX; i++) {
		buf_init(&b[i], 1 << 20);
		assert_int_equal(buf_append(&b[i], "abc", 3), 0);
	}
	buf_init(&big, 1 << 20);
	assert_non_null(buf_space(&big, 2 * BUF_FIRST_CAP, NULL));
	for (size_t i = 0; i <= BUF_POOL_MAX; i++)
		buf_pool_put(&pool, &b[i]);
	buf_pool_put(&pool, &big); /* grown past a first block: freed */
	assert_int_equal(pool.n, BUF_POOL_MAX);
	assert_null(b[0].data);
	assert_int_equal(b[0].cap, 0);

	buf_pool_get(&pool, &small);
	assert_int_equal(small.cap, 0);
	assert_int_equal(buf_append(&owns, "x", 1), 0);
	char *had = owns.data;
	buf_pool_get(&pool, &owns);
	assert_ptr_equal(owns.data, had);
	assert_int_equal(pool.n, BUF_POOL_MAX);

	buf_init(&b[0], 1 << 20);
	buf_pool_get(&pool, &b[0]);
	assert_int_equal(pool.n, BUF_POOL_MAX - 1);
	assert_int_equal(b[0].cap, BUF_FIRST_CAP);
	assert_int_equal(buf_used(&b[0]), 0);
	assert_int_equal(buf_append(&b[0], "defg", 4), 0);
	assert_memory_equal(buf_start(&b[0]), "defg", 4);
	buf_free(&b[0]);
	buf_free(&owns);
	buf_free(&small);
	buf_pool_drain(&pool);
	assert_int_equal(pool.n, 0);
}

/* A need so large that used + need wraps around must still be refused. */
static void test_buf_space_huge_need(void **state)
{
	struct buf b;
	size_t avail = 0;

	buf_init(&b, 1024);
	assert_int_equal(buf_append(&b, "x", 1), 0);
	char *p = buf_space(&b, SIZE_MAX, &avail);
	size_t used = buf_used(&b);

	buf_free(&b);
	if (p)
		fail_msg("buf_space(SIZE_MAX) with 1 byte used, max 1024: got room of %zu, want NULL", avail);
	assert_int_equal(used, 1);
}

/* buf_space moves the live bytes to the front before it grows the allocation. */
static void test_buf_space_compacts(void **state)
{
	static const struct {
		size_t max, fill, consume, need;
		int ok;
	} rows[] = {
	        {16, 16, 10, 10, 1},       /* exactly the freed room */
	        {16, 16, 10, 11, 0},       /* one more than max allows */
	        {1024, 1000, 900, 200, 1}, /* fits in cap once compacted: no realloc */
	        {1024, 1024, 1, 1, 1},
	        {4096, 1024, 1000, 1000, 1},
	        {100000, 50000, 49000, 20000, 1},
	        {100000, 100000, 99999, 99999, 1},
	        {100000, 100000, 99999, 100000, 0},
	};
	static char src[100000];

	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (char)('A' + i % 23);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t keep = rows[i].fill - rows[i].consume;
		size_t avail = 0, cap, len;
		struct buf b;
		char *p;

		buf_init(&b, rows[i].max);
		assert_int_equal(buf_append(&b, src, rows[i].fill), 0);
		buf_consume(&b, rows[i].consume);
		if (b.off != rows[i].consume)
			fail_msg("row %zu: off %zu after consume, want %zu", i, b.off, rows[i].consume);
		cap = b.cap;
		len = b.len;
		p = buf_space(&b, rows[i].need, &avail);
		if (!rows[i].ok) {
			if (p)
				fail_msg("row %zu: buf_space(%zu) with %zu used, max %zu succeeded", i,
				         rows[i].need, keep, rows[i].max);
		} else {
			if (!p)
				fail_msg("row %zu: buf_space(%zu) with %zu used, max %zu failed", i,
				         rows[i].need, keep, rows[i].max);
			if (avail < rows[i].need || p != buf_start(&b) + keep)
				fail_msg("row %zu: avail %zu (need %zu), p at %td (want %zu)", i, avail,
				         rows[i].need, p - buf_start(&b), keep);
			/* When the tail is too short but the whole allocation is not, compact
			 * instead of growing. */
			if (cap - len < rows[i].need && cap >= keep + rows[i].need &&
			    (b.off != 0 || b.cap != cap))
				fail_msg("row %zu: did not compact in place (off %zu, cap %zu -> %zu)", i,
				         b.off, cap, b.cap);
			if (b.cap > rows[i].max)
				fail_msg("row %zu: cap %zu exceeds max %zu", i, b.cap, rows[i].max);
		}
		if (buf_used(&b) != keep || memcmp(buf_start(&b), src + rows[i].consume, keep))
			fail_msg("row %zu: live bytes changed by buf_space", i);
		buf_free(&b);
	}
}

/* Consuming everything (or more) rewinds off and len, so the space is reused. */
static void test_buf_consume(void **state)
{
	static const struct {
		size_t fill, consume, left;
	} rows[] = {
	        {10, 0, 10}, {10, 3, 7}, {10, 9, 1}, {10, 10, 0}, {10, 11, 0}, {10, 1000, 0},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct buf b;

		buf_init(&b, 64);
		assert_int_equal(buf_append(&b, "0123456789", rows[i].fill), 0);
		buf_consume(&b, rows[i].consume);
		if (buf_used(&b) != rows[i].left)
			fail_msg("row %zu (consume %zu): used %zu, want %zu", i, rows[i].consume,
			         buf_used(&b), rows[i].left);
		if (!rows[i].left && (b.off != 0 || b.len != 0))
			fail_msg("row %zu (consume %zu): empty but off %zu len %zu", i, rows[i].consume,
			         b.off, b.len);
		if (rows[i].left && memcmp(buf_start(&b), &"0123456789"[rows[i].consume], rows[i].left))
			fail_msg("row %zu (consume %zu): wrong bytes left", i, rows[i].consume);
		buf_free(&b);
	}
}

/* printf output longer than the first 128-byte try, and than the first allocation. */
static void test_buf_printf(void **state)
{
	static const struct {
		size_t max, prefill, consume, n;
		int want;
	} rows[] = {
	        {4096, 0, 0, 0, 0},        {4096, 0, 0, 100, 0},      {4096, 0, 0, 127, 0},
	        {4096, 0, 0, 128, 0},      {4096, 0, 0, 200, 0},      {4096, 0, 0, 1023, 0},
	        {4096, 0, 0, 1024, 0},     {4096, 0, 0, 3000, 0},     {4096, 1000, 0, 500, 0},
	        {4096, 1000, 0, 3095, 0},  {4096, 1000, 0, 3097, -1}, {4096, 1000, 0, 9000, -1},
	        {1024, 1000, 900, 200, 0}, {1024, 1000, 900, 924, 0}, {100, 0, 0, 50, 0},
	        {100, 0, 0, 99, 0},        {100, 0, 0, 101, -1},      {100, 90, 0, 9, 0},
	        {100, 90, 0, 11, -1},
	};
	char *src = malloc(10000);

	assert_non_null(src);
	for (size_t i = 0; i < 10000; i++)
		src[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t before;
		struct buf b;
		int r;

		buf_init(&b, rows[i].max);
		for (size_t k = 0; k < rows[i].prefill; k++)
			assert_int_equal(buf_append(&b, "#", 1), 0);
		buf_consume(&b, rows[i].consume);
		before = buf_used(&b);
		r = buf_printf(&b, "%.*s", (int)rows[i].n, src);
		if (r != rows[i].want)
			fail_msg("row %zu (max %zu, used %zu, printf %zu bytes): got %d, want %d", i,
			         rows[i].max, before, rows[i].n, r, rows[i].want);
		size_t want_used = before + (r == 0 ? rows[i].n : 0);
		if (buf_used(&b) != want_used)
			fail_msg("row %zu: used %zu, want %zu", i, buf_used(&b), want_used);
		for (size_t k = 0; k < before; k++)
			if (buf_start(&b)[k] != '#')
				fail_msg("row %zu: earlier content damaged at %zu", i, k);
		if (r == 0 && rows[i].n && memcmp(buf_start(&b) + before, src, rows[i].n))
			fail_msg("row %zu: printed bytes wrong", i);
		if (b.cap > rows[i].max)
			fail_msg("row %zu: cap %zu exceeds max", i, b.cap);
		buf_free(&b);
	}

	/* Many formatted appends build the same text as one snprintf. */
	struct buf b;
	char want[8192];
	size_t wl = 0;

	buf_init(&b, 8192);
	for (int k = 0; k < 500; k++) {
		assert_int_equal(buf_printf(&b, "%d:%s,", k * 7919, k % 3 ? "x" : "yy"), 0);
		wl += (size_t)snprintf(want + wl, sizeof want - wl, "%d:%s,", k * 7919, k % 3 ? "x" : "yy");
	}
	assert_int_equal(buf_used(&b), wl);
	assert_memory_equal(buf_start(&b), want, wl);
	buf_free(&b);
	free(src);
}

/* printf of exactly the remaining room: it does not exceed max, so it must succeed. */
static void test_buf_printf_fills_to_max(void **state)
{
	static const struct {
		size_t max, prefill, n;
	} rows[] = {
	        {100, 0, 100},
	        {100, 90, 10},
	        {4096, 1000, 3096},
	        {16, 15, 1},
	};
	char src[4096];

	memset(src, 'p', sizeof src);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct buf b;

		buf_init(&b, rows[i].max);
		for (size_t k = 0; k < rows[i].prefill; k++)
			assert_int_equal(buf_append(&b, "#", 1), 0);
		/* buf_append of the same bytes succeeds: the two must agree. */
		int ra = buf_append(&b, src, rows[i].n);
		b.len -= ra == 0 ? rows[i].n : 0;
		int rp = buf_printf(&b, "%.*s", (int)rows[i].n, src);
		size_t used = buf_used(&b);

		buf_free(&b);
		if (ra != 0 || rp != 0)
			fail_msg("row %zu (max %zu, used %zu, %zu more bytes): buf_append %d, buf_printf "
			         "%d, want 0 and 0",
			         i, rows[i].max, rows[i].prefill, rows[i].n, ra, rp);
		assert_int_equal(used, rows[i].max);
	}
}

/*
 * json writer
 */

static void expect_buf(const struct buf *b, const char *want, const char *what)
{
	size_t wl = strlen(want);

	if (buf_used(b) != wl || memcmp(buf_start(b), want, wl))
		fail_msg("%s:\n got  \"%s\"\n want \"%s\"", what, SHOW(buf_start(b), buf_used(b)),
		         SHOW(want, wl));
}

static void write_doc(struct json *j)
{
	json_obj_begin(j);
	json_key(j, "a");
	json_int(j, 1);
	json_key(j, "b");
	json_arr_begin(j);
	json_int(j, 1);
	json_int(j, 2);
	json_obj_begin(j);
	json_obj_end(j);
	json_arr_end(j);
	json_key(j, "c");
	json_obj_begin(j);
	json_key(j, "d");
	json_null(j);
	json_obj_end(j);
	json_key(j, "e");
	json_arr_begin(j);
	json_arr_end(j);
	json_key(j, "f");
	json_arr_begin(j);
	json_arr_begin(j);
	json_bool(j, 1);
	json_bool(j, 0);
	json_arr_end(j);
	json_str(j, "x");
	json_arr_end(j);
	json_key(j, "g");
	json_raw(j, "{\"r\":[1]}", 9);
	json_key(j, "h");
	json_str(j, NULL);
	json_obj_end(j);
}

static const char doc_compact[] =
        "{\"a\":1,\"b\":[1,2,{}],\"c\":{\"d\":null},\"e\":[],\"f\":[[true,false],\"x\"],"
        "\"g\":{\"r\":[1]},\"h\":null}";

static const char doc_pretty[] = "{\n"
                                 "  \"a\": 1,\n"
                                 "  \"b\": [\n"
                                 "    1,\n"
                                 "    2,\n"
                                 "    {}\n"
                                 "  ],\n"
                                 "  \"c\": {\n"
                                 "    \"d\": null\n"
                                 "  },\n"
                                 "  \"e\": [],\n"
                                 "  \"f\": [\n"
                                 "    [\n"
                                 "      true,\n"
                                 "      false\n"
                                 "    ],\n"
                                 "    \"x\"\n"
                                 "  ],\n"
                                 "  \"g\": {\"r\":[1]},\n"
                                 "  \"h\": null\n"
                                 "}";

static void test_json_nested(void **state)
{
	for (int pretty = 0; pretty <= 1; pretty++) {
		struct buf b;
		struct json j;

		buf_init(&b, 4096);
		json_init(&j, &b, pretty);
		write_doc(&j);
		assert_int_equal(j.err, 0);
		assert_int_equal(j.depth, 0);
		expect_buf(&b, pretty ? doc_pretty : doc_compact, pretty ? "pretty" : "compact");
		assert_true(json_valid(buf_start(&b), buf_used(&b)));
		buf_free(&b);
	}

	/* Top-level scalars and empty containers. */
	static const struct {
		int kind;
		const char *want;
	} rows[] = {
	        {0, "{}"},
	        {1, "[]"},
	        {2, "\"\""},
	        {3, "-9223372036854775808"},
	        {4, "18446744073709551615"},
	        {5, "[0,-1,true]"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char what[32];
		struct buf b;
		struct json j;

		buf_init(&b, 256);
		json_init(&j, &b, 0);
		switch (rows[i].kind) {
		case 0: json_obj_begin(&j), json_obj_end(&j); break;
		case 1: json_arr_begin(&j), json_arr_end(&j); break;
		case 2: json_str(&j, ""); break;
		case 3: json_int(&j, LLONG_MIN); break;
		case 4: json_uint(&j, ULLONG_MAX); break;
		case 5:
			json_arr_begin(&j);
			json_int(&j, 0);
			json_int(&j, -1);
			json_bool(&j, 7);
			json_arr_end(&j);
			break;
		}
		snprintf(what, sizeof what, "row %zu", i);
		assert_int_equal(j.err, 0);
		expect_buf(&b, rows[i].want, what);
		buf_free(&b);
	}
}

/* The escaping every string gets, as a key and as a value. */
static void test_json_escape(void **state)
{
	static const struct {
		const char *in;
		size_t len; /* 0: strlen(in) */
		const char *want;
	} rows[] = {
	        {"plain", 0, "\"plain\""},
	        {"", 0, "\"\""},
	        {"a\"b", 0, "\"a\\\"b\""},
	        {"a\\b", 0, "\"a\\\\b\""},
	        {"\"\\\"", 0, "\"\\\"\\\\\\\"\""},
	        {"\n\r\t", 0, "\"\\n\\r\\t\""},
	        {"\x01\x1f", 0, "\"\\u0001\\u001f\""},
	        {"\0", 1, "\"\\u0000\""},
	        {"a\0b", 3, "\"a\\u0000b\""},
	        {"\b\f\v", 0, "\"\\u0008\\u000c\\u000b\""},
	        {"\x7f", 0, "\"\\u007f\""},
	        {"<script>&amp;", 0, "\"\\u003cscript\\u003e\\u0026amp;\""},
	        {"</", 0, "\"\\u003c/\""},
	        {"a/b 'c' ~", 0, "\"a/b 'c' ~\""},
	        /* valid UTF-8 passes unchanged: 2, 3 and 4 bytes, the edges of each */
	        {"\xc2\x80", 0, "\"\xc2\x80\""},
	        {"caf\xc3\xa9", 0, "\"caf\xc3\xa9\""},
	        {"\xdf\xbf", 0, "\"\xdf\xbf\""},
	        {"\xe0\xa0\x80", 0, "\"\xe0\xa0\x80\""},
	        {"\xe2\x82\xac 5", 0, "\"\xe2\x82\xac 5\""},
	        {"\xed\x9f\xbf", 0, "\"\xed\x9f\xbf\""},
	        {"\xee\x80\x80", 0, "\"\xee\x80\x80\""},
	        {"\xef\xbf\xbf", 0, "\"\xef\xbf\xbf\""},
	        {"\xf0\x90\x80\x80", 0, "\"\xf0\x90\x80\x80\""},
	        {"\xf0\x9f\x98\x80!", 0, "\"\xf0\x9f\x98\x80!\""},
	        {"\xf4\x8f\xbf\xbf", 0, "\"\xf4\x8f\xbf\xbf\""},
	        /* a single invalid byte becomes U+FFFD, its neighbours are kept */
	        {"a\xff"
	         "b",
	         0, "\"a\\ufffdb\""},
	        {"\x80", 0, "\"\\ufffd\""},
	        {"\xbf", 0, "\"\\ufffd\""},
	        {"\xc3", 0, "\"\\ufffd\""},
	        {"\xc3(", 0, "\"\\ufffd(\""},
	        {"\xf5", 0, "\"\\ufffd\""},
	        {"\xfe", 0, "\"\\ufffd\""},
	        {"x\xc3\xa9\xa9y", 0, "\"x\xc3\xa9\\ufffdy\""},
	        {"\xc3\xa9\xc3", 0, "\"\xc3\xa9\\ufffd\""},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t len = rows[i].len ? rows[i].len : strlen(rows[i].in);
		char want[256];
		struct buf b;
		struct json j;

		/* as a value */
		buf_init(&b, 256);
		json_init(&j, &b, 0);
		json_str_n(&j, rows[i].in, len);
		if (j.err || buf_used(&b) != strlen(rows[i].want) ||
		    memcmp(buf_start(&b), rows[i].want, buf_used(&b)))
			fail_msg("row %zu \"%s\" as value:\n got  \"%s\"\n want \"%s\"", i,
			         SHOW(rows[i].in, len), SHOW(buf_start(&b), buf_used(&b)),
			         SHOW(rows[i].want, strlen(rows[i].want)));
		if (!json_valid(buf_start(&b), buf_used(&b)))
			fail_msg("row %zu \"%s\": output is not valid JSON", i, SHOW(rows[i].in, len));
		buf_free(&b);

		/* as a key */
		buf_init(&b, 256);
		json_init(&j, &b, 0);
		json_obj_begin(&j);
		json_key_n(&j, rows[i].in, len);
		json_int(&j, 1);
		json_obj_end(&j);
		snprintf(want, sizeof want, "{%s:1}", rows[i].want);
		if (j.err || buf_used(&b) != strlen(want) || memcmp(buf_start(&b), want, buf_used(&b)))
			fail_msg("row %zu \"%s\" as key:\n got  \"%s\"\n want \"%s\"", i,
			         SHOW(rows[i].in, len), SHOW(buf_start(&b), buf_used(&b)),
			         SHOW(want, strlen(want)));
		buf_free(&b);
	}
}

/* Invalid multi-byte sequences: no invalid byte survives, U+FFFD appears, the ASCII and
 * the valid UTF-8 around them are kept. */
static void test_json_invalid_utf8(void **state)
{
	static const struct {
		const char *in;
		const char *keep; /* valid UTF-8 inside that must pass unchanged */
	} rows[] = {
	        {"\xc0\xaf", ""},             /* overlong '/' */
	        {"\xe0\x80\xaf", ""},         /* overlong, 3 bytes */
	        {"\xf0\x80\x80\xaf", ""},     /* overlong, 4 bytes */
	        {"\xed\xa0\x80", ""},         /* UTF-16 surrogate D800 */
	        {"\xed\xbf\xbf", ""},         /* surrogate DFFF */
	        {"\xf4\x90\x80\x80", ""},     /* above U+10FFFF */
	        {"\xe2\x82", ""},             /* truncated */
	        {"\xf0\x9f\x98", ""},         /* truncated */
	        {"\xe2\x28\xa1", ""},         /* bad continuation */
	        {"\xc3\xc3\xa9", "\xc3\xa9"}, /* stray lead byte, then a valid pair */
	        {"\xe2\x82\xac\x80", "\xe2\x82\xac"},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char in[32];
		size_t n = (size_t)snprintf(in, sizeof in, "<%s>", rows[i].in);
		size_t keep = strlen(rows[i].keep), high = 0;
		struct buf b;
		struct json j;

		buf_init(&b, 256);
		json_init(&j, &b, 0);
		json_str_n(&j, in, n);
		const char *o = buf_start(&b);
		size_t ol = buf_used(&b);

		for (size_t k = 0; k < ol; k++)
			high += (unsigned char)o[k] >= 0x80;
		if (j.err || high != keep || (keep && !memmem(o, ol, rows[i].keep, keep)) ||
		    !memmem(o, ol, "\\ufffd", 6) || ol < 14 || memcmp(o, "\"\\u003c", 7) ||
		    memcmp(o + ol - 7, "\\u003e\"", 7) || !json_valid(o, ol))
			fail_msg("row %zu \"%s\": got \"%s\"", i, SHOW(in, n), SHOW(o, ol));
		buf_free(&b);
	}
}

/* Every single byte, against an escape table written independently of the writer. */
static void test_json_every_byte(void **state)
{
	for (unsigned c = 0; c < 256; c++) {
		char in = (char)c, want[16];
		struct buf b;
		struct json j;

		if (c == '"' || c == '\\')
			snprintf(want, sizeof want, "\"\\%c\"", c);
		else if (c == '\n')
			snprintf(want, sizeof want, "\"\\n\"");
		else if (c == '\r')
			snprintf(want, sizeof want, "\"\\r\"");
		else if (c == '\t')
			snprintf(want, sizeof want, "\"\\t\"");
		else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f)
			snprintf(want, sizeof want, "\"\\u%04x\"", c);
		else if (c >= 0x80)
			snprintf(want, sizeof want, "\"\\ufffd\"");
		else
			snprintf(want, sizeof want, "\"%c\"", c);
		buf_init(&b, 64);
		json_init(&j, &b, 0);
		json_str_n(&j, &in, 1);
		if (buf_used(&b) != strlen(want) || memcmp(buf_start(&b), want, buf_used(&b)))
			fail_msg("byte 0x%02x: got \"%s\", want \"%s\"", c, SHOW(buf_start(&b), buf_used(&b)),
			         SHOW(want, strlen(want)));
		buf_free(&b);
	}
}

static size_t utf8_put(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Generated strings: valid UTF-8 comes out byte for byte; any bytes at all give valid,
 * HTML-safe JSON. */
static void test_json_generated_strings(void **state)
{
	static const unsigned char pick[] = {
	        0x00, 0x1f, '"',  '\\', '<',  '>',  '&',  0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
	        0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 'a',  ' ',  '\n',
	};
	uint32_t seed = 12345;

	for (int r = 0; r < 500; r++) {
		char in[128] = "", want[160];
		size_t n = 0, count = rnd(&seed) % 24;
		struct buf b;
		struct json j;

		for (size_t k = 0; k < count; k++) {
			uint32_t cp;

			switch (rnd(&seed) % 4) {
			case 0: cp = 'a' + rnd(&seed) % 26; break;
			case 1: cp = 0x80 + rnd(&seed) % (0x800 - 0x80); break;
			case 2:
				do
					cp = 0x800 + rnd(&seed) % (0x10000 - 0x800);
				while (cp >= 0xd800 && cp <= 0xdfff);
				break;
			default: cp = 0x10000 + rnd(&seed) % (0x110000 - 0x10000); break;
			}
			n += utf8_put(cp, in + n);
		}
		snprintf(want, sizeof want, "\"%.*s\"", (int)n, in);
		buf_init(&b, 256);
		json_init(&j, &b, 0);
		json_str_n(&j, in, n);
		if (buf_used(&b) != n + 2 || memcmp(buf_start(&b), want, n + 2))
			fail_msg("utf-8 string %d \"%s\" changed: \"%s\"", r, SHOW(in, n),
			         SHOW(buf_start(&b), buf_used(&b)));
		buf_free(&b);
	}
	for (int r = 0; r < 3000; r++) {
		char in[32];
		size_t n = rnd(&seed) % sizeof in;
		struct buf b;
		struct json j;

		for (size_t k = 0; k < n; k++)
			in[k] = (char)(rnd(&seed) % 3 ? pick[rnd(&seed) % sizeof pick] : rnd(&seed));
		buf_init(&b, 1024);
		json_init(&j, &b, 0);
		json_str_n(&j, in, n);
		const char *o = buf_start(&b);
		size_t ol = buf_used(&b);

		if (j.err || !json_valid(o, ol) || memchr(o, '<', ol) || memchr(o, '>', ol) ||
		    memchr(o, '&', ol))
			fail_msg("bytes %d \"%s\": output \"%s\" not valid or not HTML-safe", r, SHOW(in, n),
			         SHOW(o, ol));
		for (size_t k = 0; k < ol; k++)
			if ((unsigned char)o[k] < 0x20 || o[k] == 0x7f)
				fail_msg("bytes %d \"%s\": raw control byte in output", r, SHOW(in, n));
		buf_free(&b);
	}
}

static void test_json_double(void **state)
{
	static const struct {
		double v;
		const char *want;
	} rows[] = {
	        {0.0, "0"},
	        {-0.0, "-0"},
	        {1.0, "1"},
	        {-2.5, "-2.5"},
	        {0.5, "0.5"},
	        {0.1, "0.1"},
	        {123456789.0, "123456789"},
	        {1e300, "1e+300"},
	        {-1e-300, "-1e-300"},
	        {1.7976931348623157e308, "1.7976931348623157e+308"},
	        {5e-324, "4.94065645841247e-324"},
	        {NAN, "null"},
	        {-NAN, "null"},
	        {INFINITY, "null"},
	        {-INFINITY, "null"},
	};
	struct buf all;
	struct json ja;

	buf_init(&all, 4096);
	json_init(&ja, &all, 0);
	json_arr_begin(&ja);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct buf b;
		struct json j;

		buf_init(&b, 64);
		json_init(&j, &b, 0);
		json_double(&j, rows[i].v);
		if (j.err || buf_used(&b) != strlen(rows[i].want) ||
		    memcmp(buf_start(&b), rows[i].want, buf_used(&b)))
			fail_msg("row %zu (%g): got \"%.*s\", want \"%s\"", i, rows[i].v, (int)buf_used(&b),
			         buf_start(&b), rows[i].want);
		if (!json_valid(buf_start(&b), buf_used(&b)))
			fail_msg("row %zu (%g): \"%.*s\" is not valid JSON", i, rows[i].v, (int)buf_used(&b),
			         buf_start(&b));
		buf_free(&b);
		json_double(&ja, rows[i].v);
	}
	json_arr_end(&ja);
	/* In an array, null takes a value's place: commas stay right. */
	assert_int_equal(ja.err, 0);
	if (!json_valid(buf_start(&all), buf_used(&all)))
		fail_msg("array of doubles not valid: %s", SHOW(buf_start(&all), buf_used(&all)));
	assert_non_null(memmem(buf_start(&all), buf_used(&all), ",null,null,null,null]", 21));
	buf_free(&all);
}

/* Every max below the document's length sets err and leaves a prefix; the exact length
 * succeeds. Once err is set, nothing more is written. */
static void test_json_buffer_limit(void **state)
{
	size_t full = strlen(doc_compact);

	for (size_t max = 0; max <= full; max++) {
		struct buf b;
		struct json j;

		buf_init(&b, max);
		json_init(&j, &b, 0);
		write_doc(&j);
		if (max < full) {
			if (!j.err)
				fail_msg("max %zu (doc %zu): err not set", max, full);
			if (buf_used(&b) > max ||
			    (buf_used(&b) && memcmp(buf_start(&b), doc_compact, buf_used(&b))))
				fail_msg("max %zu: output \"%s\" is not a prefix of the document", max,
				         SHOW(buf_start(&b), buf_used(&b)));
			size_t used = buf_used(&b);

			json_str(&j, "");
			json_int(&j, 1);
			json_arr_end(&j);
			if (buf_used(&b) != used)
				fail_msg("max %zu: writes after err changed the buffer", max);
		} else {
			if (j.err)
				fail_msg("max %zu (exactly the document): err set", max);
			expect_buf(&b, doc_compact, "exact max");
		}
		buf_free(&b);
	}

	/* A long string into a small buffer. */
	struct buf b;
	struct json j;
	char big[200];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	buf_init(&b, 16);
	json_init(&j, &b, 0);
	json_obj_begin(&j);
	json_key(&j, "k");
	json_str(&j, big);
	assert_int_equal(j.err, 1);
	assert_true(buf_used(&b) <= 16);
	buf_free(&b);
}

/* Nesting: the writer can write what the validator accepts (JSON_MAX_DEPTH levels),
 * and sets err beyond that. */
static void test_json_writer_depth(void **state)
{
	static const int depths[] = {1, JSON_MAX_DEPTH - 1, JSON_MAX_DEPTH + 1, 40, 100, JSON_MAX_DEPTH};

	for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
		int d = depths[i], want_err = d > JSON_MAX_DEPTH;
		struct buf b;
		struct json j;

		buf_init(&b, 4096);
		json_init(&j, &b, 0);
		for (int k = 0; k < d; k++)
			json_arr_begin(&j);
		for (int k = 0; k < d; k++)
			json_arr_end(&j);
		int bad = !want_err &&
		          (buf_used(&b) != 2 * (size_t)d || !json_valid(buf_start(&b), buf_used(&b)));
		int err = j.err;

		buf_free(&b);
		if (err != want_err)
			fail_msg("depth %d: err %d, want %d (JSON_MAX_DEPTH %d)", d, err, want_err,
			         JSON_MAX_DEPTH);
		if (bad)
			fail_msg("depth %d: output wrong or not valid JSON", d);
	}
}

/*
 * json_valid
 */

static void check_valid(struct guard *g, const char *what, const char *doc, size_t n, int want)
{
	char *p = guard_place(g, doc, n);
	int r = json_valid(p, n);

	if (!!r != want)
		fail_msg("%s \"%s\": got %d, want %d", what, SHOW(doc, n), r, want);
}

static void test_json_valid(void **state)
{
	static const struct {
		const char *doc;
		size_t len; /* 0: strlen(doc) */
		int want;
	} rows[] = {
	        /* scalars */
	        {"0", 0, 1},
	        {"-0", 0, 1},
	        {"123", 0, 1},
	        {"-0.0e-0", 0, 1},
	        {"1.5E+10", 0, 1},
	        {"1e5", 0, 1},
	        {"0.000001", 0, 1},
	        {"true", 0, 1},
	        {"false", 0, 1},
	        {"null", 0, 1},
	        {"\"\"", 0, 1},
	        {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", 0, 1},
	        {"\"\\u0000 \\u00e9 \\uD83D\\uDE00 \\uABCD\"", 0, 1},
	        {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", 0, 1},
	        {"\"\x7f\"", 0, 1},
	        /* containers and whitespace */
	        {"{}", 0, 1},
	        {"[]", 0, 1},
	        {" \t\r\n[ 1 , 2 ]\r\n\t ", 0, 1},
	        {"{ \"a\" : [ 1, { \"b\" : null } ], \"c\" : \"d\" }", 0, 1},
	        {"[[],{},[[]],\"\",0]", 0, 1},
	        {"{\"a\":1,\"a\":2}", 0, 1},
	        /* numbers */
	        {"01", 0, 0},
	        {"-01", 0, 0},
	        {"00", 0, 0},
	        {"1.", 0, 0},
	        {"1.e5", 0, 0},
	        {".5", 0, 0},
	        {"1e", 0, 0},
	        {"1e+", 0, 0},
	        {"1E-", 0, 0},
	        {"-", 0, 0},
	        {"+1", 0, 0},
	        {"0x10", 0, 0},
	        {"1e5x", 0, 0},
	        {"NaN", 0, 0},
	        {"Infinity", 0, 0},
	        {"[01]", 0, 0},
	        /* literals */
	        {"tru", 0, 0},
	        {"truex", 0, 0},
	        {"True", 0, 0},
	        {"nul", 0, 0},
	        /* strings */
	        {"\"abc", 0, 0},
	        {"\"", 0, 0},
	        {"\"\\\"", 0, 0},
	        {"\"\\", 0, 0},
	        {"\"\\u12\"", 0, 0},
	        {"\"\\u12G4\"", 0, 0},
	        {"\"\\u123", 0, 0},
	        {"\"\\x41\"", 0, 0},
	        {"\"\\'\"", 0, 0},
	        {"'a'", 0, 0},
	        {"\"a\tb\"", 0, 0},
	        {"\"a\nb\"", 0, 0},
	        {"\"a\0b\"", 5, 0},
	        {"\"\\u00\0\0\"", 8, 0},
	        {"\"\xff\"", 0, 0},
	        {"\"\xc3\"", 0, 0},
	        {"\"\xc0\xaf\"", 0, 0},
	        {"\"\xed\xa0\x80\"", 0, 0},
	        {"\"\xf4\x90\x80\x80\"", 0, 0},
	        /* structure */
	        {"", 0, 0},
	        {" \t\n ", 0, 0},
	        {"[1,]", 0, 0},
	        {"[,1]", 0, 0},
	        {"[1 2]", 0, 0},
	        {"{\"a\":1,}", 0, 0},
	        {"{,}", 0, 0},
	        {"{\"a\"}", 0, 0},
	        {"{\"a\":}", 0, 0},
	        {"{\"a\" 1}", 0, 0},
	        {"{a:1}", 0, 0},
	        {"{1:1}", 0, 0},
	        {"[", 0, 0},
	        {"]", 0, 0},
	        {"[}", 0, 0},
	        {"{]", 0, 0},
	        {"{\"a\":1", 0, 0},
	        {"[1", 0, 0},
	        {"[1,", 0, 0},
	        {"{}}", 0, 0},
	        {"[] []", 0, 0},
	        {"1 2", 0, 0},
	        {"\f1", 0, 0},
	        {"1\v", 0, 0},
	        {"\xef\xbb\xbf{}", 0, 0},
	        {"[1]\0", 4, 0},
	};
	struct guard g;

	guard_init(&g, 4 * guard_page());
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char what[64];
		size_t n = rows[i].len ? rows[i].len : strlen(rows[i].doc);

		snprintf(what, sizeof what, "row %zu", i);
		check_valid(&g, what, rows[i].doc, n, rows[i].want);
		/* A valid document is also valid inside an array and with whitespace around. */
		if (rows[i].want) {
			char wrap[256];
			int wn = snprintf(wrap, sizeof wrap, "\n [%.*s , %.*s] \t", (int)n, rows[i].doc,
			                  (int)n, rows[i].doc);

			snprintf(what, sizeof what, "row %zu wrapped", i);
			check_valid(&g, what, wrap, (size_t)wn, 1);
		}
		/* Every proper prefix of a container is incomplete. */
		if (rows[i].want && (rows[i].doc[0] == '[' || rows[i].doc[0] == '{'))
			for (size_t k = 0; k < n; k++) {
				snprintf(what, sizeof what, "row %zu prefix %zu", i, k);
				check_valid(&g, what, rows[i].doc, k, 0);
			}
	}

	/* Depth: JSON_MAX_DEPTH levels are accepted, one more is not, and a very deep
	 * document is refused without recursing through all of it. */
	static const struct {
		int depth, obj, closed, want;
	} deep[] = {
	        {JSON_MAX_DEPTH, 0, 1, 1},
	        {JSON_MAX_DEPTH + 1, 0, 1, 0},
	        {JSON_MAX_DEPTH, 1, 1, 1},
	        {JSON_MAX_DEPTH + 1, 1, 1, 0},
	        {1000, 0, 1, 0},
	        {100000, 0, 0, 0},
	        {JSON_MAX_DEPTH - 1, 0, 0, 0},
	};
	char *doc = malloc(8 * 100000 + 16);

	assert_non_null(doc);
	guard_free(&g);
	guard_init(&g, 256 * guard_page());
	for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
		char what[64];
		size_t n = 0;

		for (int k = 0; k < deep[i].depth; k++) {
			if (deep[i].obj)
				memcpy(doc + n, "{\"a\":", 5), n += 5;
			else
				doc[n++] = '[';
		}
		doc[n++] = '1';
		if (deep[i].closed)
			for (int k = 0; k < deep[i].depth; k++)
				doc[n++] = deep[i].obj ? '}' : ']';
		snprintf(what, sizeof what, "depth %d %s%s", deep[i].depth,
		         deep[i].obj ? "objects" : "arrays", deep[i].closed ? "" : " unclosed");
		check_valid(&g, what, doc, n, deep[i].want);
	}
	free(doc);
	guard_free(&g);
}

/*
 * loop
 */

static struct loop *new_loop(void)
{
	char err[128] = "";
	struct loop *l = loop_new(err, sizeof err);

	if (!l)
		fail_msg("loop_new: %s", err);
	return l;
}

static void guard_cb(struct loop *l, struct loop_timer *t)
{
	*(int *)t->data = 1;
	loop_stop(l);
}

/* Runs l until a callback calls loop_stop; fails when that has not happened within ms,
 * so a broken loop cannot hang the suite. */
/* A non-blocking pipe with one byte waiting in it: its read end is ready. */
static void ready_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
}

static void run_bounded(struct loop *l, uint64_t ms)
{
	struct loop_timer guard;
	int fired = 0, rc;

	loop_timer_init(&guard, guard_cb, &fired);
	loop_timer_start(l, &guard, ms);
	rc = loop_run(l);
	loop_timer_stop(l, &guard);
	assert_int_equal(rc, 0);
	if (fired)
		fail_msg("loop_run did not stop within %llu ms", (unsigned long long)ms);
}

struct trace {
	int ids[64];
	uint64_t at[64]; /* loop_now() when it fired */
	int n;
	int stop_at; /* loop_stop when n reaches this */
};

struct ttimer {
	struct loop_timer t;
	int id;
	uint64_t ms;
	struct trace *tr;
};

static void trace_cb(struct loop *l, struct loop_timer *t)
{
	struct ttimer *tt = t->data;
	struct trace *tr = tt->tr;

	if (tr->n < 64) {
		tr->ids[tr->n] = tt->id;
		tr->at[tr->n] = loop_now(l);
	}
	if (++tr->n == tr->stop_at)
		loop_stop(l);
}

static void test_loop_timer_order(void **state)
{
	static const uint64_t ms[] = {30, 10, 20, 0, 15, 5, 25, 1};
	enum { N = sizeof ms / sizeof ms[0] };
	struct ttimer tt[N];
	struct trace tr = {.stop_at = N};
	struct loop *l = new_loop();
	uint64_t start = loop_now(l);

	for (int i = 0; i < N; i++) {
		tt[i] = (struct ttimer){.id = i, .ms = ms[i], .tr = &tr};
		loop_timer_init(&tt[i].t, trace_cb, &tt[i]);
		loop_timer_start(l, &tt[i].t, ms[i]);
		assert_true(loop_timer_armed(&tt[i].t));
	}
	run_bounded(l, 1000);
	assert_int_equal(tr.n, N);
	for (int i = 0; i < N; i++) {
		struct ttimer *t = &tt[tr.ids[i]];

		if (i > 0 && t->ms < tt[tr.ids[i - 1]].ms)
			fail_msg("fire %d: timer of %llu ms after timer of %llu ms", i,
			         (unsigned long long)t->ms, (unsigned long long)tt[tr.ids[i - 1]].ms);
		if (tr.at[i] < start + t->ms)
			fail_msg("timer of %llu ms fired after %llu ms", (unsigned long long)t->ms,
			         (unsigned long long)(tr.at[i] - start));
		assert_false(loop_timer_armed(&t->t));
	}
	loop_free(l);
}

/* Busy polling: events that come often keep the loop polling; once they stop, it polls
 * at most its budget more and then sleeps, also when timers shorter than the budget keep
 * waking it (a bandwidth toxic's). Measured in the loop thread's CPU time, which
 * a loaded machine can only make smaller: a loop that went on polling while idle would
 * spend the whole idle stretch on the CPU. */
struct busy_feed {
	int fd;
	int n;
};

static void *busy_writer(void *arg)
{
	struct busy_feed *f = arg;
	for (int i = 0; i < f->n; i++) {
		struct timespec gap = {0, 100 * 1000};
		nanosleep(&gap, NULL);
		if (write(f->fd, "x", 1) != 1)
			break;
	}
	return NULL;
}

struct busy_state {
	int got, want;
	uint64_t idle_from; /* thread CPU ns when the last byte was read */
	struct loop_timer stop;
	struct loop_timer tick; /* every 2 ms while idle: timers come, events do not */
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void busy_stop_cb(struct loop *l, struct loop_timer *t)
{
	struct busy_state *st = t->data;
	loop_timer_stop(l, &st->tick);
	loop_stop(l);
}

static void busy_tick_cb(struct loop *l, struct loop_timer *t)
{
	loop_timer_start(l, t, 2);
}

static void busy_read_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct busy_state *st = io->data;
	char b[64];
	ssize_t n;
	(void)events;
	while ((n = read(io->fd, b, sizeof b)) > 0)
		st->got += (int)n;
	if (st->got >= st->want && !loop_timer_armed(&st->stop)) {
		st->idle_from = thread_cpu_ns();
		loop_timer_start(l, &st->stop, 300); /* an idle stretch of 300 ms */
		loop_timer_start(l, &st->tick, 2);
	}
}

static void test_loop_busy_poll_sleeps_when_idle(void **state)
{
	enum { BUSY_US = 5000, BYTES = 200 };
	struct loop *l = new_loop();
	struct loop_io io;
	struct busy_state st = {.want = BYTES};
	int p[2];
	pthread_t th;
	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct busy_feed feed = {p[1], BYTES};
	loop_set_busy_poll(l, BUSY_US);
	loop_timer_init(&st.stop, busy_stop_cb, &st);
	loop_timer_init(&st.tick, busy_tick_cb, &st);
	assert_int_equal(loop_io_start(l, &io, p[0], LOOP_READ, busy_read_cb, &st), 0);
	assert_int_equal(pthread_create(&th, NULL, busy_writer, &feed), 0);
	run_bounded(l, 20000);
	pthread_join(th, NULL);
	assert_int_equal(st.got, BYTES);
	uint64_t idle_cpu = thread_cpu_ns() - st.idle_from;
	/* at most one budget of polling (5 ms) and the timer's wake-up: far below 300 ms */
	if (idle_cpu > 50u * 1000 * 1000)
		fail_msg("the loop used %llu ms of CPU in 300 ms without events",
		         (unsigned long long)(idle_cpu / 1000000));
	loop_io_close(l, &io);
	close(p[1]);
	loop_free(l);
}

static void test_loop_timer_stop(void **state)
{
	struct trace tr = {.stop_at = 3};
	struct ttimer a = {.id = 'a', .tr = &tr}, b = {.id = 'b', .tr = &tr}, c = {.id = 'c', .tr = &tr},
	              d = {.id = 'd', .tr = &tr}, e = {.id = 'e', .tr = &tr};
	struct loop *l = new_loop();

	loop_timer_init(&a.t, trace_cb, &a);
	loop_timer_init(&b.t, trace_cb, &b);
	loop_timer_init(&c.t, trace_cb, &c);
	loop_timer_init(&d.t, trace_cb, &d);
	loop_timer_init(&e.t, trace_cb, &e);
	loop_timer_start(l, &a.t, 5);
	loop_timer_start(l, &b.t, 10);
	loop_timer_start(l, &c.t, 15);
	loop_timer_start(l, &e.t, 500);
	loop_timer_start(l, &e.t, 1); /* re-arming moves it; it fires once */
	loop_timer_stop(l, &b.t);
	loop_timer_stop(l, &b.t); /* twice */
	loop_timer_stop(l, &d.t); /* never armed */
	assert_false(loop_timer_armed(&b.t));
	assert_false(loop_timer_armed(&d.t));
	run_bounded(l, 1000);
	if (tr.n != 3 || tr.ids[0] != 'e' || tr.ids[1] != 'a' || tr.ids[2] != 'c')
		fail_msg("fired %d timers: %c%c%c, want e a c", tr.n, tr.ids[0], tr.n > 1 ? tr.ids[1] : '-',
		         tr.n > 2 ? tr.ids[2] : '-');
	loop_free(l);
}

struct rearm {
	struct loop_timer t;
	int n;
	int armed_in_cb; /* the timer claimed to be armed inside its own callback */
	int not_rearmed; /* loop_timer_start from the callback did not arm it */
	uint64_t at[8];
};

static void rearm_cb(struct loop *l, struct loop_timer *t)
{
	struct rearm *r = t->data;

	r->armed_in_cb |= loop_timer_armed(t);
	r->at[r->n++] = loop_now(l);
	if (r->n < 5) {
		loop_timer_start(l, t, 2);
		r->not_rearmed |= !loop_timer_armed(t);
	} else {
		loop_timer_stop(l, t); /* stopping itself once fired is harmless */
		loop_stop(l);
	}
}

static void test_loop_timer_rearm(void **state)
{
	struct rearm r = {.n = 0};
	struct loop *l = new_loop();

	loop_timer_init(&r.t, rearm_cb, &r);
	loop_timer_start(l, &r.t, 1);
	run_bounded(l, 1000);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.armed_in_cb, 0);
	assert_int_equal(r.not_rearmed, 0);
	for (int i = 1; i < 5; i++)
		if (r.at[i] < r.at[i - 1] + 2)
			fail_msg("fire %d came %llu ms after the previous, re-armed for 2 ms", i,
			         (unsigned long long)(r.at[i] - r.at[i - 1]));
	loop_free(l);
}

struct killer {
	struct loop_timer t[5]; /* 0..2 at 5 ms, 3 at 10 ms, 4 at 20 ms */
	int fired[5];
};

static void killer_cb(struct loop *l, struct loop_timer *t)
{
	struct killer *k = t->data;
	int i = (int)(t - k->t);

	k->fired[i]++;
	if (i < 3) {
		/* The first of the three stops the other two (due in this same batch) and
		 * the next one. */
		for (int j = 0; j < 4; j++)
			if (j != i)
				loop_timer_stop(l, &k->t[j]);
	} else if (i == 4) {
		loop_stop(l);
	}
}

static void test_loop_timer_stop_other_in_cb(void **state)
{
	static const uint64_t ms[5] = {5, 5, 5, 10, 20};
	struct killer k = {.fired = {0}};
	struct loop *l = new_loop();

	for (int i = 0; i < 5; i++) {
		loop_timer_init(&k.t[i], killer_cb, &k);
		loop_timer_start(l, &k.t[i], ms[i]);
	}
	run_bounded(l, 1000);
	if (k.fired[0] + k.fired[1] + k.fired[2] != 1 || k.fired[3] || k.fired[4] != 1)
		fail_msg("fired %d %d %d %d %d, want one of the first three, then only the last", k.fired[0],
		         k.fired[1], k.fired[2], k.fired[3], k.fired[4]);
	loop_free(l);
}

#define NSTRESS 300

struct stress {
	struct loop_timer t[NSTRESS];
	int fired[NSTRESS], cancelled[NSTRESS];
	int done; /* fired + cancelled */
	int late_cancel, early, out_of_order;
	uint64_t last;
	uint32_t seed;
};

static void stress_cb(struct loop *l, struct loop_timer *t)
{
	struct stress *s = t->data;
	int i = (int)(t - s->t);
	int j = (int)(rnd(&s->seed) % NSTRESS);

	s->fired[i]++;
	s->late_cancel += s->cancelled[i];
	s->early += t->when > loop_now_us(l);
	s->out_of_order += t->when < s->last;
	s->last = t->when;
	s->done++;
	if (j != i && loop_timer_armed(&s->t[j])) {
		loop_timer_stop(l, &s->t[j]);
		s->cancelled[j] = 1;
		s->done++;
	}
	if (s->done == NSTRESS)
		loop_stop(l);
}

/* Many timers, each stopping a random other one from its callback: the heap stays
 * ordered and a stopped timer never fires. */
static void test_loop_timer_heap(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct loop *l = new_loop();
	uint32_t seed = 99;

	assert_non_null(s);
	s->seed = 7;
	for (int i = 0; i < NSTRESS; i++) {
		loop_timer_init(&s->t[i], stress_cb, s);
		loop_timer_start(l, &s->t[i], rnd(&seed) % 40);
	}
	/* Stop a few before the loop runs, from the middle of the heap. */
	for (int i = 0; i < NSTRESS; i += 37) {
		loop_timer_stop(l, &s->t[i]);
		s->cancelled[i] = 1;
		s->done++;
	}
	run_bounded(l, 1000);
	assert_int_equal(s->done, NSTRESS);
	assert_int_equal(s->late_cancel, 0);
	assert_int_equal(s->early, 0);
	assert_int_equal(s->out_of_order, 0);
	for (int i = 0; i < NSTRESS; i++) {
		if (s->fired[i] + s->cancelled[i] != 1)
			fail_msg("timer %d: fired %d, cancelled %d", i, s->fired[i], s->cancelled[i]);
		assert_false(loop_timer_armed(&s->t[i]));
	}
	loop_free(l);
	free(s);
}

struct dctx {
	struct loop_io io[2];
	int p[2][2];
	struct loop_timer t;
	char log[16];
	int nlog;
};

static void dlog(struct dctx *d, char c)
{
	if (d->nlog < (int)sizeof d->log - 1)
		d->log[d->nlog++] = c;
}

static void defer_nested(struct loop *l, void *data)
{
	struct dctx *d = data;

	dlog(d, 'E');
	loop_stop(l);
}

static void defer_fn(struct loop *l, void *data)
{
	struct dctx *d = data;

	dlog(d, 'D');
	if (loop_defer(l, defer_nested, d) != 0)
		dlog(d, '!');
}

static void defer_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct dctx *d = io->data;
	char c;

	dlog(d, io == &d->io[0] ? 'a' : 'b');
	if (read(io->fd, &c, 1) != 1)
		dlog(d, '?');
	if (d->nlog == 1 && loop_defer(l, defer_fn, d) != 0)
		dlog(d, '!');
}

static void defer_timer_cb(struct loop *l, struct loop_timer *t)
{
	dlog(t->data, 'T');
}

/* A deferred call runs after every io and timer callback of its iteration; one it
 * defers runs too. */
static void test_loop_defer(void **state)
{
	struct dctx d = {.nlog = 0};
	struct loop *l = new_loop();

	for (int i = 0; i < 2; i++) {
		ready_pipe(d.p[i]);
		assert_int_equal(loop_io_start(l, &d.io[i], d.p[i][0], LOOP_READ, defer_io_cb, &d), 0);
	}
	loop_timer_init(&d.t, defer_timer_cb, &d);
	loop_timer_start(l, &d.t, 0);
	run_bounded(l, 1000);
	if (strcmp(d.log, "abTDE") && strcmp(d.log, "baTDE"))
		fail_msg("order \"%s\", want \"abTDE\" or \"baTDE\"", d.log);
	for (int i = 0; i < 2; i++) {
		loop_io_stop(l, &d.io[i]);
		close(d.p[i][0]);
		close(d.p[i][1]);
	}
	loop_free(l);
}

struct wctx {
	struct loop *l;
	pthread_t loop_thread;
	int woke;
	int other_thread; /* the wake callback ran outside the loop thread */
};

static void *waker(void *p)
{
	struct wctx *w = p;

	usleep(10000);
	loop_wake(w->l);
	return NULL;
}

static void wake_fn(struct loop *l, void *data)
{
	struct wctx *w = data;

	w->woke++;
	w->other_thread |= !pthread_equal(pthread_self(), w->loop_thread);
	loop_stop(l);
}

static void test_loop_wake(void **state)
{
	struct wctx w = {.woke = 0};
	pthread_t th;

	w.l = new_loop();
	w.loop_thread = pthread_self();
	assert_int_equal(loop_wake_init(w.l, wake_fn, &w), 0);
	assert_int_equal(pthread_create(&th, NULL, waker, &w), 0);
	run_bounded(w.l, 1000);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.woke, 1);
	assert_int_equal(w.other_thread, 0);
	loop_free(w.l);
}

struct rctx {
	struct loop_io io;
	int p[2];
	struct loop_timer t;
	int written, calls, early;
	unsigned events;
	ssize_t n;
	char got[8];
};

static void rctx_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct rctx *r = t->data;

	r->written = write(r->p[1], "x", 1) == 1;
}

static void rctx_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct rctx *r = io->data;

	r->calls++;
	r->early += !r->written;
	r->events = events;
	r->n = read(io->fd, r->got, sizeof r->got);
	loop_io_stop(l, io);
	loop_stop(l);
}

/* The read callback fires when the pipe becomes readable, not before. */
static void test_loop_io_readable(void **state)
{
	struct rctx r = {.calls = 0};
	struct loop *l = new_loop();

	assert_int_equal(pipe2(r.p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(loop_io_start(l, &r.io, r.p[0], LOOP_READ, rctx_io_cb, &r), 0);
	assert_int_equal(r.io.fd, r.p[0]);
	loop_timer_init(&r.t, rctx_timer_cb, &r);
	loop_timer_start(l, &r.t, 5);
	run_bounded(l, 1000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.early, 0);
	assert_true(r.events & LOOP_READ);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.got[0], 'x');
	assert_int_equal(r.io.fd, -1);
	loop_io_stop(l, &r.io); /* already stopped: harmless */
	close(r.p[0]);
	close(r.p[1]);
	loop_free(l);
}

struct ectx {
	struct loop_io io;
	int calls;
	unsigned events;
	ssize_t n;
};

static void ectx_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ectx *e = io->data;
	char c;

	e->calls++;
	e->events = events;
	e->n = (events & LOOP_READ) ? read(io->fd, &c, 1) : -2;
	loop_io_stop(l, io);
	loop_stop(l);
}

/* Writable, a mask changed with loop_io_set, and end of file. */
static void test_loop_io_events(void **state)
{
	struct loop *l = new_loop();
	struct ectx e;
	int p[2], s[2];

	/* A pipe's write end is writable at once. */
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	e = (struct ectx){.calls = 0};
	assert_int_equal(loop_io_start(l, &e.io, p[1], LOOP_WRITE, ectx_cb, &e), 0);
	run_bounded(l, 1000);
	assert_int_equal(e.calls, 1);
	assert_true(e.events & LOOP_WRITE);
	assert_false(e.events & LOOP_ERROR);

	/* A socket with nothing to read: READ never fires, switching to WRITE does. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
	e = (struct ectx){.calls = 0};
	assert_int_equal(loop_io_start(l, &e.io, s[0], LOOP_READ, ectx_cb, &e), 0);
	assert_int_equal(loop_io_set(l, &e.io, LOOP_READ), 0); /* unchanged */
	assert_int_equal(loop_io_set(l, &e.io, LOOP_WRITE), 0);
	assert_int_equal(e.io.mask, LOOP_WRITE);
	run_bounded(l, 1000);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.events & (LOOP_READ | LOOP_WRITE), LOOP_WRITE);
	assert_int_equal(loop_io_set(l, &e.io, LOOP_READ), 0); /* stopped: no-op */
	assert_int_equal(e.io.fd, -1);

	/* The writer closes: the reader sees READ and then end of file. */
	close(p[1]);
	e = (struct ectx){.calls = 0};
	assert_int_equal(loop_io_start(l, &e.io, p[0], LOOP_READ, ectx_cb, &e), 0);
	run_bounded(l, 1000);
	assert_int_equal(e.calls, 1);
	assert_true(e.events & LOOP_READ);
	assert_int_equal(e.n, 0);
	close(p[0]);

	/* A peer that wrote and shut down writing: READ with RDHUP (what is queued is the
	 * last); one that only wrote: READ without it. */
	int q[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, q), 0);
	assert_int_equal(write(q[1], "x", 1), 1);
	e = (struct ectx){.calls = 0};
	assert_int_equal(loop_io_start(l, &e.io, q[0], LOOP_READ, ectx_cb, &e), 0);
	run_bounded(l, 1000);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.events & (LOOP_READ | LOOP_RDHUP), LOOP_READ);
	assert_int_equal(write(q[1], "y", 1), 1);
	assert_int_equal(shutdown(q[1], SHUT_WR), 0);
	e = (struct ectx){.calls = 0};
	assert_int_equal(loop_io_start(l, &e.io, q[0], LOOP_READ, ectx_cb, &e), 0);
	run_bounded(l, 1000);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.events & (LOOP_READ | LOOP_RDHUP), LOOP_READ | LOOP_RDHUP);
	close(q[0]);
	close(q[1]);

	/* Watching a closed descriptor fails and leaves the io unwatched. */
	int bad = s[1];

	close(s[0]);
	close(s[1]);
	e = (struct ectx){.calls = 0};
	assert_int_equal(loop_io_start(l, &e.io, bad, LOOP_READ, ectx_cb, &e), -1);
	assert_int_equal(e.io.fd, -1);
	loop_free(l);
}

struct pctx {
	struct loop_io io[2];
	int p[2][2];
	int calls[2];
};

static void pctx_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct pctx *c = io->data;
	int i = io == &c->io[0] ? 0 : 1;
	char ch;

	c->calls[i]++;
	if (read(io->fd, &ch, 1) != 1)
		c->calls[i] += 100;
	loop_io_stop(l, &c->io[1 - i]); /* its event is pending in this same batch */
	loop_io_stop(l, io);
	loop_stop(l);
}

/* Two pipes readable in one batch; the first callback stops the other's io, so the
 * other callback must not run. */
static void test_loop_io_stop_drops_pending(void **state)
{
	for (int round = 0; round < 20; round++) {
		struct pctx c = {.calls = {0, 0}};
		struct loop *l = new_loop();

		for (int i = 0; i < 2; i++) {
			ready_pipe(c.p[i]);
		}
		/* Vary the registration order, so either io can be first in the batch. */
		for (int k = 0; k < 2; k++) {
			int i = (k + round) % 2;

			assert_int_equal(loop_io_start(l, &c.io[i], c.p[i][0], LOOP_READ, pctx_cb, &c), 0);
		}
		run_bounded(l, 1000);
		if (c.calls[0] + c.calls[1] != 1)
			fail_msg("round %d: callbacks ran %d and %d times, want 1 in all", round, c.calls[0],
			         c.calls[1]);
		for (int i = 0; i < 2; i++) {
			close(c.p[i][0]);
			close(c.p[i][1]);
		}
		loop_free(l);
	}
}

/* An io stopped and started again on a fresh descriptor within one batch (FTP's data
 * connection does this) must not get the old descriptor's pending event. */
struct rctx2 {
	struct loop_io a, b;
	int pa[2], pb[2], fresh[2];
	int a_calls, b_calls, b_on_fresh;
};

static void rctx2_b_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct rctx2 *r = io->data;

	r->b_calls++;
	r->b_on_fresh += io->fd == r->fresh[0];
}

static void rctx2_a_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct rctx2 *r = io->data;

	r->a_calls++;
	/* b's old pipe is readable in this batch; b moves to a pipe with nothing in it. */
	loop_io_stop(l, &r->b);
	assert_int_equal(loop_io_start(l, &r->b, r->fresh[0], LOOP_READ, rctx2_b_cb, r), 0);
	loop_io_stop(l, io);
	loop_stop(l);
}

static void test_loop_io_restart_in_batch(void **state)
{
	for (int round = 0; round < 10; round++) {
		struct rctx2 r = {.a_calls = 0};
		struct loop *l = new_loop();

		ready_pipe(r.pa);
		ready_pipe(r.pb);
		assert_int_equal(pipe2(r.fresh, O_NONBLOCK | O_CLOEXEC), 0);
		/* a first, so a's callback runs while b's event waits in the batch. */
		assert_int_equal(loop_io_start(l, &r.a, r.pa[0], LOOP_READ, rctx2_a_cb, &r), 0);
		assert_int_equal(loop_io_start(l, &r.b, r.pb[0], LOOP_READ, rctx2_b_cb, &r), 0);
		run_bounded(l, 1000);
		if (r.a_calls == 1 && r.b_calls)
			fail_msg("round %d: b got %d stale event(s) for its old descriptor (%d on the new "
			         "one, which has no data)",
			         round, r.b_calls, r.b_on_fresh);
		loop_io_stop(l, &r.b);
		for (int i = 0; i < 2; i++) {
			close(r.pa[i]);
			close(r.pb[i]);
			close(r.fresh[i]);
		}
		loop_free(l);
	}
}

struct postctx {
	struct loop *l;
	int seen[200];
	int n;
	pthread_t loop_thread;
	int wrong_thread;
};

static void post_fn(struct loop *l, void *data)
{
	struct postctx *c = *(struct postctx **)data;
	int v = ((int *)data)[2];

	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->wrong_thread++;
	if (c->n < 200)
		c->seen[c->n] = v;
	if (++c->n == 200)
		loop_stop(l);
	free(data);
}

static void *poster(void *arg)
{
	struct postctx *c = arg;

	for (int i = 0; i < 200; i++) {
		/* {ctx pointer, value}: the ctx in the first 8 bytes, the value after. */
		int *m = malloc(16);

		*(struct postctx **)m = c;
		m[2] = i;
		if (loop_post(c->l, post_fn, m) < 0)
			free(m);
	}
	return NULL;
}

/* loop_post from another thread: every call runs once, in the loop's thread, in order. */
static void test_loop_post(void **state)
{
	struct postctx c = {.n = 0};
	pthread_t th;

	c.l = new_loop();
	c.loop_thread = pthread_self();
	assert_int_equal(pthread_create(&th, NULL, poster, &c), 0);
	run_bounded(c.l, 2000);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.n, 200);
	assert_int_equal(c.wrong_thread, 0);
	for (int i = 0; i < 200; i++)
		if (c.seen[i] != i)
			fail_msg("call %d ran as number %d: out of order", c.seen[i], i);
	loop_free(c.l);
}

struct burst {
	int ran;       /* posted calls run so far */
	int ran_at_io; /* ... when the descriptor's callback ran; -1 before */
	struct loop_io io;
};

static void burst_post(struct loop *l, void *data)
{
	struct burst *b = data;
	b->ran++;
	if (b->ran == 2000)
		loop_stop(l);
}

static void burst_io(struct loop *l, struct loop_io *io, unsigned events)
{
	struct burst *b = io->data;
	char c;
	if (read(io->fd, &c, 1) == 1 && b->ran_at_io < 0)
		b->ran_at_io = b->ran;
	(void)l;
}

/* 2,000 calls posted at once (a helper thread answering 5,000 lookups) do not hold a
 * readable descriptor back: at most a batch of them runs before its callback. */
static void test_loop_post_burst_lets_descriptors_in(void **state)
{
	struct burst b = {.ran = 0, .ran_at_io = -1};
	int p[2];
	struct loop *l = new_loop();

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(loop_io_start(l, &b.io, p[0], LOOP_READ, burst_io, &b), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(loop_post(l, burst_post, &b), 0);
	assert_int_equal(write(p[1], "x", 1), 1); /* ready after the wakeup */
	run_bounded(l, 2000);
	assert_int_equal(b.ran, 2000);
	if (b.ran_at_io < 0 || b.ran_at_io > 256)
		fail_msg("the descriptor waited for %d posted calls (at most 256 per turn)", b.ran_at_io);
	loop_io_stop(l, &b.io);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}

static void pctx_close_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct pctx *c = io->data;
	int i = io == &c->io[0] ? 0 : 1;

	c->calls[i]++;
	loop_io_close(l, &c->io[1 - i]); /* closes its fd; its pending event is dropped */
	loop_io_stop(l, io);
	loop_stop(l);
}

/* loop_io_close: the same, and the other descriptor is closed. */
static void test_loop_io_close(void **state)
{
	for (int round = 0; round < 10; round++) {
		struct pctx c = {.calls = {0, 0}};
		struct loop *l = new_loop();
		int closed;

		for (int i = 0; i < 2; i++) {
			ready_pipe(c.p[i]);
		}
		for (int k = 0; k < 2; k++) {
			int i = (k + round) % 2;

			assert_int_equal(loop_io_start(l, &c.io[i], c.p[i][0], LOOP_READ, pctx_close_cb, &c),
			                 0);
		}
		run_bounded(l, 1000);
		if (c.calls[0] + c.calls[1] != 1)
			fail_msg("round %d: callbacks ran %d and %d times, want 1 in all", round, c.calls[0],
			         c.calls[1]);
		closed = c.calls[0] ? 1 : 0;
		assert_int_equal(c.io[closed].fd, -1);
		if (fcntl(c.p[closed][0], F_GETFD) != -1 || errno != EBADF)
			fail_msg("round %d: loop_io_close left fd %d open", round, c.p[closed][0]);
		close(c.p[1 - closed][0]);
		close(c.p[0][1]);
		close(c.p[1][1]);
		loop_io_close(l, &c.io[closed]); /* not watched: harmless */
		loop_free(l);
	}
}

/* loop_io_move hands a watched descriptor to another loop_io: the new one gets its
 * events, the old one none; with the same mask no epoll_ctl is needed (the sniffer's
 * hand-over to HTTP), with another mask the new mask holds. */
struct mvctx {
	struct loop_io a, b, c;
	int s[2];
	int a_calls, b_calls, c_calls, c_write;
};

static void mv_a_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	((struct mvctx *)io->data)->a_calls++;
}

static void mv_c_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct mvctx *m = io->data;

	m->c_calls++;
	m->c_write += (events & LOOP_WRITE) != 0;
	loop_io_stop(l, io);
	loop_stop(l);
}

static void mv_b_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct mvctx *m = io->data;
	char ch;

	m->b_calls++;
	assert_int_equal(read(io->fd, &ch, 1), 1);
	/* Now for output only: the socket is writable, so c is called next turn. */
	assert_int_equal(loop_io_move(l, io, &m->c, LOOP_WRITE, mv_c_cb, m), 0);
	assert_int_equal(io->fd, -1);
}

static void test_loop_io_move(void **state)
{
	struct mvctx m = {.a_calls = 0};
	struct loop *l = new_loop();

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, m.s), 0);
	assert_int_equal(write(m.s[1], "x", 1), 1);
	assert_int_equal(loop_io_start(l, &m.a, m.s[0], LOOP_READ, mv_a_cb, &m), 0);
	assert_int_equal(loop_io_move(l, &m.a, &m.b, LOOP_READ, mv_b_cb, &m), 0);
	assert_int_equal(m.a.fd, -1);
	assert_int_equal(m.b.fd, m.s[0]);
	run_bounded(l, 1000);
	assert_int_equal(m.a_calls, 0);
	assert_int_equal(m.b_calls, 1);
	assert_int_equal(m.c_calls, 1);
	assert_int_equal(m.c_write, 1);
	/* Moving what is not watched fails and changes nothing. */
	assert_int_equal(loop_io_move(l, &m.a, &m.b, LOOP_READ, mv_b_cb, &m), -1);
	assert_int_equal(errno, EBADF);
	close(m.s[0]);
	close(m.s[1]);
	loop_free(l);
}

/* A move inside a batch drops the descriptor's event still waiting in it (as a stop
 * does): the new watcher is called once, after the batch, and the old one never. */
struct mvbatch {
	struct loop_io first, second, moved;
	int p1[2], p2[2];
	int first_calls, second_calls, moved_calls, moved_in_batch, batch_over;
};

static void mvb_second_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	((struct mvbatch *)io->data)->second_calls++;
}

static void mvb_moved_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct mvbatch *m = io->data;

	m->moved_calls++;
	m->moved_in_batch += !m->batch_over;
	loop_io_stop(l, io);
	loop_stop(l);
}

static void mvb_batch_over(struct loop *l, void *data)
{
	((struct mvbatch *)data)->batch_over = 1;
}

static void mvb_first_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct mvbatch *m = io->data;

	m->first_calls++;
	loop_io_stop(l, io);
	assert_int_equal(loop_io_move(l, &m->second, &m->moved, LOOP_READ, mvb_moved_cb, m), 0);
	assert_int_equal(loop_defer(l, mvb_batch_over, m), 0);
}

static void test_loop_io_move_in_batch(void **state)
{
	for (int round = 0; round < 10; round++) {
		struct mvbatch m = {.first_calls = 0};
		struct loop *l = new_loop();

		ready_pipe(m.p1);
		ready_pipe(m.p2);
		/* Both ready when added: epoll reports them in this order, in one batch. */
		assert_int_equal(loop_io_start(l, &m.first, m.p1[0], LOOP_READ, mvb_first_cb, &m), 0);
		assert_int_equal(loop_io_start(l, &m.second, m.p2[0], LOOP_READ, mvb_second_cb, &m), 0);
		run_bounded(l, 1000);
		assert_int_equal(m.first_calls, 1);
		assert_int_equal(m.second_calls, 0);
		assert_int_equal(m.moved_calls, 1);
		if (m.moved_in_batch)
			fail_msg("round %d: the moved watcher got the event of the batch it was moved in",
			         round);
		for (int i = 0; i < 2; i++) {
			close(m.p1[i]);
			close(m.p2[i]);
		}
		loop_free(l);
	}
}

/* loop_io_reported: true in the callback of the event epoll reported for the
 * descriptor (also for the watcher it was just moved to), false for another descriptor
 * and outside a batch (a timer). */
struct repctx {
	struct loop_io a, b, moved;
	struct loop_timer t;
	int pa[2], pb[2];
	int in_cb, other_in_cb, moved_in_cb, in_timer, calls;
};

static void rep_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct repctx *r = io->data;

	if (r->calls++)
		return;
	r->in_cb = loop_io_reported(l, io);
	r->other_in_cb = loop_io_reported(l, io == &r->a ? &r->b : &r->a);
	assert_int_equal(loop_io_move(l, io, &r->moved, LOOP_READ, rep_cb, r), 0);
	r->moved_in_cb = loop_io_reported(l, &r->moved);
	loop_io_stop(l, &r->moved);
	loop_timer_start(l, &r->t, 0);
}

static void rep_timer(struct loop *l, struct loop_timer *t)
{
	struct repctx *r = t->data;

	r->in_timer = loop_io_reported(l, r->a.fd >= 0 ? &r->a : &r->b);
	loop_stop(l);
}

static void test_loop_io_reported(void **state)
{
	struct repctx r = {.calls = 0};
	struct loop *l = new_loop();

	ready_pipe(r.pa);
	ready_pipe(r.pb);
	assert_int_equal(loop_io_start(l, &r.a, r.pa[0], LOOP_READ, rep_cb, &r), 0);
	assert_int_equal(loop_io_start(l, &r.b, r.pb[0], LOOP_READ, rep_cb, &r), 0);
	loop_timer_init(&r.t, rep_timer, &r);
	run_bounded(l, 1000);
	assert_int_equal(r.in_cb, 1);
	assert_int_equal(r.other_in_cb, 0);
	assert_int_equal(r.moved_in_cb, 1);
	assert_int_equal(r.in_timer, 0);
	loop_io_stop(l, &r.a);
	loop_io_stop(l, &r.b);
	for (int i = 0; i < 2; i++) {
		close(r.pa[i]);
		close(r.pb[i]);
	}
	loop_free(l);
}

/* loop_batch_alone: 1 in the callback of the one event of a batch, 0 when another
 * descriptor was ready too, and outside a dispatch. */
struct alonectx {
	struct loop_io io[2];
	int seen[2], calls;
};

static void alone_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct alonectx *a = io->data;
	char b;
	assert_int_equal(read(io->fd, &b, 1), 1);
	a->seen[a->calls++] = loop_batch_alone(l);
	loop_io_stop(l, io);
	if (a->calls == 2 || (a->calls == 1 && a->seen[0]))
		loop_stop(l);
}

static void test_loop_batch_alone(void **state)
{
	for (int both = 0; both < 2; both++) {
		struct alonectx a = {.calls = 0};
		int p[2][2];
		struct loop *l = new_loop();
		assert_int_equal(loop_batch_alone(l), 0);
		for (int i = 0; i < 2; i++) {
			if (i == 0 || both)
				ready_pipe(p[i]);
			else
				assert_int_equal(pipe2(p[i], O_NONBLOCK | O_CLOEXEC), 0);
			assert_int_equal(loop_io_start(l, &a.io[i], p[i][0], LOOP_READ, alone_cb, &a), 0);
		}
		run_bounded(l, 1000);
		if (both) {
			assert_int_equal(a.calls, 2);
			assert_int_equal(a.seen[0], 0);
			assert_int_equal(a.seen[1], 0);
		} else {
			assert_int_equal(a.calls, 1);
			assert_int_equal(a.seen[0], 1);
		}
		for (int i = 0; i < 2; i++) {
			loop_io_stop(l, &a.io[i]);
			close(p[i][0]);
			close(p[i][1]);
		}
		loop_free(l);
	}
}

/* loop_touch: a timer armed after a long stretch of work (here before the first turn,
 * 150 ms after loop_new) counts from the touch, not from the stale loop time; without
 * it the 100 ms timer is already overdue when the loop starts (the scan's connect
 * deadlines were cut short so: hostile pass). A lower bound only: safe under load. */
static void touch_fired(struct loop *l, struct loop_timer *t)
{
	*(uint64_t *)t->data = loop_clock_us();
	loop_stop(l);
}

static void test_loop_touch(void **state)
{
	struct loop *l = new_loop();
	struct loop_timer t;
	uint64_t fired = 0;

	usleep(150 * 1000);
	loop_touch(l);
	uint64_t armed = loop_clock_us();
	loop_timer_init(&t, touch_fired, &fired);
	loop_timer_start(l, &t, 100);
	assert_int_equal(loop_run(l), 0);
	assert_true(fired >= armed + 99 * 1000);
	loop_free(l);
}

/*
 * net
 */

static void test_net_parse_addr(void **state)
{
	static const struct {
		const char *host;
		int want, family;
		const char *str;
	} rows[] = {
	        {"127.0.0.1", 0, AF_INET, "127.0.0.1"},
	        {"::1", 0, AF_INET6, "::1"},
	        {"[::1]", 0, AF_INET6, "::1"},
	        {"localhost", 0, AF_INET, "127.0.0.1"},
	        {"0.0.0.0", 0, AF_INET, "0.0.0.0"},
	        {"::", 0, AF_INET6, "::"},
	        {"[::]", 0, AF_INET6, "::"},
	        {"10.1.2.3", 0, AF_INET, "10.1.2.3"},
	        {"::ffff:127.0.0.1", 0, AF_INET6, "::ffff:127.0.0.1"},
	        {"fe80::1", 0, AF_INET6, "fe80::1"},
	        {"[2001:db8::8]", 0, AF_INET6, "2001:db8::8"},
	        {"example.com", -1, 0, NULL},
	        {"localhost.", -1, 0, NULL},
	        {"", -1, 0, NULL},
	        {"[]", -1, 0, NULL},
	        {"[", -1, 0, NULL},
	        {"[::1", -1, 0, NULL},
	        {"::1]", -1, 0, NULL},
	        {"1.2.3", -1, 0, NULL},
	        {"256.1.1.1", -1, 0, NULL},
	        {"127.0.0.1:80", -1, 0, NULL},
	        {"[::1]:80", -1, 0, NULL},
	        {" 127.0.0.1", -1, 0, NULL},
	        {"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]", -1, 0, NULL},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char str[64];
		int r = net_parse_addr(rows[i].host, 8080, &ss, &len);

		if (r != rows[i].want)
			fail_msg("row %zu \"%s\": got %d, want %d", i, rows[i].host, r, rows[i].want);
		if (r)
			continue;
		net_addr_str((struct sockaddr *)&ss, str, sizeof str);
		if (ss.ss_family != rows[i].family || strcmp(str, rows[i].str) ||
		    net_addr_port((struct sockaddr *)&ss) != 8080 ||
		    len != (rows[i].family == AF_INET ? sizeof(struct sockaddr_in)
		                                      : sizeof(struct sockaddr_in6)))
			fail_msg("row %zu \"%s\": family %d \"%s\" port %u len %u", i, rows[i].host,
			         ss.ss_family, str, net_addr_port((struct sockaddr *)&ss), (unsigned)len);
	}
}

static void test_net_loopback_wildcard(void **state)
{
	static const struct {
		const char *host;
		int loopback, wildcard;
	} rows[] = {
	        {"127.0.0.1", 1, 0},        {"127.0.0.5", 1, 0},
	        {"127.255.255.255", 1, 0},  {"::1", 1, 0},
	        {"::ffff:127.0.0.1", 1, 0}, {"::ffff:127.9.8.7", 1, 0},
	        {"10.0.0.1", 0, 0},         {"126.255.255.255", 0, 0},
	        {"128.0.0.1", 0, 0},        {"::", 0, 1},
	        {"0.0.0.0", 0, 1},          {"::ffff:10.0.0.1", 0, 0},
	        {"::ffff:0.0.0.0", 0, 0},   {"::2", 0, 0},
	        {"fe80::1", 0, 0},          {"::127.0.0.1", 0, 0},
	        {"0.0.0.1", 0, 0},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (net_parse_addr(rows[i].host, 80, &ss, &len))
			fail_msg("row %zu \"%s\": does not parse", i, rows[i].host);
		int lo = net_is_loopback((struct sockaddr *)&ss);
		int wc = net_is_wildcard((struct sockaddr *)&ss);

		if (!!lo != rows[i].loopback || !!wc != rows[i].wildcard)
			fail_msg("row %zu \"%s\": loopback %d wildcard %d, want %d %d", i, rows[i].host, lo,
			         wc, rows[i].loopback, rows[i].wildcard);
	}
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	assert_false(net_is_loopback((struct sockaddr *)&un));
	assert_false(net_is_wildcard((struct sockaddr *)&un));
}

static void check_ip_literal(struct guard *g, size_t row, const char *s, size_t n, int want)
{
	char *p = guard_place(g, s, n);
	int r = net_is_ip_literal(p, n);

	if (!!r != want)
		fail_msg("row %zu \"%s\" (n %zu): got %d, want %d", row, SHOW(s, n), n, r, want);
}

static void test_net_is_ip_literal(void **state)
{
	static const struct {
		const char *s;
		size_t n; /* 0: strlen(s) */
		int want;
	} rows[] = {
	        {"127.0.0.1", 0, 1},
	        {"0.0.0.0", 0, 1},
	        {"255.255.255.255", 0, 1},
	        {"::1", 0, 1},
	        {"::", 0, 1},
	        {"fe80::1", 0, 1},
	        {"::ffff:1.2.3.4", 0, 1},
	        {"2001:db8:0:0:0:0:0:1", 0, 1},
	        {"127.0.0.1junk", 9, 1}, /* only n bytes count */
	        {"[::1]", 0, 0},
	        {"localhost", 0, 0},
	        {"example.com", 0, 0},
	        {"1.2.3", 0, 0},
	        {"1.2.3.4.", 0, 0},
	        {"1.2.3.4:80", 0, 0},
	        {"256.0.0.1", 0, 0},
	        {"127.0.0.1", 8, 0},
	        {"", 0, 0},
	        {"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001", 0, 0},
	};
	struct guard g;

	guard_init(&g, 1);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		check_ip_literal(&g, i, rows[i].s, rows[i].n ? rows[i].n : strlen(rows[i].s), rows[i].want);
	guard_free(&g);
}

/* s[0..n) with a NUL inside is not an address, whatever precedes the NUL. */
static void test_net_is_ip_literal_nul(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} rows[] = {
	        {"1.2.3.4\0evil.com", 16},
	        {"::1\0x", 5},
	        {"127.0.0.1\0", 10},
	};
	struct guard g;

	guard_init(&g, 1);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		check_ip_literal(&g, i, rows[i].s, rows[i].n, 0);
	guard_free(&g);
}

static int listen_on(const char *host, uint16_t port, int reuseport, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(net_parse_addr(host, port, &ss, &len), 0);
	return net_listen((struct sockaddr *)&ss, len, 16, reuseport, err, errlen);
}

/* Listen on port 0, then on the port it got: EADDRINUSE with "bind HOST:PORT" in err. */
static void test_net_listen(void **state)
{
	static const struct {
		const char *host, *shown;
		int optional; /* IPv6 may be missing here */
	} rows[] = {
	        {"127.0.0.1", "127.0.0.1", 0},
	        {"::1", "[::1]", 1},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char err[256] = "", want[64];
		int fd = listen_on(rows[i].host, 0, 0, err, sizeof err);

		if (fd < 0 && rows[i].optional) {
			print_message("    skipping %s: %s\n", rows[i].host, err);
			continue;
		}
		if (fd < 0)
			fail_msg("row %zu %s: %s", i, rows[i].host, err);
		uint16_t port = net_local_port(fd);

		if (port == 0)
			fail_msg("row %zu %s: local port 0", i, rows[i].host);
		assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

		err[0] = '\0';
		errno = 0;
		int fd2 = listen_on(rows[i].host, port, 0, err, sizeof err);
		int e = errno;

		snprintf(want, sizeof want, "bind %s:%u", rows[i].shown, port);
		if (fd2 >= 0) {
			close(fd2);
			fail_msg("row %zu: second listen on %s:%u succeeded", i, rows[i].host, port);
		}
		if (e != EADDRINUSE || !strstr(err, want))
			fail_msg("row %zu: errno %d (%s), err \"%s\"; want EADDRINUSE and \"%s\"", i, e,
			         strerror(e), err, want);

		/* Two listeners that both ask for SO_REUSEPORT share the port. */
		int a = listen_on(rows[i].host, 0, 1, err, sizeof err);

		if (a < 0)
			fail_msg("row %zu: reuseport listen: %s", i, err);
		int b = listen_on(rows[i].host, net_local_port(a), 1, err, sizeof err);

		if (b < 0)
			fail_msg("row %zu: second reuseport listen: %s", i, err);
		assert_int_equal(net_local_port(b), net_local_port(a));
		close(b);
		close(a);
		close(fd);
	}
	assert_int_equal(net_local_port(-1), 0);
}

/*
 * fsroot
 */

struct tree {
	char base[PATH_MAX]; /* mkdtemp directory: holds root/ and secret */
	char root[PATH_MAX];
	struct fsroot r;
};

static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && n < PATH_MAX);
}

static void put_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t n = strlen(content);

	if (fd < 0)
		fail_msg("create %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	close(fd);
}

static void tree_put(struct tree *t, const char *rel, const char *content)
{
	char p[PATH_MAX];

	pathf(p, "%s/%s", t->root, rel);
	put_file(p, content);
}

static void tree_link(struct tree *t, const char *target, const char *rel)
{
	char p[PATH_MAX];

	pathf(p, "%s/%s", t->root, rel);
	if (symlink(target, p) < 0)
		fail_msg("symlink %s -> %s: %s", p, target, strerror(errno));
}

static void tree_mkdir(struct tree *t, const char *rel)
{
	char p[PATH_MAX];

	pathf(p, "%s/%s", t->root, rel);
	if (mkdir(p, 0755) < 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

/* root/a.txt, root/sub/b.txt, root/sub/.h, root/.env, root/empty/, base/secret and
 * symlinks inside and out. */
static int tree_setup(void **state)
{
	struct fx *f;
	struct tree *t;
	const char *tmp = getenv("TMPDIR");
	char abs[PATH_MAX], err[256];

	if (fx_setup(state))
		return -1;
	f = *state;
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	f->tree = t;
	pathf(t->base, "%s/lk-core-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(t->base));
	assert_non_null(realpath(t->base, abs));
	pathf(t->base, "%s", abs);
	pathf(t->root, "%s/root", t->base);
	assert_int_equal(mkdir(t->root, 0755), 0);
	pathf(abs, "%s/secret", t->base);
	put_file(abs, "SECRET");

	tree_put(t, "a.txt", "A");
	tree_mkdir(t, "sub");
	tree_put(t, "sub/b.txt", "B");
	tree_put(t, "sub/.h", "H");
	tree_put(t, ".env", "ENV");
	tree_mkdir(t, "empty");
	tree_link(t, "a.txt", "link_in");
	tree_link(t, "/etc/passwd", "link_out");
	tree_link(t, "../secret", "link_rel_out");
	tree_link(t, "..", "dirlink_out");
	tree_link(t, ".env", "rel_env");
	tree_link(t, "loop", "loop"); /* ELOOP */
	pathf(abs, "%s/a.txt", t->root);
	tree_link(t, abs, "abs_in");
	pathf(abs, "%s/.env", t->root);
	tree_link(t, abs, "abs_env");
	tree_link(t, t->base, "abs_dirlink_out");

	if (fsroot_init(&t->r, t->root, err, sizeof err) != 0)
		fail_msg("fsroot_init %s: %s", t->root, err);
	return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(p) < 0 ? -1 : 0;
}

static int tree_teardown(void **state)
{
	struct fx *f = *state;
	struct tree *t = f->tree;

	if (t) {
		fsroot_close(&t->r);
		nftw(t->base, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
		free(t);
	}
	return fx_teardown(state);
}

/* The content of root/rel (read with plain open), or NULL when it does not exist. */
static const char *tree_read(struct tree *t, const char *rel, char *out, size_t len)
{
	char p[PATH_MAX];
	int fd;
	ssize_t n;

	pathf(p, "%s/%s", t->root, rel);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	n = read(fd, out, len - 1);
	close(fd);
	out[n < 0 ? 0 : n] = '\0';
	return out;
}

/* Temporary upload files (".NAME.lk-XXXXXX") in root/dir. */
static int tree_temps(struct tree *t, const char *dir)
{
	char p[PATH_MAX];
	DIR *d;
	struct dirent *e;
	int n = 0;

	pathf(p, "%s/%s", t->root, dir);
	d = opendir(p);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += fnmatch(".*.lk-*", e->d_name, 0) == 0;
	closedir(d);
	return n;
}

static void test_fsroot_init(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	struct fsroot r;
	char err[256] = "", p[PATH_MAX];

	assert_true(t->r.fd >= 0);
	assert_string_equal(t->r.abs, t->root);
	assert_int_equal(t->r.dotfiles, 0);

	pathf(p, "%s/missing", t->root);
	assert_int_equal(fsroot_init(&r, p, err, sizeof err), -1);
	assert_non_null(strstr(err, p));
	err[0] = '\0';
	pathf(p, "%s/a.txt", t->root);
	assert_int_equal(fsroot_init(&r, p, err, sizeof err), -1);
	assert_true(err[0] != '\0');
}

static void test_fsroot_open(void **state)
{
	static const struct {
		const char *rel;
		int dotfiles, flags;
		int want;            /* 0: a descriptor */
		const char *content; /* what it reads, when a file */
	} rows[] = {
	        {"a.txt", 0, O_RDONLY, 0, "A"},
	        {"sub/b.txt", 0, O_RDONLY, 0, "B"},
	        {"link_in", 0, O_RDONLY, 0, "A"},
	        {"abs_in", 0, O_RDONLY, 0, "A"},                     /* absolute, inside */
	        {"abs_dirlink_out/root/a.txt", 0, O_RDONLY, 0, "A"}, /* out and back in */
	        {"", 0, O_RDONLY | O_DIRECTORY, 0, NULL},
	        {"sub", 0, O_RDONLY | O_DIRECTORY, 0, NULL},
	        {"a.txt", 0, O_PATH, 0, NULL},
	        /* dotfiles */
	        {".env", 0, O_RDONLY, -ENOENT, NULL},
	        {".env", 1, O_RDONLY, 0, "ENV"},
	        {"sub/.h", 0, O_RDONLY, -ENOENT, NULL},
	        {"sub/.h", 1, O_RDONLY, 0, "H"},
	        {"abs_env", 0, O_RDONLY, -ENOENT, NULL},
	        {"abs_env", 1, O_RDONLY, 0, "ENV"},
	        /* leading outside: -ENOENT, never a descriptor */
	        {"link_out", 0, O_RDONLY, -ENOENT, NULL},
	        {"link_out", 1, O_RDONLY, -ENOENT, NULL},
	        {"link_out", 0, O_PATH, -ENOENT, NULL},
	        {"link_rel_out", 0, O_RDONLY, -ENOENT, NULL},
	        {"link_rel_out", 1, O_RDONLY, -ENOENT, NULL},
	        {"dirlink_out/secret", 0, O_RDONLY, -ENOENT, NULL},
	        {"dirlink_out/secret", 1, O_RDONLY, -ENOENT, NULL},
	        {"dirlink_out", 0, O_RDONLY | O_DIRECTORY, -ENOENT, NULL},
	        {"abs_dirlink_out/secret", 0, O_RDONLY, -ENOENT, NULL},
	        {"abs_dirlink_out", 0, O_RDONLY | O_DIRECTORY, -ENOENT, NULL},
	        {"..", 1, O_RDONLY | O_DIRECTORY, -ENOENT, NULL},
	        {"../secret", 1, O_RDONLY, -ENOENT, NULL},
	        {"sub/../../secret", 1, O_RDONLY, -ENOENT, NULL},
	        /* other errors */
	        {"missing", 0, O_RDONLY, -ENOENT, NULL},
	        {"sub/missing/x", 0, O_RDONLY, -ENOENT, NULL},
	        {"a.txt/x", 0, O_RDONLY, -ENOTDIR, NULL},
	        {"a.txt", 0, O_RDONLY | O_DIRECTORY, -ENOTDIR, NULL},
	        {"loop", 0, O_RDONLY, -ENOENT, NULL},
	        {"loop/x", 0, O_RDONLY, -ENOENT, NULL},
	};
	struct tree *t = ((struct fx *)*state)->tree;

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char got[64];
		int fd;

		t->r.dotfiles = rows[i].dotfiles;
		fd = fsroot_open(&t->r, rows[i].rel, rows[i].flags);
		if (rows[i].want < 0) {
			if (fd >= 0) {
				ssize_t n = read(fd, got, sizeof got - 1);

				got[n < 0 ? 0 : n] = '\0';
				close(fd);
				fail_msg("row %zu \"%s\" (dotfiles %d): got a descriptor (reads \"%s\"), "
				         "want %d",
				         i, rows[i].rel, rows[i].dotfiles, got, rows[i].want);
			}
			if (fd != rows[i].want)
				fail_msg("row %zu \"%s\" (dotfiles %d): got %d, want %d", i, rows[i].rel,
				         rows[i].dotfiles, fd, rows[i].want);
			continue;
		}
		if (fd < 0)
			fail_msg("row %zu \"%s\" (dotfiles %d): got %d (%s)", i, rows[i].rel,
			         rows[i].dotfiles, fd, strerror(-fd));
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		if (rows[i].content) {
			ssize_t n = read(fd, got, sizeof got - 1);

			got[n < 0 ? 0 : n] = '\0';
			if (strcmp(got, rows[i].content))
				fail_msg("row %zu \"%s\": read \"%s\", want \"%s\"", i, rows[i].rel, got,
				         rows[i].content);
		}
		close(fd);
	}
}

/* Dotfiles off hides .env however it is named: the absolute link to it is refused
 * (above), and so must be a relative one. */
static void test_fsroot_link_to_dotfile(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	int fd = fsroot_open(&t->r, "rel_env", O_RDONLY);

	if (fd >= 0) {
		char got[16];
		ssize_t n = read(fd, got, sizeof got - 1);

		got[n < 0 ? 0 : n] = '\0';
		close(fd);
		fail_msg("\"rel_env\" (-> .env, dotfiles off): got a descriptor reading \"%s\", "
		         "want -ENOENT like \"abs_env\"",
		         got);
	}
	assert_int_equal(fd, -ENOENT);
}

static void test_fsroot_upload(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	struct fsroot_upload u;
	char got[64];

	/* Replace: the old content stays until commit, then the new one is complete;
	 * meanwhile the upload has no name at all (O_TMPFILE). */
	assert_int_equal(fsroot_upload_begin(&t->r, "a.txt", &u), 0);
	assert_int_equal(u.existed, 1);
	assert_int_equal(u.named, 0);
	assert_int_equal(tree_temps(t, ""), 0);
	assert_int_equal(fsroot_upload_write(&u, "new ", 4), 0);
	assert_int_equal(fsroot_upload_write(&u, "content", 7), 0);
	assert_string_equal(tree_read(t, "a.txt", got, sizeof got), "A");
	assert_int_equal(fsroot_upload_commit(&u), 0);
	assert_int_equal(u.fd, -1);
	assert_int_equal(u.dirfd, -1);
	assert_string_equal(tree_read(t, "a.txt", got, sizeof got), "new content");
	assert_int_equal(tree_temps(t, ""), 0);
	fsroot_upload_abort(&u); /* after commit: harmless */
	assert_string_equal(tree_read(t, "a.txt", got, sizeof got), "new content");

	/* A new file in a subdirectory. */
	assert_int_equal(fsroot_upload_begin(&t->r, "sub/new.txt", &u), 0);
	assert_int_equal(u.existed, 0);
	assert_int_equal(fsroot_upload_write(&u, "N", 1), 0);
	assert_int_equal(fsroot_upload_commit(&u), 0);
	assert_string_equal(tree_read(t, "sub/new.txt", got, sizeof got), "N");
	assert_int_equal(tree_temps(t, "sub"), 0);

	/* An empty upload still replaces. */
	assert_int_equal(fsroot_upload_begin(&t->r, "sub/new.txt", &u), 0);
	assert_int_equal(fsroot_upload_commit(&u), 0);
	assert_string_equal(tree_read(t, "sub/new.txt", got, sizeof got), "");

	/* Abort: the old content stays and the temporary file goes, twice is safe. */
	assert_int_equal(fsroot_upload_begin(&t->r, "sub/b.txt", &u), 0);
	assert_int_equal(fsroot_upload_write(&u, "garbage", 7), 0);
	assert_int_equal(tree_temps(t, "sub"), 0);
	fsroot_upload_abort(&u);
	fsroot_upload_abort(&u);
	assert_string_equal(tree_read(t, "sub/b.txt", got, sizeof got), "B");
	assert_int_equal(tree_temps(t, "sub"), 0);

	/* A symlink that reads as missing (out of the root, to a hidden name) is never
	 * replaced: -ENOLINK, and the link stays. */
	char lnk[PATH_MAX], p[PATH_MAX];
	static const char *const out_links[] = {"link_rel_out", "link_out", "dirlink_out", "rel_env"};
	for (size_t i = 0; i < sizeof out_links / sizeof out_links[0]; i++) {
		assert_int_equal(fsroot_upload_begin(&t->r, out_links[i], &u), -ENOLINK);
		assert_int_equal(u.dirfd, -1);
		pathf(p, "%s/%s", t->root, out_links[i]);
		assert_true(readlink(p, lnk, sizeof lnk) > 0);
	}
	assert_string_equal(tree_read(t, "../secret", got, sizeof got), "SECRET");
	/* A symlink inside the root is an ordinary name: replacing it replaces the link,
	 * not what it points to. */
	assert_int_equal(fsroot_upload_begin(&t->r, "link_in", &u), 0);
	assert_int_equal(fsroot_upload_write(&u, "L", 1), 0);
	assert_int_equal(fsroot_upload_commit(&u), 0);
	assert_string_equal(tree_read(t, "link_in", got, sizeof got), "L");
	assert_string_equal(tree_read(t, "a.txt", got, sizeof got), "new content");
	pathf(p, "%s/link_in", t->root);
	assert_int_equal(readlink(p, lnk, sizeof lnk), -1);
	/* With follow_links, a link out is a name like any other. */
	t->r.follow_links = 1;
	assert_int_equal(fsroot_upload_begin(&t->r, "link_rel_out", &u), 0);
	fsroot_upload_abort(&u);
	t->r.follow_links = 0;
}

static void test_fsroot_upload_errors(void **state)
{
	static const struct {
		const char *rel;
		int want;
	} rows[] = {
	        {"nodir/x.txt", -ENOENT},
	        {"sub/nodir/x.txt", -ENOENT},
	        {"sub", -EISDIR},
	        {"empty", -EISDIR},
	        {".env", -ENOENT},
	        {"sub/.h", -ENOENT},
	        {".hidden/x", -ENOENT},
	        {"dirlink_out/x", -ENOENT},
	        {"abs_dirlink_out/x", -ENOENT},
	        {"link_out/x", -ENOENT},
	        {"a.txt/x", -ENOTDIR},
	};
	struct tree *t = ((struct fx *)*state)->tree;
	char p[PATH_MAX], got[16];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct fsroot_upload u;
		int r = fsroot_upload_begin(&t->r, rows[i].rel, &u);

		if (r == 0) {
			fsroot_upload_abort(&u);
			fail_msg("row %zu \"%s\": upload began, want %d", i, rows[i].rel, rows[i].want);
		}
		if (r != rows[i].want)
			fail_msg("row %zu \"%s\": got %d (%s), want %d", i, rows[i].rel, r, strerror(-r),
			         rows[i].want);
		fsroot_upload_abort(&u); /* after a failed begin: harmless */
	}
	/* Nothing was created outside the root or beside it. */
	pathf(p, "%s/x", t->base);
	assert_int_equal(access(p, F_OK), -1);
	assert_string_equal(tree_read(t, ".env", got, sizeof got), "ENV");
	assert_int_equal(tree_temps(t, ""), 0);

	/* A name too long for the file system is refused before any byte comes. */
	char name[NAME_MAX + 2];
	struct fsroot_upload u;

	memset(name, 'n', NAME_MAX + 1);
	name[NAME_MAX + 1] = '\0';
	assert_int_equal(fsroot_upload_begin(&t->r, name, &u), -ENAMETOOLONG);
	assert_int_equal(u.dirfd, -1);
	assert_int_equal(u.fd, -1);
}

/* The longest name works, new and replaced: the temporary name for the replace is
 * cut to fit. */
static void test_fsroot_upload_longest_name(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	char name[NAME_MAX + 1], got[8];
	struct fsroot_upload u;

	memset(name, 'n', NAME_MAX);
	name[NAME_MAX] = '\0';
	for (int named = 0; named < 2; named++) {
		t->r.no_tmpfile = named;
		for (int round = 0; round < 2; round++) {
			assert_int_equal(fsroot_upload_begin(&t->r, name, &u), 0);
			assert_int_equal(u.named, named);
			assert_int_equal(fsroot_upload_write(&u, round ? "2" : "1", 1), 0);
			assert_int_equal(fsroot_upload_commit(&u), 0);
			assert_string_equal(tree_read(t, name, got, sizeof got), round ? "2" : "1");
		}
	}
	assert_int_equal(tree_temps(t, ""), 0);
}

/* Where O_TMPFILE is missing: a named temporary, mode 0600 while it is written (the
 * content may be a 0600 file's), gone after commit and after abort. */
static void test_fsroot_upload_named(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	struct fsroot_upload u;
	struct stat st;
	char got[32], p[PATH_MAX], want[64];

	t->r.no_tmpfile = 1;
	assert_int_equal(fsroot_upload_begin(&t->r, "a.txt", &u), 0);
	assert_int_equal(u.named, 1);
	snprintf(want, sizeof want, ".a.txt.lk-%d-", (int)getpid());
	if (strncmp(u.tmp, want, strlen(want)) || strlen(u.tmp) != strlen(want) + 6)
		fail_msg("temporary name %s, want %sXXXXXX", u.tmp, want);
	assert_int_equal(tree_temps(t, ""), 1);
	pathf(p, "%s/%s", t->root, u.tmp);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fsroot_upload_write(&u, "named", 5), 0);
	assert_int_equal(fsroot_upload_commit(&u), 0);
	assert_string_equal(tree_read(t, "a.txt", got, sizeof got), "named");
	assert_int_equal(tree_temps(t, ""), 0);

	assert_int_equal(fsroot_upload_begin(&t->r, "sub/b.txt", &u), 0);
	assert_int_equal(fsroot_upload_write(&u, "garbage", 7), 0);
	assert_int_equal(tree_temps(t, "sub"), 1);
	fsroot_upload_abort(&u);
	assert_int_equal(tree_temps(t, "sub"), 0);
	assert_string_equal(tree_read(t, "sub/b.txt", got, sizeof got), "B");
}

static mode_t tree_mode(struct tree *t, const char *rel, uid_t *uid, gid_t *gid)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, "%s/%s", t->root, rel);
	if (lstat(p, &st) < 0)
		fail_msg("stat %s: %s", p, strerror(errno));
	if (uid)
		*uid = st.st_uid;
	if (gid)
		*gid = st.st_gid;
	return st.st_mode & 07777;
}

static void tree_upload(struct tree *t, const char *rel, const char *content)
{
	struct fsroot_upload u;
	int rc = fsroot_upload_begin(&t->r, rel, &u);

	if (rc < 0)
		fail_msg("upload %s: %s", rel, strerror(-rc));
	assert_int_equal(fsroot_upload_write(&u, content, strlen(content)), 0);
	assert_int_equal(fsroot_upload_commit(&u), 0);
}

/* An upload keeps the mode of the file it replaces (not setuid/setgid), and as root
 * its owner and group; a new file gets 0644 less the umask. Both ways of writing. */
static void test_fsroot_upload_keeps_mode(void **state)
{
	static const struct {
		mode_t before, after;
	} rows[] = {
	        {0600, 0600}, {0755, 0755}, {0640, 0640}, {0444, 0444}, {04755, 0755}, {02755, 0755},
	};
	struct tree *t = ((struct fx *)*state)->tree;
	char p[PATH_MAX], got[8];
	uid_t uid;
	gid_t gid;

	for (int named = 0; named < 2; named++) {
		t->r.no_tmpfile = named;
		for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			pathf(p, "%s/m.txt", t->root);
			put_file(p, "old");
			assert_int_equal(chmod(p, rows[i].before), 0);
			tree_upload(t, "m.txt", "new");
			assert_string_equal(tree_read(t, "m.txt", got, sizeof got), "new");
			if (tree_mode(t, "m.txt", NULL, NULL) != rows[i].after)
				fail_msg("named %d row %zu: %04o over %04o, want %04o", named, i,
				         tree_mode(t, "m.txt", NULL, NULL), rows[i].before, rows[i].after);
		}
		/* A new name: 0644 less the umask (the process's, read at init). */
		pathf(p, "%s/new%d.txt", t->root, named);
		unlink(p);
		pathf(p, "new%d.txt", named);
		tree_upload(t, p, "n");
		assert_int_equal(tree_mode(t, p, NULL, NULL), 0644 & ~t->r.umask);
		/* As root: the owner and group of the file replaced stay. */
		if (geteuid() == 0) {
			pathf(p, "%s/owned.txt", t->root);
			put_file(p, "old");
			assert_int_equal(chown(p, 4321, 4322), 0);
			assert_int_equal(chmod(p, 0600), 0);
			tree_upload(t, "owned.txt", "new");
			assert_int_equal(tree_mode(t, "owned.txt", &uid, &gid), 0600);
			assert_int_equal(uid, 4321);
			assert_int_equal(gid, 4322);
		}
	}
	assert_int_equal(tree_temps(t, ""), 0);
}

/* fsroot_init's sweep: stale temporary names of ours go, everything else stays. */
static void test_fsroot_sweep_temps(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	char p[PATH_MAX], name[128], err[256];
	struct timespec old[2] = {{.tv_sec = time(NULL) - FSROOT_STALE_LEGACY_S - 60},
	                          {.tv_sec = time(NULL) - FSROOT_STALE_LEGACY_S - 60}};
	pid_t dead = fork();

	assert_true(dead >= 0);
	if (!dead)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	const struct {
		const char *dir;
		char name[96];
		int legacy_old; /* backdate the file */
		int gone;
	} rows[] = {
	        {"", "", 0, 1},                     /* dead pid, filled in below */
	        {"sub", "", 0, 1},                  /* dead pid, in a subdirectory */
	        {"", "", 0, 1},                     /* our own pid: a previous process's */
	        {"", ".x.lk-1-abcdef", 0, 0},       /* pid 1 is alive */
	        {"", ".x.lk-abcdef", 1, 1},         /* old format, old */
	        {"", ".y.lk-abcdef", 0, 0},         /* old format, recent */
	        {"", ".x.lk-notours", 0, 0},        /* not our pattern */
	        {"", ".x.lk-12-abcdeg", 0, 0},      /* not hex */
	        {"", "x.lk-99999999-abcdef", 0, 0}, /* not hidden */
	        {".hidden", "", 0, 0},              /* hidden directories are not entered */
	};
	size_t n = sizeof rows / sizeof rows[0];
	char names[16][96];

	tree_mkdir(t, ".hidden");
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof names[i], "%s", rows[i].name);
		if (!names[i][0])
			snprintf(names[i], sizeof names[i], ".f%zu.lk-%d-0a1b2c", i,
			         i == 2 ? (int)getpid() : (int)dead);
		pathf(p, "%s/%s%s%s", t->root, rows[i].dir, *rows[i].dir ? "/" : "", names[i]);
		put_file(p, "tmp");
		if (rows[i].legacy_old)
			assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	}
	fsroot_close(&t->r);
	if (fsroot_init(&t->r, t->root, err, sizeof err) != 0)
		fail_msg("fsroot_init: %s", err);
	for (size_t i = 0; i < n; i++) {
		pathf(p, "%s/%s%s%s", t->root, rows[i].dir, *rows[i].dir ? "/" : "", names[i]);
		int gone = access(p, F_OK) < 0;

		if (gone != rows[i].gone)
			fail_msg("row %zu %s: %s, want %s", i, p, gone ? "removed" : "kept",
			         rows[i].gone ? "removed" : "kept");
	}
	assert_string_equal(tree_read(t, "a.txt", name, sizeof name), "A");
	assert_int_equal(fsroot_sweep_temps(&t->r), 0);
}

/*
 * directory snapshots
 */

/* Makes the tree's directories older than DIRSNAP_RACY_MS: a directory changed just
 * before a read is not shared. */
static void snap_settle(void)
{
	struct timespec d = {.tv_nsec = (DIRSNAP_RACY_MS + 10) * 1000000L};

	nanosleep(&d, NULL);
}

static void test_dirsnap_order_and_filter(void **state)
{
	static const char *files[] = {"a10.txt", "a2.txt", "B.txt", "a1.txt", "file-1.10", "file-1.9"};
	/* Directories first, then natural order, case-sensitive; the links out of the
	 * root, the loop, .env and the link to it are not listed. */
	static const char *want[] = {"dir9",     "dir10",     "empty",  "sub",     "B.txt",
	                             "a.txt",    "a1.txt",    "a2.txt", "a10.txt", "abs_in",
	                             "file-1.9", "file-1.10", "link_in"};
	struct tree *t = ((struct fx *)*state)->tree;
	const struct dirsnap *d;
	size_t i;

	for (i = 0; i < sizeof files / sizeof files[0]; i++)
		tree_put(t, files[i], "x");
	tree_mkdir(t, "dir10");
	tree_mkdir(t, "dir9");
	assert_int_equal(dirsnap_get(NULL, &t->r, "", &d), 0);
	for (i = 0; i < d->n && i < sizeof want / sizeof want[0]; i++)
		if (strcmp(d->ents[i].name, want[i]))
			break;
	if (i != d->n || d->n != sizeof want / sizeof want[0]) {
		for (i = 0; i < d->n; i++)
			print_message("  %zu %s%s\n", i, d->ents[i].name, d->ents[i].is_dir ? "/" : "");
		dirsnap_put(NULL, d);
		fail_msg("snapshot order or filter wrong (want directories first, then strverscmp)");
	}
	assert_true(d->ents[0].is_dir && !d->ents[4].is_dir);
	assert_int_equal(d->ents[5].size, 1); /* a.txt */
	assert_int_equal(d->more, 0);
	dirsnap_put(NULL, d);
}

static void test_dirsnap_shared_and_versions(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	struct dirsnap_cache *c = dirsnap_cache_new(1 << 20, 1000);
	const struct dirsnap *a, *b, *d, *e;

	assert_non_null(c);
	snap_settle();
	assert_int_equal(dirsnap_get(c, &t->r, "sub", &a), 0);
	assert_int_equal(dirsnap_get(c, &t->r, "sub", &b), 0);
	assert_ptr_equal(a, b); /* one copy for every lister */
	assert_int_equal(a->n, 1);
	assert_string_equal(a->ents[0].name, "b.txt");
	assert_true(dirsnap_cache_bytes(c) > 0);
	/* A new version of the directory is a new snapshot; the old one lives on for its
	 * holders, unchanged. */
	tree_put(t, "sub/c.txt", "C");
	assert_int_equal(dirsnap_get(c, &t->r, "sub", &d), 0);
	assert_ptr_not_equal(d, a);
	assert_int_equal(d->n, 2);
	assert_int_equal(a->n, 1);
	/* Changed within DIRSNAP_RACY_MS of the read: not shared. */
	assert_int_equal(dirsnap_get(c, &t->r, "sub", &e), 0);
	assert_ptr_not_equal(e, d);
	dirsnap_put(c, e);
	dirsnap_put(c, a);
	dirsnap_put(c, b);
	dirsnap_put(c, d);
	assert_int_equal(dirsnap_cache_bytes(c), 0);
	/* Errors. */
	assert_int_equal(dirsnap_get(c, &t->r, "a.txt", &a), -ENOTDIR);
	assert_int_equal(dirsnap_get(c, &t->r, "nope", &a), -ENOENT);
	assert_int_equal(dirsnap_get(c, &t->r, "dirlink_out", &a), -ENOENT);
	assert_null(a);
	dirsnap_cache_free(c);
}

/* The cache's memory limit: a listing that would pass it fails with -ENOBUFS (and
 * holds nothing), and works again once others are given back. The entry limit cuts a
 * listing and counts the rest. */
static void test_dirsnap_limits(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	char name[64];
	const struct dirsnap *a, *b;

	tree_mkdir(t, "many");
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof name, "many/file-with-a-longish-name-%03d.txt", i);
		tree_put(t, name, "");
	}
	snap_settle();
	struct dirsnap_cache *c = dirsnap_cache_new(1 << 20, 1000);
	assert_int_equal(dirsnap_get(c, &t->r, "many", &a), 0);
	size_t one = dirsnap_cache_bytes(c);
	assert_int_equal(a->n, 400);
	dirsnap_put(c, a);
	dirsnap_cache_free(c);

	/* Room for one listing, not two: the second (another directory) is refused. */
	c = dirsnap_cache_new(one + one / 2, 1000);
	assert_int_equal(dirsnap_get(c, &t->r, "many", &a), 0);
	tree_mkdir(t, "many2");
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof name, "many2/file-with-a-longish-name-%03d.txt", i);
		tree_put(t, name, "");
	}
	snap_settle();
	assert_int_equal(dirsnap_get(c, &t->r, "many2", &b), -ENOBUFS);
	assert_null(b);
	assert_int_equal(dirsnap_cache_bytes(c), one);
	assert_int_equal(dirsnap_get(c, &t->r, "many", &b), 0); /* shared: costs nothing */
	assert_ptr_equal(a, b);
	dirsnap_put(c, b);
	dirsnap_put(c, a);
	assert_int_equal(dirsnap_get(c, &t->r, "many2", &b), 0);
	dirsnap_put(c, b);
	assert_int_equal(dirsnap_cache_bytes(c), 0);
	dirsnap_cache_free(c);

	c = dirsnap_cache_new(1 << 20, 100);
	assert_int_equal(dirsnap_get(c, &t->r, "many", &a), 0);
	assert_int_equal(a->n, 100);
	assert_int_equal(a->more, 300);
	dirsnap_put(c, a);
	dirsnap_cache_free(c);
	assert_int_equal(lk_error(lk_err_from_errno(ENOBUFS))->ftp, 451);
	assert_int_equal(lk_error(lk_err_from_errno(ENOBUFS))->http, 503);
}

struct snap_race {
	struct dirsnap_cache *c;
	struct tree *t;
	int fails;
};

static void *snap_race_cb(void *arg)
{
	struct snap_race *r = arg;

	for (int i = 0; i < 2000; i++) {
		const struct dirsnap *d;

		if (dirsnap_get(r->c, &r->t->r, i % 2 ? "sub" : "", &d) < 0 || !d->n)
			r->fails++;
		else
			dirsnap_put(r->c, d);
	}
	return NULL;
}

/* Four threads list and give back at once: no loss, no double free, all back. */
static void test_dirsnap_threads(void **state)
{
	struct tree *t = ((struct fx *)*state)->tree;
	struct snap_race r[4];
	pthread_t th[4];
	struct dirsnap_cache *c = dirsnap_cache_new(1 << 20, 1000);

	snap_settle();
	for (int i = 0; i < 4; i++) {
		r[i] = (struct snap_race){c, t, 0};
		assert_int_equal(pthread_create(&th[i], NULL, snap_race_cb, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].fails, 0);
	}
	assert_int_equal(dirsnap_cache_bytes(c), 0);
	dirsnap_cache_free(c);
}

static void test_fsroot_remove(void **state)
{
	static const struct {
		const char *rel;
		int dotfiles, want;
		const char *gone; /* checked absent afterwards (relative to root) */
	} rows[] = {
	        {"sub", 0, -ENOTEMPTY, NULL},
	        {"sub/b.txt", 0, 0, "sub/b.txt"},
	        {"link_in", 0, 0, "link_in"}, /* the link, not a.txt */
	        {"a.txt", 0, 0, "a.txt"},
	        {"empty", 0, 0, "empty"},
	        {"missing", 0, -ENOENT, NULL},
	        {"nodir/x", 0, -ENOENT, NULL},
	        {".env", 0, -ENOENT, NULL},
	        {"dirlink_out/secret", 0, -ENOENT, NULL},
	        {"abs_dirlink_out/secret", 1, -ENOENT, NULL},
	        {"link_rel_out", 0, -ENOENT, NULL}, /* reads as missing: missing, and kept */
	        {"rel_env", 0, -ENOENT, NULL},      /* a link to a hidden name: the same */
	        {"sub/.h", 0, -ENOENT, NULL},
	        {"sub/.h", 1, 0, "sub/.h"},
	        {"sub", 0, 0, "sub"}, /* now empty */
	};
	struct tree *t = ((struct fx *)*state)->tree;
	char got[16], p[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		t->r.dotfiles = rows[i].dotfiles;
		int r = fsroot_remove(&t->r, rows[i].rel);

		if (r != rows[i].want)
			fail_msg("row %zu \"%s\": got %d (%s), want %d", i, rows[i].rel, r, strerror(-r),
			         rows[i].want);
		if (rows[i].gone) {
			pathf(p, "%s/%s", t->root, rows[i].gone);
			if (lstat(p, &st) == 0)
				fail_msg("row %zu \"%s\": still there", i, rows[i].rel);
		}
	}
	t->r.dotfiles = 0;
	assert_string_equal(tree_read(t, ".env", got, sizeof got), "ENV");
	assert_string_equal(tree_read(t, "../secret", got, sizeof got), "SECRET");
	pathf(p, "%s/link_rel_out", t->root);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(fsroot_remove(&t->r, ""), -EINVAL); /* never the root itself */
	assert_int_equal(access(t->root, F_OK), 0);
}

static void test_fsroot_rename(void **state)
{
	static const struct {
		const char *from, *to;
		int want;
		const char *there; /* exists afterwards (relative to root), when the rename worked */
	} rows[] = {
	        {"sub", "sub/inside", -EINVAL, NULL},     /* a directory into itself */
	        {"link_rel_out", "moved", -ENOENT, NULL}, /* reads as missing: missing */
	        {"dirlink_out", "sub/moved", -ENOENT, NULL},
	        {"rel_env", "moved", -ENOENT, NULL},
	        {"a.txt", "link_out", -ENOLINK, NULL}, /* never replaced */
	        {"a.txt", "link_rel_out", -ENOLINK, NULL},
	        {"missing", "x", -ENOENT, NULL},
	        {"a.txt", "nodir/x", -ENOENT, NULL},
	        {"", "x", -EBUSY, NULL},
	        {"a.txt", "", -EBUSY, NULL},
	        {"link_in", "sub/link_moved", 0, "sub/link_moved"}, /* a link inside: a name */
	        {"a.txt", "renamed.txt", 0, "renamed.txt"},
	};
	struct tree *t = ((struct fx *)*state)->tree;
	char p[PATH_MAX], lnk[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int r = fsroot_rename(&t->r, rows[i].from, rows[i].to);
		if (r != rows[i].want)
			fail_msg("row %zu \"%s\" -> \"%s\": got %d (%s), want %d", i, rows[i].from,
			         rows[i].to, r, strerror(-r), rows[i].want);
		if (rows[i].there) {
			pathf(p, "%s/%s", t->root, rows[i].there);
			if (lstat(p, &st) < 0)
				fail_msg("row %zu: %s is not there", i, rows[i].there);
		}
	}
	static const char *const kept[] = {"link_out", "link_rel_out", "dirlink_out", "rel_env"};
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
		pathf(p, "%s/%s", t->root, kept[i]);
		if (readlink(p, lnk, sizeof lnk) <= 0)
			fail_msg("%s is no longer a symlink", kept[i]);
	}
}

static void test_fsroot_hidden(void **state)
{
	static const struct {
		const char *rel;
		int hidden;
	} rows[] = {
	        {"", 0},     {"a", 0},      {"a.b", 0}, {"a/b.c/d", 0}, {".a", 1},
	        {"a/.b", 1}, {"a/.b/c", 1}, {"..a", 1}, {"a/b/.", 1},   {"a./b", 0},
	};
	struct fsroot r = {.fd = -1, .dotfiles = 0};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		r.dotfiles = 0;
		if (!!fsroot_hidden(&r, rows[i].rel) != rows[i].hidden)
			fail_msg("row %zu \"%s\": hidden %d, want %d", i, rows[i].rel,
			         fsroot_hidden(&r, rows[i].rel), rows[i].hidden);
		r.dotfiles = 1;
		if (fsroot_hidden(&r, rows[i].rel))
			fail_msg("row %zu \"%s\": hidden with dotfiles on", i, rows[i].rel);
	}
	r.dotfiles = 0;
	assert_true(fsroot_hidden_name(&r, ".x"));
	assert_false(fsroot_hidden_name(&r, "x."));
	r.dotfiles = 1;
	assert_false(fsroot_hidden_name(&r, ".x"));
}

/*
 * errors
 */

static void test_errors(void **state)
{
	static const struct {
		int e;
		enum lk_err want;
		int http, ftp;
	} rows[] = {
	        {0, LK_E_OK, 200, 200},
	        {ENOENT, LK_E_ENOENT, 404, 550},
	        {EXDEV, LK_E_ENOENT, 404, 550},
	        {ELOOP, LK_E_ENOENT, 404, 550},
	        {EACCES, LK_E_EACCES, 403, 550},
	        {EPERM, LK_E_EACCES, 403, 550},
	        {EROFS, LK_E_EACCES, 403, 550},
	        {EEXIST, LK_E_EEXIST, 409, 550},
	        {ENOTEMPTY, LK_E_ENOTEMPTY, 409, 550},
	        {EISDIR, LK_E_EISDIR, 409, 550},
	        {ENOTDIR, LK_E_ENOTDIR, 404, 550},
	        {ENOSPC, LK_E_ENOSPC, 507, 552},
	        {EDQUOT, LK_E_ENOSPC, 507, 552},
	        {ENAMETOOLONG, LK_E_ENAMETOOLONG, 414, 553},
	        {EFBIG, LK_E_ETOOBIG, 413, 552},
	        {ENOMEM, LK_E_ENOMEM, 503, 451},
	        {EMFILE, LK_E_EMFILE, 503, 421},
	        {ENFILE, LK_E_EMFILE, 503, 421},
	        {EIO, LK_E_EIO, 500, 451},
	        {EINVAL, LK_E_EIO, 500, 451},
	        {99999, LK_E_EIO, 500, 451},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		enum lk_err got = lk_err_from_errno(rows[i].e);
		const struct lk_error *row = lk_error(got);

		if (got != rows[i].want || row->http != rows[i].http || row->ftp != rows[i].ftp)
			fail_msg("row %zu errno %d (%s): got %d http %d ftp %d, want %d http %d ftp %d", i,
			         rows[i].e, strerror(rows[i].e), got, row->http, row->ftp, rows[i].want,
			         rows[i].http, rows[i].ftp);
	}
	/* Every row is complete: a message of one line with at most one "%s" and no
	 * other conversion, and a status or reply code for at least one protocol. */
	for (int e = 0; e < LK_ERR_COUNT; e++) {
		const struct lk_error *row = lk_error((enum lk_err)e);
		const char *pct = row ? strchr(row->msg, '%') : NULL;
		int http_ok = row && (row->http == 0 || (row->http >= 200 && row->http <= 599));
		int ftp_ok = row && (row->ftp == 0 || (row->ftp >= 200 && row->ftp <= 599));

		if (!row || !row->msg || !row->msg[0] || !http_ok || !ftp_ok || (!row->http && !row->ftp) ||
		    strchr(row->msg, '\n') || (pct && (pct[1] != 's' || strchr(pct + 2, '%'))))
			fail_msg("error table row %d (\"%s\") incomplete or malformed", e,
			         row && row->msg ? row->msg : "");
		if (row->http && !lk_http_known(row->http))
			fail_msg("error table row %d: HTTP status %d has no reason phrase", e, row->http);
	}
	for (int r = 0; r < LK_REPLY_COUNT; r++) {
		const struct lk_reply_row *row = lk_reply((enum lk_reply)r);
		const char *pct = strchr(row->text, '%');

		if (row->ftp < 100 || row->ftp > 399 || !row->text[0] || strchr(row->text, '\n') ||
		    (pct && (pct[1] != 's' || strchr(pct + 2, '%'))))
			fail_msg("reply table row %d (%d \"%s\") malformed", r, row->ftp, row->text);
	}
	/* Reason phrases: the table's, and a neutral word for unknown codes. */
	static const struct {
		int code;
		const char *reason;
	} reasons[] = {
	        {100, "Continue"},
	        {200, "OK"},
	        {206, "Partial Content"},
	        {418, "I'm a teapot"},
	        {431, "Request Header Fields Too Large"},
	        {511, "Network Authentication Required"},
	        {299, "Status"},
	        {600, "Status"},
	        {0, "Status"},
	        {-1, "Status"},
	};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strcmp(lk_http_reason(reasons[i].code), reasons[i].reason))
			fail_msg("reason of %d: got \"%s\", want \"%s\"", reasons[i].code,
			         lk_http_reason(reasons[i].code), reasons[i].reason);
	/* Details fill the one "%s"; text without one is copied as it is. */
	char out[64];
	lk_text_fill(out, sizeof out, "over the limit of %s here", "16 KiB");
	assert_string_equal(out, "over the limit of 16 KiB here");
	lk_text_fill(out, sizeof out, "plain", "ignored");
	assert_string_equal(out, "plain");
	lk_text_fill(out, 8, "0123456789%s", "x");
	assert_string_equal(out, "0123456");
	assert_string_equal(lk_size_text(16384, out, sizeof out), "16 KiB");
	assert_string_equal(lk_size_text(1u << 20, out, sizeof out), "1 MiB");
	assert_string_equal(lk_size_text(1000, out, sizeof out), "1000 bytes");
	assert_string_equal(lk_ms_text(10000, out, sizeof out), "10 s");
	assert_string_equal(lk_ms_text(1500, out, sizeof out), "1.5 s");
	assert_string_equal(lk_ms_text(300000, out, sizeof out), "5 min");
	assert_string_equal(lk_ms_text(50, out, sizeof out), "50 ms");
	static const int outside[] = {-1, LK_ERR_COUNT, LK_ERR_COUNT + 1, 1000, INT_MAX, INT_MIN};

	for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
		const struct lk_error *row = lk_error((enum lk_err)outside[i]);

		if (!row || !row->msg || row->http != 500)
			fail_msg("lk_error(%d): %s, want the LK_E_EIO row", outside[i],
			         row ? "wrong row" : "NULL");
	}
}

/* The double just below a positive x (nextafter(x, 0) without libm). */
static double below(double x)
{
	uint64_t b;
	memcpy(&b, &x, sizeof b);
	b--;
	memcpy(&x, &b, sizeof b);
	return x;
}

/* core/decimal: the powers and logarithms of ten that replaced libm's pow and log10. */
static void test_decimal(void **state)
{
	(void)state;
	static const double exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	static const double neg[] = {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11};
	for (int i = 0; i < 23; i++) {
		assert_true(dec_pow10(i) == exact[i]); /* bit for bit, as the literal */
		assert_int_equal(dec_floor_log10(exact[i]), i);
		assert_int_equal(dec_floor_log10(below(exact[i])), i - 1); /* just below */
		assert_int_equal(dec_floor_log10(exact[i] * 9.99), i);
		assert_true(fabs(dec_log10(exact[i]) - i) < 1e-14);
	}
	for (int i = 0; i < 11; i++) {
		assert_true(dec_pow10(-(i + 1)) == neg[i]);
		assert_int_equal(dec_floor_log10(neg[i]), -(i + 1));
		assert_int_equal(dec_floor_log10(below(neg[i])), -(i + 2));
	}
	assert_int_equal(dec_floor_log10(1e300), 300);
	assert_int_equal(dec_floor_log10(1.7e308), 308);
	assert_int_equal(dec_floor_log10(4.9e-324), -324); /* the smallest subnormal */
	assert_int_equal(dec_floor_log10(0), 0);
	assert_int_equal(dec_floor_log10(-5), 0);
	assert_int_equal(dec_floor_log10(NAN), 0);
	assert_int_equal(dec_floor_log10(INFINITY), 0);
	/* against known values (Python's math.log10), to double precision */
	static const struct {
		double x, l;
	} known[] = {{2, 0.30102999566398120},
	             {3, 0.47712125471966244},
	             {0.5, -0.30102999566398120},
	             {123456.789, 5.09151497716927},
	             {1e-5, -5},
	             {7.5, 0.87506126339170009},
	             {1.0000001, 4.3429446044209946e-8},
	             {0.999, -4.345117740176917e-4}};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		assert_true(fabs(dec_log10(known[i].x) - known[i].l) <= 1e-15 * (1 + fabs(known[i].l)));
	assert_true(dec_log10(0) == -HUGE_VAL && dec_log10(-1) == -HUGE_VAL);
	assert_true(isnan(dec_log10(NAN)) && dec_log10(INFINITY) == INFINITY);
}

#define FX(f)   cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
#define TREE(f) cmocka_unit_test_setup_teardown(f, tree_setup, tree_teardown)

/* A file of n patterned bytes (unlinked: only the fd remains). */
static int filesend_file(size_t n)
{
	char path[] = "/tmp/lk-filesend-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	char *b = malloc(n ? n : 1);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(i * 7 + i / 251);
	assert_int_equal(pwrite(fd, b, n, 0), (ssize_t)n);
	free(b);
	return fd;
}

/* A non-blocking socket pair for filesend: sv[0]'s send buffer set to buf, and sv[1]'s
 * receive buffer too when roomy (else the writer fills up again and again). */
static void filesend_pair(int sv[2], int buf, int roomy)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	if (roomy)
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
}

/* Drains what the reader end holds into got at *have. */
static void filesend_drain(int rd, char *got, size_t *have, size_t cap)
{
	for (;;) {
		ssize_t r = recv(rd, got + *have, cap - *have, MSG_DONTWAIT);
		if (r <= 0)
			return;
		*have += (size_t)r;
	}
}

/* Both ways (sendfile, and copying) send bytes [off, off + len) of the file exactly,
 * through a socket that fills up again and again (small max, a small buffer): what
 * a full socket did not take is neither lost nor sent twice. */
static void test_filesend_exact(void **state)
{
	(void)state;
	const size_t n = 3 * FILESEND_CHUNK + 4321, off = 777;
	for (int copy = 0; copy < 2; copy++) {
		int fd = filesend_file(n);
		int sv[2];
		filesend_pair(sv, 16384, 0);
		struct filesend f;
		filesend_init(&f);
		atomic_size_t count = 0;
		filesend_start(&f, fd, off, n - off, copy, &count);
		assert_null(f.mem); /* taken at the first send, not before */
		assert_int_equal(atomic_load(&count), 0);
		char *got = malloc(n);
		assert_non_null(got);
		size_t have = 0;
		unsigned full = 0;
		while (filesend_left(&f)) {
			ssize_t w = filesend_send(&f, sv[0], 50000);
			if (w < 0) {
				assert_int_equal(errno, EAGAIN);
				full++;
				filesend_drain(sv[1], got, &have, n);
				continue;
			}
			assert_true(w > 0 && w <= 50000);
			assert_int_equal(f.mem != NULL, copy);
			assert_int_equal(atomic_load(&count), copy ? FILESEND_CHUNK : 0);
		}
		filesend_drain(sv[1], got, &have, n);
		assert_true(full > 0); /* the socket did fill up */
		assert_int_equal(have, n - off);
		for (size_t i = 0; i < have; i++)
			if (got[i] != (char)((i + off) * 7 + (i + off) / 251))
				fail_msg("copy=%d: byte %zu differs", copy, i);
		filesend_end(&f);
		assert_int_equal(f.fd, -1);
		assert_null(f.mem);
		assert_int_equal(atomic_load(&count), 0);
		assert_int_equal(fcntl(fd, F_GETFD), -1); /* the file was closed */
		free(got);
		close(sv[0]);
		close(sv[1]);
	}
}

/* A file cut short under a transfer: 0 (the promised length cannot be sent), never a
 * hang or bytes made up. */
static void test_filesend_shrunk(void **state)
{
	(void)state;
	for (int copy = 0; copy < 2; copy++) {
		int fd = filesend_file(FILESEND_CHUNK * 2);
		int sv[2];
		filesend_pair(sv, 4 << 20, 1);
		struct filesend f;
		filesend_init(&f);
		filesend_start(&f, fd, 0, FILESEND_CHUNK * 2, copy, NULL);
		assert_int_equal(ftruncate(fd, 1000), 0);
		ssize_t w = filesend_send(&f, sv[0], FILESEND_CHUNK * 2);
		assert_int_equal(w, 1000);
		assert_int_equal(filesend_send(&f, sv[0], FILESEND_CHUNK * 2), 0);
		assert_true(filesend_left(&f) > 0);
		filesend_end(&f);
		close(sv[0]);
		close(sv[1]);
	}
}

/* The copies' memory has its budget (FILESEND_MEM_MAX), taken at the first send: past
 * it the file goes by sendfile, and its bytes arrive all the same; a transfer that
 * never sends holds nothing. */
static void test_filesend_memory_full(void **state)
{
	(void)state;
	atomic_size_t count = FILESEND_MEM_MAX - FILESEND_CHUNK + 1;
	int sv[2];
	filesend_pair(sv, 1 << 20, 1);
	struct filesend f;
	filesend_init(&f);
	filesend_start(&f, filesend_file(FILESEND_CHUNK), 0, FILESEND_CHUNK, 1, &count);
	size_t sent = 0;
	while (filesend_left(&f)) {
		ssize_t w = filesend_send(&f, sv[0], FILESEND_CHUNK);
		assert_true(w > 0);
		sent += (size_t)w;
		assert_null(f.mem);
	}
	assert_int_equal(sent, FILESEND_CHUNK);
	assert_int_equal(atomic_load(&count), FILESEND_MEM_MAX - FILESEND_CHUNK + 1);
	filesend_end(&f);
	/* one byte of room more: copied, counted, and given back at the end */
	count = FILESEND_MEM_MAX - FILESEND_CHUNK;
	filesend_start(&f, filesend_file(10), 0, 10, 1, &count);
	assert_int_equal(atomic_load(&count), FILESEND_MEM_MAX - FILESEND_CHUNK); /* not yet */
	assert_int_equal(filesend_send(&f, sv[0], 100), 10);
	assert_non_null(f.mem);
	assert_int_equal(atomic_load(&count), FILESEND_MEM_MAX);
	filesend_end(&f);
	assert_int_equal(atomic_load(&count), FILESEND_MEM_MAX - FILESEND_CHUNK);
	/* a transfer ended before its first send held nothing */
	filesend_start(&f, filesend_file(10), 0, 10, 1, &count);
	filesend_end(&f);
	assert_int_equal(atomic_load(&count), FILESEND_MEM_MAX - FILESEND_CHUNK);
	close(sv[0]);
	close(sv[1]);
}

/* Who is copied to: loopback peers, from FILESEND_COPY_MIN bytes. */
static void test_filesend_wants_copy(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(net_parse_addr("127.0.0.1", 1, &ss, &len), 0);
	assert_true(filesend_wants_copy(&ss, FILESEND_COPY_MIN));
	assert_false(filesend_wants_copy(&ss, FILESEND_COPY_MIN - 1));
	assert_int_equal(net_parse_addr("::1", 1, &ss, &len), 0);
	assert_true(filesend_wants_copy(&ss, 1ull << 40));
	assert_int_equal(net_parse_addr("192.0.2.1", 1, &ss, &len), 0);
	assert_false(filesend_wants_copy(&ss, 1ull << 30));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buf_limits),
	        cmocka_unit_test(test_decimal),
	        cmocka_unit_test(test_filesend_exact),
	        cmocka_unit_test(test_filesend_shrunk),
	        cmocka_unit_test(test_filesend_memory_full),
	        cmocka_unit_test(test_filesend_wants_copy),
	        cmocka_unit_test(test_buf_append_empty),
	        cmocka_unit_test(test_buf_pool),
	        cmocka_unit_test(test_buf_space_huge_need),
	        cmocka_unit_test(test_buf_space_compacts),
	        cmocka_unit_test(test_buf_consume),
	        cmocka_unit_test(test_buf_printf),
	        cmocka_unit_test(test_buf_printf_fills_to_max),
	        cmocka_unit_test(test_json_nested),
	        cmocka_unit_test(test_json_escape),
	        cmocka_unit_test(test_json_invalid_utf8),
	        cmocka_unit_test(test_json_every_byte),
	        cmocka_unit_test(test_json_generated_strings),
	        cmocka_unit_test(test_json_double),
	        cmocka_unit_test(test_json_buffer_limit),
	        cmocka_unit_test(test_json_writer_depth),
	        cmocka_unit_test(test_json_valid),
	        FX(test_loop_timer_order),
	        FX(test_loop_timer_stop),
	        FX(test_loop_busy_poll_sleeps_when_idle),
	        FX(test_loop_timer_rearm),
	        FX(test_loop_timer_stop_other_in_cb),
	        FX(test_loop_timer_heap),
	        FX(test_loop_defer),
	        FX(test_loop_wake),
	        FX(test_loop_io_restart_in_batch),
	        FX(test_loop_post),
	        FX(test_loop_post_burst_lets_descriptors_in),
	        FX(test_loop_io_readable),
	        FX(test_loop_io_events),
	        FX(test_loop_io_stop_drops_pending),
	        FX(test_loop_io_close),
	        FX(test_loop_io_move),
	        FX(test_loop_io_move_in_batch),
	        FX(test_loop_io_reported),
	        FX(test_loop_touch),
	        FX(test_loop_batch_alone),
	        cmocka_unit_test(test_net_parse_addr),
	        cmocka_unit_test(test_net_loopback_wildcard),
	        cmocka_unit_test(test_net_is_ip_literal),
	        cmocka_unit_test(test_net_is_ip_literal_nul),
	        FX(test_net_listen),
	        TREE(test_fsroot_init),
	        TREE(test_fsroot_open),
	        TREE(test_fsroot_link_to_dotfile),
	        TREE(test_fsroot_upload),
	        TREE(test_fsroot_upload_errors),
	        TREE(test_fsroot_upload_longest_name),
	        TREE(test_fsroot_upload_named),
	        TREE(test_fsroot_upload_keeps_mode),
	        TREE(test_fsroot_sweep_temps),
	        TREE(test_dirsnap_order_and_filter),
	        TREE(test_dirsnap_shared_and_versions),
	        TREE(test_dirsnap_limits),
	        TREE(test_dirsnap_threads),
	        TREE(test_fsroot_remove),
	        TREE(test_fsroot_rename),
	        cmocka_unit_test(test_fsroot_hidden),
	        cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
