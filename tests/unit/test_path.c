/* test_path.c - unit tests of path normalisation, percent-decoding, MIME types and dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/parse.h"

/* Inputs are copied flush against a PROT_NONE page, so an over-read faults. */
struct guard {
	char *map;
	size_t maplen;
	size_t cap; /* usable bytes before the guard page */
};

static void guard_init(struct guard *g)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	g->cap = page;
	g->maplen = 2 * page;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect(g->map + g->cap, page, PROT_NONE), 0);
}

static char *guard_place(struct guard *g, const char *src, size_t len)
{
	char *p = g->map + g->cap - len;

	assert_true(len <= g->cap);
	memmove(p, src, len);
	return p;
}

static void guard_free(struct guard *g)
{
	munmap(g->map, g->maplen);
}

/*
 * http_path_normalize
 */

struct norm_case {
	const char *in;
	size_t len;   /* 0: strlen(in) */
	size_t outsz; /* 0: 256 */
	int want;
	const char *out;
	int trailing;
};

#define BIG 0 /* outsz 256 */

static const struct norm_case norm_cases[] = {
        {"/", 0, BIG, HTTP_PATH_OK, "", 1},
        {"//", 0, BIG, HTTP_PATH_OK, "", 1},
        {"//a", 0, BIG, HTTP_PATH_OK, "a", 0},
        {"/a", 0, BIG, HTTP_PATH_OK, "a", 0},
        {"/a/", 0, BIG, HTTP_PATH_OK, "a", 1},
        {"/a/b", 0, BIG, HTTP_PATH_OK, "a/b", 0},
        {"/a//b//", 0, BIG, HTTP_PATH_OK, "a/b", 1},
        {"/a/./b", 0, BIG, HTTP_PATH_OK, "a/b", 0},
        {"/a//./b", 0, BIG, HTTP_PATH_OK, "a/b", 0},
        {"/./a/././b/.", 0, BIG, HTTP_PATH_OK, "a/b", 1},
        {"/a/../b", 0, BIG, HTTP_PATH_OK, "b", 0},
        {"/a/b/../c", 0, BIG, HTTP_PATH_OK, "a/c", 0},
        {"/a/b/..", 0, BIG, HTTP_PATH_OK, "a", 1},
        {"/a/b/.", 0, BIG, HTTP_PATH_OK, "a/b", 1},
        {"/a/..", 0, BIG, HTTP_PATH_OK, "", 1},
        {"/a/../", 0, BIG, HTTP_PATH_OK, "", 1},
        {"/.", 0, BIG, HTTP_PATH_OK, "", 1},
        {"/a/b/../../c/", 0, BIG, HTTP_PATH_OK, "c", 1},
        {"/...", 0, BIG, HTTP_PATH_OK, "...", 0},
        {"/a/..b/c..", 0, BIG, HTTP_PATH_OK, "a/..b/c..", 0},
        {"/.a/.git/config", 0, BIG, HTTP_PATH_OK, ".a/.git/config", 0},
        {"/..", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/../", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/../x", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/a/../../x", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/a/./../b/../..", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/a/%2e%2e/%2e%2e/x", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/%2E%2E", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/.%2e/x", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/..%2fx", 0, BIG, HTTP_PATH_ESCAPES, NULL, 0},
        {"/a/%2e%2e/b", 0, BIG, HTTP_PATH_OK, "b", 0},
        {"/%2e", 0, BIG, HTTP_PATH_OK, "", 1},
        /* %2F is a separator like '/' */
        {"/a%2fb", 0, BIG, HTTP_PATH_OK, "a/b", 0},
        {"/a%2Fb", 0, BIG, HTTP_PATH_OK, "a/b", 0},
        {"/a%2f", 0, BIG, HTTP_PATH_OK, "a", 1},
        {"/%2f%2f", 0, BIG, HTTP_PATH_OK, "", 1},
        {"/a%2f..%2fb", 0, BIG, HTTP_PATH_OK, "b", 0},
        /* decoding */
        {"/a%20b", 0, BIG, HTTP_PATH_OK, "a b", 0},
        {"/caf%C3%a9", 0, BIG, HTTP_PATH_OK, "caf\xc3\xa9", 0},
        {"/a+b", 0, BIG, HTTP_PATH_OK, "a+b", 0},
        {"/%41%7e", 0, BIG, HTTP_PATH_OK, "A~", 0},
        {"/%25", 0, BIG, HTTP_PATH_OK, "%", 0},
        {"/%2525", 0, BIG, HTTP_PATH_OK, "%25", 0},
        {"/a?b", 0, BIG, HTTP_PATH_OK, "a?b", 0}, /* the caller cuts the query */
        /* backslashes are ordinary bytes */
        {"/a\\b", 0, BIG, HTTP_PATH_OK, "a\\b", 0},
        {"/..\\x", 0, BIG, HTTP_PATH_OK, "..\\x", 0},
        {"/a%5c..%5cb", 0, BIG, HTTP_PATH_OK, "a\\..\\b", 0},
        /* malformed */
        {"/%00", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/a%00b", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/a\0b", 4, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/%zz", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/%g0", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/%4", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/a%2", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/%", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/%%41", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"/% 41", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"a/b", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"*", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"http://h/a", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        {"%2fa", 0, BIG, HTTP_PATH_BAD, NULL, 0},
        /* output size: the result and its NUL must fit */
        {"/abc", 0, 3, HTTP_PATH_TOO_LONG, NULL, 0},
        {"/abc", 0, 4, HTTP_PATH_OK, "abc", 0},
        {"/a/b", 0, 3, HTTP_PATH_TOO_LONG, NULL, 0},
        {"/a/b", 0, 4, HTTP_PATH_OK, "a/b", 0},
        {"/a/b/", 0, 4, HTTP_PATH_OK, "a/b", 1},
        {"/%41%42%43", 0, 4, HTTP_PATH_OK, "ABC", 0},
        {"/%41%42%43", 0, 3, HTTP_PATH_TOO_LONG, NULL, 0},
        {"/", 0, 1, HTTP_PATH_OK, "", 1},
        {"/a", 0, 1, HTTP_PATH_TOO_LONG, NULL, 0},
        {"////", 0, 1, HTTP_PATH_OK, "", 1},
        {"/./.", 0, 1, HTTP_PATH_OK, "", 1},
        {"/a/..", 0, 1, HTTP_PATH_OK, "", 1},
        {"/a/b/../..", 0, 2, HTTP_PATH_OK, "", 1},
        /* what does not fit may still be removed by a later ".." */
        {"/aaaaaaaa/../b", 0, 2, HTTP_PATH_OK, "b", 0},
        {"/a/bbbbbbbb/cc/../../d", 0, 4, HTTP_PATH_OK, "a/d", 0},
        {"/aaaaaaaa/b/../..", 0, 1, HTTP_PATH_OK, "", 1},
        {"/aaaaaaaa/../..", 0, 4, HTTP_PATH_ESCAPES, NULL, 0},
        /* errors in the input come before "too long" */
        {"/aaaaaaaa/%zz", 0, 4, HTTP_PATH_BAD, NULL, 0},
        {"/%00", 0, 1, HTTP_PATH_BAD, NULL, 0},
};

static void test_normalize_table(void **state)
{
	struct guard g;
	char out[300];
	size_t i;

	(void)state;
	guard_init(&g);
	for (i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		const struct norm_case *c = &norm_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		size_t outsz = c->outsz ? c->outsz : 256;
		const char *in = guard_place(&g, c->in, len);
		int trailing = -1, r;

		/* out is written only within outsz: poison the rest and check it */
		memset(out, 0x5a, sizeof(out));
		r = http_path_normalize(in, len, out, outsz, &trailing);
		if (r != c->want)
			fail_msg("row %zu \"%s\" (outsz %zu): got %d, want %d", i, c->in, outsz, r, c->want);
		if (r == HTTP_PATH_OK && (strcmp(out, c->out) != 0 || trailing != c->trailing))
			fail_msg("row %zu \"%s\": got \"%s\" trailing %d, want \"%s\" trailing %d", i, c->in,
			         out, trailing, c->out, c->trailing);
		if (out[outsz] != 0x5a)
			fail_msg("row %zu \"%s\": wrote past outsz %zu", i, c->in, outsz);
	}
	guard_free(&g);
}

/* outsz 0: nothing can be written, not even the NUL. */
static void test_normalize_zero_out(void **state)
{
	char out[1] = {0x5a};
	int t;

	(void)state;
	assert_int_equal(http_path_normalize("/", 1, out, 0, &t), HTTP_PATH_TOO_LONG);
	assert_int_equal(http_path_normalize("/a/..", 5, out, 0, &t), HTTP_PATH_TOO_LONG);
	assert_int_equal(http_path_normalize("/%00", 4, out, 0, &t), HTTP_PATH_BAD);
	assert_int_equal(http_path_normalize("/..", 3, out, 0, &t), HTTP_PATH_ESCAPES);
	assert_int_equal(out[0], 0x5a);
}

static void test_dot_segment(void **state)
{
	static const struct {
		const char *norm;
		int want;
	} cases[] = {
	        {".git", 1},    {"a/.env", 1},  {"a/b/.hidden/c", 1},
	        {"...", 1},     {"a/..b", 1},   {".", 1},
	        {"", 0},        {"a", 0},       {"a/b", 0},
	        {"a.b/c", 0},   {"a/b.", 0},    {"a/b/c.d", 0},
	        {"a\\.git", 0}, {"a/b\\.c", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (http_path_has_dot_segment(cases[i].norm) != cases[i].want)
			fail_msg("row %zu \"%s\": want %d", i, cases[i].norm, cases[i].want);
}

/*
 * http_percent_decode
 */

static void test_percent_decode(void **state)
{
	static const struct {
		const char *in;
		int plus;
		size_t outsz;
		ssize_t want;
		const char *out;
	} cases[] = {
	        {"", 0, 16, 0, ""},
	        {"abc", 0, 16, 3, "abc"},
	        {"a%20b", 0, 16, 3, "a b"},
	        {"a+b", 1, 16, 3, "a b"},
	        {"a+b", 0, 16, 3, "a+b"},
	        {"%2B+%2b", 1, 16, 3, "+ +"},
	        {"%41%42", 0, 16, 2, "AB"},
	        {"%e2%82%AC", 0, 16, 3, "\xe2\x82\xac"},
	        {"%00", 0, 16, 1, ""}, /* a NUL byte: the length tells */
	        {"%2f%2F", 0, 16, 2, "//"},
	        {"%zz", 0, 16, -1, NULL},
	        {"%4", 0, 16, -1, NULL},
	        {"%", 0, 16, -1, NULL},
	        {"a%", 0, 16, -1, NULL},
	        {"%%", 0, 16, -1, NULL},
	        {"%-1", 0, 16, -1, NULL},
	        {"abc", 0, 3, 3, "abc"},
	        {"abc", 0, 2, -1, NULL},
	        {"%41%42%43", 0, 3, 3, "ABC"},
	        {"%41%42%43", 0, 2, -1, NULL},
	        {"a", 0, 0, -1, NULL},
	        {"", 0, 0, 0, ""},
	};
	struct guard g;
	char out[32];
	size_t i;

	(void)state;
	guard_init(&g);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		const char *in = guard_place(&g, cases[i].in, len);
		ssize_t r;

		memset(out, 0x5a, sizeof(out));
		r = http_percent_decode(in, len, out, cases[i].outsz, cases[i].plus);
		if (r != cases[i].want)
			fail_msg("row %zu \"%s\": got %zd, want %zd", i, cases[i].in, r, cases[i].want);
		if (r >= 0 && memcmp(out, cases[i].out, (size_t)r) != 0)
			fail_msg("row %zu \"%s\": got \"%.*s\"", i, cases[i].in, (int)r, out);
		if (out[cases[i].outsz] != 0x5a)
			fail_msg("row %zu \"%s\": wrote past outsz", i, cases[i].in);
	}
	guard_free(&g);
}

/*
 * http_mime_type
 */

#define UTF8 "; charset=utf-8"

static void test_mime(void **state)
{
	/* Every extension in the table (a lookup that misses here means the table in
	 * mime.c is out of order), then the edge cases. */
	static const struct {
		const char *name;
		const char *type;
	} cases[] = {
	        {"a.7z", "application/x-7z-compressed"},
	        {"a.aac", "audio/aac"},
	        {"a.apk", "application/vnd.android.package-archive"},
	        {"a.atom", "application/atom+xml" UTF8},
	        {"a.avif", "image/avif"},
	        {"a.bin", "application/octet-stream"},
	        {"a.bmp", "image/bmp"},
	        {"a.bz2", "application/x-bzip2"},
	        {"a.c", "text/plain" UTF8},
	        {"a.cjs", "text/javascript" UTF8},
	        {"a.cpp", "text/plain" UTF8},
	        {"a.css", "text/css" UTF8},
	        {"a.csv", "text/csv" UTF8},
	        {"a.deb", "application/vnd.debian.binary-package"},
	        {"a.dmg", "application/x-apple-diskimage"},
	        {"a.doc", "application/msword"},
	        {"a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	        {"a.eot", "application/vnd.ms-fontobject"},
	        {"a.epub", "application/epub+zip"},
	        {"a.exe", "application/vnd.microsoft.portable-executable"},
	        {"a.flac", "audio/flac"},
	        {"a.gif", "image/gif"},
	        {"a.go", "text/plain" UTF8},
	        {"a.gz", "application/gzip"},
	        {"a.h", "text/plain" UTF8},
	        {"a.htm", "text/html" UTF8},
	        {"a.html", "text/html" UTF8},
	        {"a.ico", "image/x-icon"},
	        {"a.ics", "text/calendar" UTF8},
	        {"a.ini", "text/plain" UTF8},
	        {"a.iso", "application/x-iso9660-image"},
	        {"a.jar", "application/java-archive"},
	        {"a.java", "text/plain" UTF8},
	        {"a.jpeg", "image/jpeg"},
	        {"a.jpg", "image/jpeg"},
	        {"a.js", "text/javascript" UTF8},
	        {"a.json", "application/json" UTF8},
	        {"a.jsonld", "application/ld+json" UTF8},
	        {"a.log", "text/plain" UTF8},
	        {"a.m3u8", "application/vnd.apple.mpegurl"},
	        {"a.m4a", "audio/mp4"},
	        {"a.map", "application/json" UTF8},
	        {"a.md", "text/markdown" UTF8},
	        {"a.mjs", "text/javascript" UTF8},
	        {"a.mov", "video/quicktime"},
	        {"a.mp3", "audio/mpeg"},
	        {"a.mp4", "video/mp4"},
	        {"a.odp", "application/vnd.oasis.opendocument.presentation"},
	        {"a.ods", "application/vnd.oasis.opendocument.spreadsheet"},
	        {"a.odt", "application/vnd.oasis.opendocument.text"},
	        {"a.oga", "audio/ogg"},
	        {"a.ogg", "audio/ogg"},
	        {"a.ogv", "video/ogg"},
	        {"a.opus", "audio/ogg"},
	        {"a.otf", "font/otf"},
	        {"a.pdf", "application/pdf"},
	        {"a.png", "image/png"},
	        {"a.ppt", "application/vnd.ms-powerpoint"},
	        {"a.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
	        {"a.py", "text/plain" UTF8},
	        {"a.rar", "application/vnd.rar"},
	        {"a.rs", "text/plain" UTF8},
	        {"a.rss", "application/rss+xml" UTF8},
	        {"a.rtf", "application/rtf"},
	        {"a.sh", "text/plain" UTF8},
	        {"a.svg", "image/svg+xml" UTF8},
	        {"a.tar", "application/x-tar"},
	        {"a.tgz", "application/gzip"},
	        {"a.tif", "image/tiff"},
	        {"a.tiff", "image/tiff"},
	        {"a.toml", "application/toml" UTF8},
	        {"a.ts", "text/plain" UTF8},
	        {"a.tsx", "text/plain" UTF8},
	        {"a.ttf", "font/ttf"},
	        {"a.txt", "text/plain" UTF8},
	        {"a.wasm", "application/wasm"},
	        {"a.wav", "audio/wav"},
	        {"a.webm", "video/webm"},
	        {"a.webmanifest", "application/manifest+json" UTF8},
	        {"a.webp", "image/webp"},
	        {"a.woff", "font/woff"},
	        {"a.woff2", "font/woff2"},
	        {"a.xhtml", "application/xhtml+xml" UTF8},
	        {"a.xls", "application/vnd.ms-excel"},
	        {"a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	        {"a.xml", "application/xml" UTF8},
	        {"a.xz", "application/x-xz"},
	        {"a.yaml", "application/yaml" UTF8},
	        {"a.yml", "application/yaml" UTF8},
	        {"a.zip", "application/zip"},
	        {"a.zst", "application/zstd"},

	        {"INDEX.HTML", "text/html" UTF8},
	        {"App.Js", "text/javascript" UTF8},
	        {"photo.JPEG", "image/jpeg"},
	        {"dir/sub/style.css", "text/css" UTF8},
	        {"/abs/path/index.html", "text/html" UTF8},
	        {"archive.tar.gz", "application/gzip"},
	        {"a.b.c.json", "application/json" UTF8},
	        {".eslintrc.json", "application/json" UTF8},
	        {"dir/.eslintrc.json", "application/json" UTF8},
	        {".bashrc", "application/octet-stream"},
	        {"dir/.bashrc", "application/octet-stream"},
	        {"Makefile", "application/octet-stream"},
	        {"dir.d/README", "application/octet-stream"},
	        {"file.", "application/octet-stream"},
	        {"a.unknown", "application/octet-stream"},
	        {"a.HTMLX", "application/octet-stream"},
	        {"a.averyveryverylongextension", "application/octet-stream"},
	        {"a.webmanifestwebmanifest", "application/octet-stream"},
	        {"a.j", "application/octet-stream"},
	        {"a.jsx", "application/octet-stream"},
	        {"", "application/octet-stream"},
	        {".", "application/octet-stream"},
	        {"..", "application/octet-stream"},
	        {"dir/", "application/octet-stream"},
	        {"a.\xc3\xa9", "application/octet-stream"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = http_mime_type(cases[i].name);

		if (strcmp(t, cases[i].type) != 0)
			fail_msg("row %zu \"%s\": got \"%s\", want \"%s\"", i, cases[i].name, t,
			         cases[i].type);
	}
}

/*
 * Dates
 */

static void test_date_format(void **state)
{
	static const struct {
		time_t t;
		const char *want;
	} cases[] = {
	        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
	        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
	        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
	        {1234567890, "Fri, 13 Feb 2009 23:31:30 GMT"},
	        {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},
	        {2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},
	        {4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"},
	        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
	        {-2208988800, "Mon, 01 Jan 1900 00:00:00 GMT"},
	        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
	        /* outside 0000-9999: clamped */
	        {253402300800, "Fri, 31 Dec 9999 23:59:59 GMT"},
	        {INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
	        {-62167219200, "Sat, 01 Jan 0000 00:00:00 GMT"},
	        {-62167219201, "Sat, 01 Jan 0000 00:00:00 GMT"},
	        {INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT"},
	};
	char out[31];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;

		memset(out, 0x5a, sizeof(out));
		n = http_date_format(cases[i].t, out);
		if (n != 29 || out[29] != '\0' || strcmp(out, cases[i].want) != 0 || out[30] != 0x5a)
			fail_msg("row %zu (%lld): got %zu \"%.29s\", want \"%s\"", i, (long long)cases[i].t,
			         n, out, cases[i].want);
	}
}

static void test_date_round_trip(void **state)
{
	struct guard g;
	uint64_t rng = 0x853c49e6748fea9bull;
	char out[30];
	int i;

	(void)state;
	guard_init(&g);
	for (i = 0; i < 20000; i++) {
		/* years 1900..2199: every day of the year and second of the day over time */
		time_t t, back = 0;
		const char *in;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		t = (time_t)(rng % (300ull * 365 * 86400)) - 2208988800;
		http_date_format(t, out);
		in = guard_place(&g, out, 29);
		if (http_date_parse(in, 29, &back) != 0 || back != t)
			fail_msg("%lld -> \"%s\" -> %lld", (long long)t, out, (long long)back);
	}
	guard_free(&g);
}

static void test_date_parse(void **state)
{
	static const struct {
		const char *in;
		int ok;
		time_t t;
	} cases[] = {
	        /* the three forms of RFC 9110 5.6.7 */
	        {"Sun, 06 Nov 1994 08:49:37 GMT", 1, 784111777},
	        {"Sunday, 06-Nov-94 08:49:37 GMT", 1, 784111777},
	        {"Sun Nov  6 08:49:37 1994", 1, 784111777},
	        {"Sun Nov 06 08:49:37 1994", 1, 784111777},
	        {"Thu, 01 Jan 1970 00:00:00 GMT", 1, 0},
	        {"Thursday, 01-Jan-70 00:00:00 GMT", 1, 0},
	        {"Thu Jan  1 00:00:00 1970", 1, 0},
	        {"Tuesday, 31-Dec-69 23:59:59 GMT", 1, 3155759999}, /* 2069: pivot at 70 */
	        {"Saturday, 01-Jan-00 00:00:00 GMT", 1, 946684800},
	        {"Wednesday, 31-Dec-08 23:59:59 GMT", 1, 1230767999},
	        {"Tue, 29 Feb 2000 00:00:00 GMT", 1, 951782400},
	        {"Tue Feb 29 00:00:00 2000", 1, 951782400},
	        {"Wed, 31 Dec 2008 23:59:60 GMT", 1, 1230768000}, /* leap second */
	        {"Mon, 01 Jan 1900 00:00:00 GMT", 1, -2208988800},
	        {"Fri, 31 Dec 9999 23:59:59 GMT", 1, 253402300799},
	        {"Mon, 06 Nov 1994 08:49:37 GMT", 1, 784111777}, /* weekday not checked */

	        {"", 0, 0},
	        {"Sun, 06 Nov 1994 08:49:37 UTC", 0, 0},
	        {"Sun, 06 Nov 1994 08:49:37 gmt", 0, 0},
	        {"sun, 06 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun, 06 nov 1994 08:49:37 GMT", 0, 0},
	        {"Son, 06 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun, 06 Nov 1994 08:49:37 GMT ", 0, 0},
	        {" Sun, 06 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun, 6 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun,  6 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun, 06 Nov 94 08:49:37 GMT", 0, 0},
	        {"Sun, 06 Nov 19x4 08:49:37 GMT", 0, 0},
	        {"Sun, 06 Nov 1994 08-49-37 GMT", 0, 0},
	        {"Sun, 06 Nov 1994 8:49:37 GMT", 0, 0},
	        {"Sun, 06 Nov 1994 24:00:00 GMT", 0, 0},
	        {"Sun, 06 Nov 1994 08:60:00 GMT", 0, 0},
	        {"Sun, 06 Nov 1994 08:49:61 GMT", 0, 0},
	        {"Sun, 00 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun, 31 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun, 32 Dec 1994 08:49:37 GMT", 0, 0},
	        {"Thu, 29 Feb 2001 00:00:00 GMT", 0, 0},
	        {"Thu, 29 Feb 1900 00:00:00 GMT", 0, 0},
	        {"Sun, -6 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sun,+06 Nov 1994 08:49:37 GMT", 0, 0},
	        {"Sunday, 06-Nov-1994 08:49:37 GMT", 0, 0},
	        {"Sundai, 06-Nov-94 08:49:37 GMT", 0, 0},
	        {"Sunday 06-Nov-94 08:49:37 GMT", 0, 0},
	        {"Sunday, 06 Nov 94 08:49:37 GMT", 0, 0},
	        {"Sunday, 06-Nov-94 08:49:37 UTC", 0, 0},
	        {"Sunday,", 0, 0},
	        {"Sun Nov  6 08:49:37 1994 ", 0, 0},
	        {"Sun Nov 6 08:49:37 1994", 0, 0},
	        {"Sun Nov  x 08:49:37 1994", 0, 0},
	        {"Sun Nov  6 08:49:37 94", 0, 0},
	        {"Sun Nov  6 08:49:37 GMT", 0, 0},
	        {"1994-11-06T08:49:37Z", 0, 0},
	        {"784111777", 0, 0},
	};
	struct guard g;
	size_t i;

	(void)state;
	guard_init(&g);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		const char *in = guard_place(&g, cases[i].in, len);
		time_t t = 12345;
		int r = http_date_parse(in, len, &t);

		if (cases[i].ok && (r != 0 || t != cases[i].t))
			fail_msg("row %zu \"%s\": got %d, %lld, want %lld", i, cases[i].in, r, (long long)t,
			         (long long)cases[i].t);
		if (!cases[i].ok && r != -1)
			fail_msg("row %zu \"%s\": parsed as %lld, want -1", i, cases[i].in, (long long)t);
		/* no prefix of a valid date is one */
		if (cases[i].ok && len > 0) {
			in = guard_place(&g, cases[i].in, len - 1);
			if (http_date_parse(in, len - 1, &t) != -1)
				fail_msg("row %zu: prefix of \"%s\" parsed", i, cases[i].in);
		}
	}
	guard_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_normalize_table),
	        cmocka_unit_test(test_normalize_zero_out),
	        cmocka_unit_test(test_dot_segment),
	        cmocka_unit_test(test_percent_decode),
	        cmocka_unit_test(test_mime),
	        cmocka_unit_test(test_date_format),
	        cmocka_unit_test(test_date_round_trip),
	        cmocka_unit_test(test_date_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
