/* test_multipart.c - unit tests of header parameters, multipart/form-data bodies and Digest responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/digest.h"
#include "http/multipart.h"

/* Inputs sit flush against a PROT_NONE page: a read past the end faults. */
static char *at_page_end(const char *s, size_t n, void **map, size_t *maplen)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), cap = (n + page - 1) / page * page + page;
	char *m = mmap(NULL, cap + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + cap, page, PROT_NONE), 0);
	memcpy(m + cap - n, s, n);
	*map = m;
	*maplen = cap + page;
	return m + cap - n;
}

static struct http_slice sl(const char *s)
{
	return (struct http_slice){s, strlen(s)};
}

static int slice_is(struct http_slice s, const char *want)
{
	return s.p && s.len == strlen(want) && !memcmp(s.p, want, s.len);
}

/* ---- parameters ---- */

static const struct param_case {
	const char *value;
	char sep;
	const char *name;
	const char *want; /* NULL: not found / malformed */
} param_cases[] = {
        {"form-data; name=\"a\"; filename=\"b.txt\"", ';', "name", "a"},
        {"form-data; name=\"a\"; filename=\"b.txt\"", ';', "filename", "b.txt"},
        {"form-data; NAME=x", ';', "name", "x"},
        {"multipart/form-data; boundary=\"quoted b\"", ';', "boundary", "quoted b"},
        {"multipart/form-data;boundary=tok", ';', "boundary", "tok"},
        {"form-data; name=\"a\\\"b\"", ';', "name", "a\\\"b"},
        {"form-data; filename=\"x\"", ';', "name", NULL},
        {"form-data; name=\"unterminated", ';', "name", NULL},
        {"form-data; a=1 junk; name=x", ';', "name", NULL},
        {"username=\"Mufasa\", realm=\"r\", nc=00000001", ',', "nc", "00000001"},
        {"username=\"Mufasa\", realm=\"r\", nc=00000001", ',', "realm", "r"},
        {"a = 1 , b = \"two\"", ',', "b", "two"},
        {"", ';', "name", NULL},
};

static void test_params(void **state)
{
	for (size_t i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		const struct param_case *c = &param_cases[i];
		void *map;
		size_t maplen, n = strlen(c->value);
		char *v = at_page_end(c->value, n, &map, &maplen);
		struct http_slice out = {NULL, 0};
		int r = http_param_find((struct http_slice){v, n}, c->sep, c->name, &out);
		if (c->want ? r != 0 || !slice_is(out, c->want) : r == 0)
			fail_msg("row %zu: %s [%s]: got %d '%.*s'", i, c->value, c->name, r, (int)out.len,
			         out.p ? out.p : "");
		munmap(map, maplen);
	}
	char buf[8];
	assert_int_equal(http_param_unquote(sl("a\\\"b\\\\c"), buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "a\"b\\c", 5);
	assert_int_equal(http_param_unquote(sl("123456789"), buf, sizeof(buf)), -1);
}

/* ---- multipart ---- */

struct mp_case {
	const char *name;
	const char *type;
	const char *body;
	int init;             /* http_multipart_init's result */
	int last;             /* the final result of http_multipart_next: 0 or -1 */
	const char *parts[8]; /* "name|filename|type|data" (filename "-" for none) */
};

static const struct mp_case mp_cases[] = {
        {"two fields",
         "multipart/form-data; boundary=XyZ",
         "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
         "--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\ntwo words\r\n--XyZ--\r\n",
         0,
         0,
         {"a|-||1", "b|-||two words"}},
        {"a file with a type",
         "multipart/form-data; boundary=\"q b\"",
         "--q b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n"
         "Content-Type: application/x-y\r\n\r\n\x01\xff--q b is not a delimiter\r\n--q b--",
         0,
         0,
         {"f|x.bin|application/x-y|\x01\xff--q b is not a delimiter"}},
        {"preamble and epilogue",
         "multipart/form-data; boundary=b",
         "preamble text\r\n--b\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--b--\r\nepilogue",
         0,
         0,
         {"k|-||v"}},
        {"empty value and padding",
         "multipart/form-data; boundary=b",
         "--b  \r\ncontent-disposition: form-data; name=k\r\n\r\n\r\n--b--",
         0,
         0,
         {"k|-||"}},
        {"no parts", "multipart/form-data; boundary=b", "--b--\r\n", 0, 0, {NULL}},
        {"no closing delimiter",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1",
         0,
         -1,
         {NULL}},
        {"no name",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--",
         0,
         -1,
         {NULL}},
        {"not form-data",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n1\r\n--b--",
         0,
         -1,
         {NULL}},
        {"no headers", "multipart/form-data; boundary=b", "--b\r\n\r\n1\r\n--b--", 0, -1, {NULL}},
        {"no blank line",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n1\r\n--b--",
         0,
         -1,
         {NULL}},
        {"no opening delimiter", "multipart/form-data; boundary=b", "just text", 0, -1, {NULL}},
        {"a boundary inside a longer word is data",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--bxx\r\n--b--",
         0,
         0,
         {"a|-||1\r\n--bxx"}},
        {"a bare LF ends a delimiter line",
         "multipart/form-data; boundary=b",
         "--b\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b \n"
         "Content-Disposition: form-data; name=\"c\"\r\n\r\n3\r\n--b--",
         0,
         0,
         {"a|-||1", "c|-||3"}},
        {"a CR without its LF after a boundary is data",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b\rX\r\n--b--",
         0,
         0,
         {"a|-||1\r\n--b\rX"}},
        {"second part broken",
         "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b\r\nno headers end",
         0,
         -1,
         {"a|-||1"}},
        {"other type", "multipart/mixed; boundary=b", "", -1, 0, {NULL}},
        {"no boundary", "multipart/form-data", "", -1, 0, {NULL}},
        {"empty boundary", "multipart/form-data; boundary=\"\"", "", -1, 0, {NULL}},
        {"boundary of 71",
         "multipart/form-data; boundary="
         "12345678901234567890123456789012345678901234567890123456789012345678901",
         "",
         -1,
         0,
         {NULL}},
        {"form-datax", "multipart/form-dataX; boundary=b", "", -1, 0, {NULL}},
};

static void check_part(const struct mp_case *c, size_t k, const struct http_mp_part *p)
{
	char want[256];
	snprintf(want, sizeof(want), "%s", c->parts[k]);
	char *f[4], *s = want;
	for (int i = 0; i < 3; i++) {
		f[i] = s;
		s = strchr(s, '|');
		*s++ = 0;
	}
	f[3] = s;
	if (!slice_is(p->name, f[0]) ||
	    (strcmp(f[1], "-") ? !slice_is(p->filename, f[1]) : p->filename.p != NULL) ||
	    (*f[2] ? !slice_is(p->type, f[2]) : p->type.len != 0) ||
	    (p->data.len != strlen(f[3]) || memcmp(p->data.p, f[3], p->data.len)))
		fail_msg("%s: part %zu: name '%.*s' filename '%.*s' type '%.*s' data '%.*s'", c->name, k,
		         (int)p->name.len, p->name.p, (int)p->filename.len,
		         p->filename.p ? p->filename.p : "", (int)p->type.len, p->type.p ? p->type.p : "",
		         (int)p->data.len, p->data.p);
}

static void test_multipart(void **state)
{
	for (size_t i = 0; i < sizeof(mp_cases) / sizeof(mp_cases[0]); i++) {
		const struct mp_case *c = &mp_cases[i];
		size_t n = strlen(c->body);
		void *map;
		size_t maplen;
		char *b = at_page_end(c->body, n, &map, &maplen);
		struct http_mp m;
		int r = http_multipart_init(&m, sl(c->type), b, n);
		if (r != c->init)
			fail_msg("%s: init %d, want %d", c->name, r, c->init);
		if (r == 0) {
			struct http_mp_part p;
			size_t k = 0;
			while ((r = http_multipart_next(&m, &p)) > 0) {
				if (k >= 8 || !c->parts[k])
					fail_msg("%s: an extra part", c->name);
				check_part(c, k++, &p);
			}
			if (r != c->last || (k < 8 && c->parts[k]))
				fail_msg("%s: ended %d after %zu parts", c->name, r, k);
			assert_int_equal(http_multipart_next(&m, &p), r < 0 ? -1 : 0);
		}
		munmap(map, maplen);
	}
}

static void test_multipart_head_limit(void **state)
{
	static char body[HTTP_MP_MAX_HEAD + 200];
	int n = snprintf(body, sizeof(body), "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: ");
	memset(body + n, 'p', HTTP_MP_MAX_HEAD);
	memcpy(body + n + HTTP_MP_MAX_HEAD, "\r\n\r\nv\r\n--b--", 13);
	struct http_mp m;
	struct http_mp_part p;
	assert_int_equal(http_multipart_init(&m, sl("multipart/form-data; boundary=b"), body, strlen(body)),
	                 0);
	assert_int_equal(http_multipart_next(&m, &p), -1);
}

/* ---- Digest (RFC 7616 3.9.1's example, both algorithms) ---- */

static void test_digest_rfc7616_example(void **state)
{
	static const struct {
		const char *alg, *response;
	} rows[] = {
	        {"MD5", "8ca523f5e9506fed4657c9700eebdbec"},
	        {"SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	};
	for (size_t i = 0; i < 2; i++) {
		char hdr[1024], out[HTTP_DIGEST_HEX_MAX];
		snprintf(
		        hdr, sizeof(hdr),
		        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", "
		        "uri=\"/dir/index.html\", "
		        "algorithm=%s, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, "
		        "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"%s\", "
		        "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
		        rows[i].alg, rows[i].response);
		struct http_digest_creds cr;
		enum http_digest_alg a;
		int sess;
		assert_int_equal(http_digest_parse(sl(hdr), &cr), 0);
		assert_int_equal(http_digest_alg_parse(cr.algorithm.p, cr.algorithm.len, &a, &sess), 0);
		assert_int_equal(sess, 0);
		assert_int_equal(http_digest_response(&cr, a, sess, "Mufasa", "Circle of Life", sl("GET"),
		                                      NULL, 0, out),
		                 0);
		assert_string_equal(out, rows[i].response);
		assert_true(slice_is(cr.response, rows[i].response));
	}
}

static void test_digest_parse_errors(void **state)
{
	struct http_digest_creds cr;
	enum http_digest_alg a;
	int sess;
	assert_int_equal(http_digest_parse(sl("Basic dTpw"), &cr), -1);
	assert_int_equal(
	        http_digest_parse(sl("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\""), &cr), -1);
	assert_int_equal(http_digest_parse(sl("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", "
	                                      "response=\"x\", qop=auth"),
	                                   &cr),
	                 -1); /* qop without cnonce and nc */
	assert_int_equal(http_digest_parse(sl("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", "
	                                      "response=\"x\", userhash=true"),
	                                   &cr),
	                 0);
	assert_int_equal(cr.userhash, 1);
	assert_int_equal(http_digest_alg_parse("sha-256-SESS", 12, &a, &sess), 0);
	assert_int_equal(a, HTTP_DIGEST_SHA256);
	assert_int_equal(sess, 1);
	assert_int_equal(http_digest_alg_parse("SHA-1", 5, &a, &sess), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_params),
	        cmocka_unit_test(test_multipart),
	        cmocka_unit_test(test_multipart_head_limit),
	        cmocka_unit_test(test_digest_rfc7616_example),
	        cmocka_unit_test(test_digest_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
