/* test_parse.c - unit tests of the request-head parser, the chunked decoder and Range. */
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

#include "guard.h"

#include "http/parse.h"

/* How an input is cut into pieces: whole, byte by byte, or at random points. */
enum split_mode { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

struct split {
	enum split_mode mode;
	uint64_t rng; /* xorshift state for SPLIT_RANDOM */
};

static const char *split_name(const struct split *s)
{
	return s->mode == SPLIT_WHOLE ? "whole" : s->mode == SPLIT_BYTES ? "bytewise" : "random";
}

/* Size of the next piece when `left` bytes remain (left > 0). */
static size_t split_next(struct split *s, size_t left)
{
	size_t max;

	if (s->mode == SPLIT_WHOLE)
		return left;
	if (s->mode == SPLIT_BYTES)
		return 1;
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	max = left < 40 ? left : left / 4 > 40 ? left / 4 : 40;
	return 1 + (size_t)(s->rng % max);
}

static int slice_is(struct http_slice s, const char *str)
{
	return s.len == strlen(str) && memcmp(s.p, str, s.len) == 0;
}

/*
 * Request heads.
 */

#define EXPECT_OK                                                        \
	0 /* `expect` of a row that parses; otherwise an error status or \
	   * HTTP_PARSE_INCOMPLETE */

struct req_case {
	const char *name;
	const char *in;
	size_t len;      /* 0: strlen(in) */
	int expect;      /* EXPECT_OK, HTTP_PARSE_INCOMPLETE, or the error status */
	size_t consumed; /* EXPECT_OK: head length when less than the input */
	const char *method;
	const char *target;
	int minor;
	int nheaders;           /* -1: not checked */
	const char *hdrs[4][2]; /* the first headers, name and value */
};

#define BIN(s) .in = (s), .len = sizeof(s) - 1
#define ERR(name, in, status)                              \
	{                                                  \
		name, in, 0, status, 0, NULL, NULL, 0, -1, \
		{                                          \
			{                                  \
				NULL                       \
			}                                  \
		}                                          \
	}
#define ERRB(name, in, status)                               \
	{                                                    \
		name, BIN(in), status, 0, NULL, NULL, 0, -1, \
		{                                            \
			{                                    \
				NULL                         \
			}                                    \
		}                                            \
	}
#define MORE(name, in) ERR(name, in, HTTP_PARSE_INCOMPLETE)

static const struct req_case req_cases[] = {
        /* valid */
        {"simple",
         "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"Host", "example.com"}}},
        {"http/1.0 no headers",
         "GET /index.html HTTP/1.0\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/index.html",
         0,
         0,
         {{NULL}}},
        {"bare LF",
         "GET /a HTTP/1.1\nHost: x\nAccept: */*\n\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/a",
         1,
         2,
         {{"Host", "x"}, {"Accept", "*/*"}}},
        {"mixed line ends",
         "GET / HTTP/1.1\nA: 1\r\nB: 2\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         2,
         {{"A", "1"}, {"B", "2"}}},
        {"leading CRLFs",
         "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"Host", "a"}}},
        {"leading LFs", "\n\nPOST /p HTTP/1.0\n\n", 0, EXPECT_OK, 0, "POST", "/p", 0, 0, {{NULL}}},
        {"OWS stripped",
         "GET / HTTP/1.1\r\nX:  a b \t\r\nY:\tc\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         2,
         {{"X", "a b"}, {"Y", "c"}}},
        {"empty values",
         "GET / HTTP/1.1\r\nA:\r\nB: \r\nC:\t \t\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         3,
         {{"A", ""}, {"B", ""}, {"C", ""}}},
        {"obs-text value",
         "GET / HTTP/1.1\r\nX: caf\xc3\xa9 \xe2\x82\xac\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"X", "caf\xc3\xa9 \xe2\x82\xac"}}},
        {"HTAB inside value",
         "GET / HTTP/1.1\r\nX: a\tb\tc\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"X", "a\tb\tc"}}},
        {"long value",
         "GET / HTTP/1.1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
         "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                         "Gecko) Chrome/120.0 Safari/537.36"}}},
        {"pipelined",
         "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
         0,
         EXPECT_OK,
         28,
         "GET",
         "/1",
         1,
         1,
         {{"Host", "a"}}},
        {"body follows",
         "POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
         0,
         EXPECT_OK,
         39,
         "POST",
         "/u",
         1,
         1,
         {{"Content-Length", "5"}}},
        {"body with NUL and CR follows",
         BIN("PUT /u HTTP/1.1\r\n\r\n\0\r\rx"),
         EXPECT_OK,
         19,
         "PUT",
         "/u",
         1,
         0,
         {{NULL}}},
        {"token method",
         "M-SEARCH * HTTP/1.1\r\nMan: \"ssdp:discover\"\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "M-SEARCH",
         "*",
         1,
         1,
         {{"Man", "\"ssdp:discover\""}}},
        {"lower-case method is a token",
         "get / HTTP/1.1\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "get",
         "/",
         1,
         0,
         {{NULL}}},
        {"odd token method",
         "!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "!#$%&'*+-.^_`|~09azAZ",
         "/",
         1,
         0,
         {{NULL}}},
        {"absolute-form",
         "GET http://a.example:80/b?c=d HTTP/1.1\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "http://a.example:80/b?c=d",
         1,
         0,
         {{NULL}}},
        {"authority-form",
         "CONNECT a.example:443 HTTP/1.1\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "CONNECT",
         "a.example:443",
         1,
         0,
         {{NULL}}},
        {"target punctuation",
         "GET /a%20b/~c?x=1&y=[2]f!$'()*+,;=:@ HTTP/1.1\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/a%20b/~c?x=1&y=[2]f!$'()*+,;=:@",
         1,
         0,
         {{NULL}}},
        {"token header names",
         "GET / HTTP/1.1\r\nX-A_b!#$%&'*+.^`|~9: v\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"X-A_b!#$%&'*+.^`|~9", "v"}}},
        {"colon in value",
         "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         1,
         {{"Host", "[::1]:8080"}}},
        {"duplicate headers kept",
         "GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n",
         0,
         EXPECT_OK,
         0,
         "GET",
         "/",
         1,
         2,
         {{"A", "1"}, {"a", "2"}}},

        /* incomplete */
        MORE("empty input", ""),
        MORE("only CRLF", "\r\n"),
        MORE("only CR", "\r"),
        MORE("partial method", "GE"),
        MORE("partial version", "GET / HTTP/1."),
        MORE("request line only", "GET / HTTP/1.1\r\n"),
        MORE("CR ends input", "GET / HTTP/1.1\r\nHost: a\r\n\r"),
        {"partial header",
         "GET / HTTP/1.1\r\nHost: a",
         0,
         HTTP_PARSE_INCOMPLETE,
         0,
         NULL,
         NULL,
         0,
         -1,
         {{NULL}}},
        /* header errors wait for the head to complete (the result must not depend on the split) */
        MORE("bare CR, head incomplete", "GET / HTTP/1.1\r\nA: b\rc\r\n"),
        MORE("folding, head incomplete", "GET / HTTP/1.1\r\nA: b\r\n c\r\n"),

        /* request line errors */
        ERR("bare CR leading", "\rGET / HTTP/1.1\r\n\r\n", 400),
        ERR("bare CR after version", "GET / HTTP/1.1\rX", 400),
        ERR("bare CR before LF pair", "GET / HTTP/1.1\r\r\n\r\n", 400),
        ERR("empty method", " / HTTP/1.1\r\n\r\n", 400),
        ERR("control in method", "G\x01T / HTTP/1.1\r\n\r\n", 400),
        ERR("slash in method", "GE/T / HTTP/1.1\r\n\r\n", 400),
        ERR("tab after method", "GET\t/ HTTP/1.1\r\n\r\n", 400),
        ERR("method only", "GET\r\n\r\n", 400),
        ERR("double space", "GET  / HTTP/1.1\r\n\r\n", 400),
        ERR("HTTP/0.9 style", "GET /\r\n\r\n", 400),
        ERRB("NUL in target", "GET /a\0b HTTP/1.1\r\n\r\n", 400),
        ERR("DEL in target", "GET /a\x7f HTTP/1.1\r\n\r\n", 400),
        ERR("high byte in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400),
        ERR("tab in target", "GET /a\tb HTTP/1.1\r\n\r\n", 400),
        ERR("space in target", "GET /a b HTTP/1.1\r\n\r\n", 400),
        ERR("trailing space", "GET / HTTP/1.1 \r\n\r\n", 400),
        ERR("lower-case version", "GET / http/1.1\r\n\r\n", 400),
        ERR("other protocol", "GET / FOO/1.1\r\n\r\n", 400),
        ERR("version without minor", "GET / HTTP/2\r\n\r\n", 400),
        ERR("two-digit minor", "GET / HTTP/1.10\r\n\r\n", 400),
        ERR("letter version", "GET / HTTP/x.1\r\n\r\n", 400),
        ERR("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505),
        ERR("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505),
        ERR("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505),
        ERR("HTTP/3.0 head incomplete", "GET / HTTP/3.0\r\n", 505),
        ERR("bad request line, head incomplete", "GET  /", 400),
        ERR("TLS hello", "\x16\x03\x01\x02\x00\x01", 400),

        /* header errors */
        ERR("bare CR in value", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400),
        ERR("bare CR at value end", "GET / HTTP/1.1\r\nA: b\r\r\n\r\n", 400),
        ERR("bare CR as blank line", "GET / HTTP/1.1\r\nA: b\r\n\rX\n\n", 400),
        ERR("obs-fold", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400),
        ERR("obs-fold tab", "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", 400),
        {"space before first header",
         "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
         0,
         400,
         0,
         NULL,
         NULL,
         0,
         -1,
         {{NULL}}},
        ERR("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ERR("fragment in the target", "GET /a.txt#frag HTTP/1.1\r\n\r\n", 400),
        ERR("fragment after 8 plain bytes", "GET /abcdefghijklmnop?q#f HTTP/1.1\r\n\r\n", 400),
        ERR("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
        ERR("no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400),
        ERR("name only", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400),
        ERR("empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
        ERR("paren in name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400),
        ERR("high byte in name", "GET / HTTP/1.1\r\nH\xc3\xb6st: a\r\n\r\n", 400),
        ERRB("NUL in value", "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 400),
        ERRB("NUL in long value", "GET / HTTP/1.1\r\nA: abcdefghijklmnopqrstuvwxyz\0c\r\n\r\n", 400),
        ERR("SOH in value", "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400),
        ERR("DEL in value", "GET / HTTP/1.1\r\nA: 0123456789\x7f\r\n\r\n", 400),
        ERR("ESC in value", "GET / HTTP/1.1\r\nA: \x1b[31m\r\n\r\n", 400),
        ERR("first error wins", "GET / HTTP/1.1\r\nA: \x01\r\nB : c\r\n\r\n", 400),
};

/* Feeds `in` in pieces (as a connection would: the buffer grows, last_len is the
 * previous length, or 0 when `fresh`); returns the first result that is not
 * HTTP_PARSE_INCOMPLETE and sets *buf to where the input was placed. */
static int feed_request(struct guard *g, const char *in, size_t len, struct split *sp, int fresh,
                        struct http_request *req, const char **buf)
{
	size_t k = 0, last = 0;
	int r;

	do {
		k += len > k ? split_next(sp, len - k) : 0;
		*buf = guard_place(g, in, k);
		r = http_parse_request(*buf, k, req, fresh ? 0 : last);
		if (r != HTTP_PARSE_INCOMPLETE)
			return r;
		last = k;
	} while (k < len);
	return r;
}

static void check_request(const struct req_case *c, const char *in, size_t len, const char *mode, int r,
                          const struct http_request *req)
{
	size_t want_len = c->consumed ? c->consumed : len;
	int i;

	if (c->expect == HTTP_PARSE_INCOMPLETE) {
		if (r != HTTP_PARSE_INCOMPLETE)
			fail_msg("row \"%s\" [%s]: got %d (status %d, %s), want incomplete", c->name, mode, r,
			         req->error_status, req->error_reason ? req->error_reason : "-");
		return;
	}
	if (c->expect != EXPECT_OK) {
		if (r != HTTP_PARSE_ERROR || req->error_status != c->expect || !req->error_reason)
			fail_msg("row \"%s\" [%s]: got %d (status %d), want error %d", c->name, mode, r,
			         r == HTTP_PARSE_ERROR ? req->error_status : 0, c->expect);
		return;
	}
	if (r < 0 || (size_t)r != want_len)
		fail_msg("row \"%s\" [%s]: got %d (status %d, %s), want %zu", c->name, mode, r,
		         req->error_status, req->error_reason ? req->error_reason : "-", want_len);
	if (c->method && !slice_is(req->method, c->method))
		fail_msg("row \"%s\" [%s]: method \"%.*s\"", c->name, mode, (int)req->method.len,
		         req->method.p);
	if (c->target && !slice_is(req->target, c->target))
		fail_msg("row \"%s\" [%s]: target \"%.*s\"", c->name, mode, (int)req->target.len,
		         req->target.p);
	if (req->minor != c->minor)
		fail_msg("row \"%s\" [%s]: minor %d, want %d", c->name, mode, req->minor, c->minor);
	if (c->nheaders >= 0 && req->nheaders != (size_t)c->nheaders)
		fail_msg("row \"%s\" [%s]: %zu headers, want %d", c->name, mode, req->nheaders, c->nheaders);
	for (i = 0; i < 4 && c->hdrs[i][0]; i++) {
		const struct http_header *h = &req->headers[i];

		if (!slice_is(h->name, c->hdrs[i][0]) || !slice_is(h->value, c->hdrs[i][1]))
			fail_msg("row \"%s\" [%s]: header %d is \"%.*s\": \"%.*s\"", c->name, mode, i,
			         (int)h->name.len, h->name.p, (int)h->value.len, h->value.p);
	}
	/* Slices point into the buffer that was parsed. */
	if (c->method && (req->method.p < in || req->method.p >= in + len))
		fail_msg("row \"%s\" [%s]: method slice outside the buffer", c->name, mode);
}

/* Runs one row whole, byte by byte (resuming, and with every prefix parsed afresh)
 * and at random split points; all must agree. */
static void run_request_case(struct guard *g, const struct req_case *c, const char *in, size_t len)
{
	struct http_request req;
	struct split sp = {SPLIT_WHOLE, 0};
	const char *buf;
	int r, seed;

	sp.mode = SPLIT_WHOLE;
	r = feed_request(g, in, len, &sp, 0, &req, &buf);
	check_request(c, buf, len, "whole", r, &req);

	sp.mode = SPLIT_BYTES;
	r = feed_request(g, in, len, &sp, 0, &req, &buf);
	check_request(c, buf, len, "bytewise", r, &req);

	/* Parsing each prefix from scratch is quadratic: step through long inputs. */
	if (len <= 4096) {
		r = feed_request(g, in, len, &sp, 1, &req, &buf);
		check_request(c, buf, len, "bytewise-fresh", r, &req);
	}

	for (seed = 1; seed <= 8; seed++) {
		char mode[32];

		sp.mode = SPLIT_RANDOM;
		sp.rng = 0x9e3779b97f4a7c15ull * (uint64_t)seed;
		snprintf(mode, sizeof(mode), "%s seed %d", split_name(&sp), seed);
		r = feed_request(g, in, len, &sp, 0, &req, &buf);
		check_request(c, buf, len, mode, r, &req);
		r = feed_request(g, in, len, &sp, 1, &req, &buf);
		check_request(c, buf, len, mode, r, &req);
	}
}

static void test_request_table(void **state)
{
	struct guard g;
	size_t i;

	(void)state;
	guard_init(&g, 4096);
	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];

		run_request_case(&g, c, c->in, c->len ? c->len : strlen(c->in));
	}
	guard_free(&g);
}

/* Appends n copies of ch. */
static size_t put_rep(char *o, size_t at, int ch, size_t n)
{
	memset(o + at, ch, n);
	return at + n;
}

static size_t put_str(char *o, size_t at, const char *s)
{
	size_t n = strlen(s);

	memcpy(o + at, s, n);
	return at + n;
}

/* A request line, then one header "X: aaa..." padded so the head is `total` bytes,
 * then the blank line (or not, when !complete). */
static size_t build_padded(char *o, size_t total, int complete)
{
	size_t at = put_str(o, 0, "GET / HTTP/1.1\r\nX: ");
	size_t tail = complete ? 4 : 2;

	at = put_rep(o, at, 'a', total - at - tail);
	return put_str(o, at, complete ? "\r\n\r\n" : "\r\n");
}

/* Every limit in parse.h, just under and just over. */
static void test_request_limits(void **state)
{
	struct req_case c;
	struct guard g;
	char *in = malloc(64 * 1024);
	size_t at, i;

	(void)state;
	assert_non_null(in);
	guard_init(&g, 64 * 1024);

	memset(&c, 0, sizeof(c));
	c.name = "method of HTTP_MAX_METHOD";
	c.nheaders = 0;
	c.minor = 1;
	at = put_rep(in, 0, 'A', HTTP_MAX_METHOD);
	at = put_str(in, at, " / HTTP/1.1\r\n\r\n");
	run_request_case(&g, &c, in, at);

	memset(&c, 0, sizeof(c));
	c.name = "method over HTTP_MAX_METHOD";
	c.expect = 501;
	at = put_rep(in, 0, 'A', HTTP_MAX_METHOD + 1);
	at = put_str(in, at, " / HTTP/1.1\r\n\r\n");
	run_request_case(&g, &c, in, at);
	c.name = "method over HTTP_MAX_METHOD, line incomplete";
	run_request_case(&g, &c, in, HTTP_MAX_METHOD + 1);
	c.name = "method just at HTTP_MAX_METHOD, line incomplete";
	c.expect = HTTP_PARSE_INCOMPLETE;
	run_request_case(&g, &c, in, HTTP_MAX_METHOD);

	memset(&c, 0, sizeof(c));
	c.name = "target of HTTP_MAX_URI";
	c.minor = 1;
	c.nheaders = 1;
	at = put_str(in, 0, "GET /");
	at = put_rep(in, at, 'u', HTTP_MAX_URI - 1);
	at = put_str(in, at, " HTTP/1.1\r\nHost: a\r\n\r\n");
	run_request_case(&g, &c, in, at);
	assert_int_equal(strlen("GET ") + HTTP_MAX_URI + strlen(" HTTP/1.1\r\nHost: a\r\n\r\n"), at);

	memset(&c, 0, sizeof(c));
	c.name = "target over HTTP_MAX_URI";
	c.expect = 414;
	at = put_str(in, 0, "GET /");
	at = put_rep(in, at, 'u', HTTP_MAX_URI);
	at = put_str(in, at, " HTTP/1.1\r\nHost: a\r\n\r\n");
	run_request_case(&g, &c, in, at);
	c.name = "target over HTTP_MAX_URI, head incomplete";
	run_request_case(&g, &c, in, at - 2);
	c.name = "target over HTTP_MAX_URI, line incomplete";
	run_request_case(&g, &c, in, strlen("GET ") + HTTP_MAX_URI + 1);
	c.name = "target at HTTP_MAX_URI, line incomplete";
	c.expect = HTTP_PARSE_INCOMPLETE;
	run_request_case(&g, &c, in, strlen("GET ") + HTTP_MAX_URI);

	/* A huge target is 414, not 431, however long the line grows. */
	memset(&c, 0, sizeof(c));
	c.name = "target far over, no line end";
	c.expect = 414;
	at = put_str(in, 0, "GET /");
	at = put_rep(in, at, 'u', 20000);
	run_request_case(&g, &c, in, at);
	c.name = "target far over, complete";
	at = put_str(in, at, " HTTP/1.1\r\n\r\n");
	run_request_case(&g, &c, in, at);
	c.name = "version garbage after a short target";
	c.expect = 400;
	at = put_str(in, 0, "GET / HTTP/1.1");
	at = put_rep(in, at, '1', 20000);
	run_request_case(&g, &c, in, at);

	memset(&c, 0, sizeof(c));
	c.name = "HTTP_MAX_HEADERS fields";
	c.minor = 1;
	c.nheaders = HTTP_MAX_HEADERS;
	c.hdrs[0][0] = "H0";
	c.hdrs[0][1] = "v";
	at = put_str(in, 0, "GET / HTTP/1.1\r\n");
	for (i = 0; i < HTTP_MAX_HEADERS; i++)
		at += (size_t)sprintf(in + at, "H%zu: v\r\n", i);
	at = put_str(in, at, "\r\n");
	run_request_case(&g, &c, in, at);

	memset(&c, 0, sizeof(c));
	c.name = "over HTTP_MAX_HEADERS fields";
	c.expect = 431;
	at -= 2;
	at = put_str(in, at, "Hx: v\r\n\r\n");
	run_request_case(&g, &c, in, at);
	c.name = "over HTTP_MAX_HEADERS fields, head incomplete";
	c.expect = HTTP_PARSE_INCOMPLETE;
	run_request_case(&g, &c, in, at - 2);

	memset(&c, 0, sizeof(c));
	c.name = "head of HTTP_MAX_HEAD";
	c.minor = 1;
	c.nheaders = 1;
	at = build_padded(in, HTTP_MAX_HEAD, 1);
	assert_int_equal(at, HTTP_MAX_HEAD);
	run_request_case(&g, &c, in, at);
	c.name = "head of HTTP_MAX_HEAD, body follows";
	c.consumed = at;
	at = put_rep(in, at, 'b', 5000);
	run_request_case(&g, &c, in, at);

	memset(&c, 0, sizeof(c));
	c.name = "head over HTTP_MAX_HEAD";
	c.expect = 431;
	at = build_padded(in, HTTP_MAX_HEAD + 1, 1);
	run_request_case(&g, &c, in, at);
	c.name = "incomplete head of HTTP_MAX_HEAD bytes";
	at = build_padded(in, HTTP_MAX_HEAD, 0);
	run_request_case(&g, &c, in, at);
	c.name = "incomplete head under HTTP_MAX_HEAD";
	c.expect = HTTP_PARSE_INCOMPLETE;
	run_request_case(&g, &c, in, at - 1);

	/* An early header error in a head that overflows: 431, whichever way it came. */
	memset(&c, 0, sizeof(c));
	c.name = "bare CR in a head over HTTP_MAX_HEAD";
	c.expect = 431;
	at = put_str(in, 0, "GET / HTTP/1.1\r\nA: b\rc\r\nX: ");
	at = put_rep(in, at, 'a', HTTP_MAX_HEAD);
	at = put_str(in, at, "\r\n\r\n");
	run_request_case(&g, &c, in, at);

	memset(&c, 0, sizeof(c));
	c.name = "empty lines up to HTTP_MAX_HEAD";
	c.expect = 431;
	for (at = 0; at < HTTP_MAX_HEAD; at += 2)
		put_str(in, at, "\r\n");
	run_request_case(&g, &c, in, at);

	guard_free(&g);
	free(in);
}

/* Pipelined requests: the caller moves on by the returned length. */
static void test_request_pipeline(void **state)
{
	static const char in[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	                         "HEAD /b HTTP/1.0\r\n\r\n"
	                         "\r\nPUT /c HTTP/1.1\nContent-Length: 0\n\n";
	static const char *const targets[] = {"/a", "/b", "/c"};
	struct http_request req;
	size_t at = 0, i;

	(void)state;
	for (i = 0; i < 3; i++) {
		int r = http_parse_request(in + at, sizeof(in) - 1 - at, &req, 0);

		if (r <= 0)
			fail_msg("request %zu: %d (%s)", i, r, req.error_reason ? req.error_reason : "-");
		assert_true(slice_is(req.target, targets[i]));
		at += (size_t)r;
	}
	assert_int_equal(at, sizeof(in) - 1);
}

static void test_find_header(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nCONTENT-length: 12\r\nX-Y: z\r\n\r\n";
	struct http_request req;
	const struct http_header *h;
	struct http_slice s = {"Keep-Alive", 10};

	(void)state;
	assert_int_equal(http_parse_request(in, sizeof(in) - 1, &req, 0), (int)sizeof(in) - 1);
	h = http_find_header(&req, "content-length");
	assert_non_null(h);
	assert_true(slice_is(h->value, "12"));
	h = http_find_header(&req, "HOST");
	assert_non_null(h);
	assert_true(slice_is(h->value, "a"));
	assert_null(http_find_header(&req, "X"));
	assert_null(http_find_header(&req, "X-Y-Z"));
	assert_null(http_find_header(&req, ""));

	assert_true(http_slice_ieq(s, "keep-alive"));
	assert_true(http_slice_ieq(s, "KEEP-ALIVE"));
	assert_false(http_slice_ieq(s, "keep-aliv"));
	assert_false(http_slice_ieq(s, "keep-alive2"));
	assert_false(http_slice_ieq(s, "keep_alive"));
	s.len = 0;
	assert_true(http_slice_ieq(s, ""));
	assert_false(http_slice_ieq(s, "k"));
	/* ASCII only: '@' and '`' are not the case pair of anything */
	s.p = "@";
	s.len = 1;
	assert_false(http_slice_ieq(s, "`"));
}

/*
 * Chunked bodies.
 */

enum chunk_want { CH_WANT_DONE, CH_WANT_MORE, CH_WANT_ERROR };

struct chunk_case {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	enum chunk_want want;
	const char *data; /* decoded bytes (for done and incomplete rows) */
	size_t data_len;  /* 0: strlen(data) */
	const char *rest; /* bytes after the body (done rows) */
};

static const struct chunk_case chunk_cases[] = {
        {"empty body", "0\r\n\r\n", 0, CH_WANT_DONE, "", 0, ""},
        {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, CH_WANT_DONE, "hello", 0, ""},
        {"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, CH_WANT_DONE, "hello world", 0, ""},
        {"hex digits", "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n", 0, CH_WANT_DONE,
         "0123456789abcdefghijk", 0, ""},
        {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 0, CH_WANT_DONE, "hello", 0, ""},
        {"16 digits", "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n", 0, CH_WANT_DONE, "hello", 0,
         ""},
        {"extensions", "5;foo=bar\r\nhello\r\n0;last\r\n\r\n", 0, CH_WANT_DONE, "hello", 0, ""},
        {"several extensions", "5;a=1;b;c=\"x;y\\\"z\"\r\nhello\r\n0\r\n\r\n", 0, CH_WANT_DONE, "hello", 0,
         ""},
        {"BWS before extension", "5 ;a=b\r\nhello\r\n0\t; x\r\n\r\n", 0, CH_WANT_DONE, "hello", 0, ""},
        {"BWS before CRLF", "5 \r\nhello\r\n0\r\n\r\n", 0, CH_WANT_DONE, "hello", 0, ""},
        {"trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nExpires: never\r\n\r\n", 0, CH_WANT_DONE, "hello", 0,
         ""},
        {"CRLF inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 0, CH_WANT_DONE, "\r\n\r\n", 0, ""},
        {"binary data", BIN("3\r\n\0\xff\n\r\n0\r\n\r\n"), CH_WANT_DONE, "\0\xff\n", 3, ""},
        {"next request follows", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 0, CH_WANT_DONE, "abc", 0,
         "GET / HTTP/1.1\r\n\r\n"},
        {"bytes follow trailers", "0\r\nA: b\r\n\r\nxyz", 0, CH_WANT_DONE, "", 0, "xyz"},
        {"largest size", "7fffffffffffffff\r\nab", 0, CH_WANT_MORE, "ab", 0, NULL},
        {"data pending", "5\r\nhel", 0, CH_WANT_MORE, "hel", 0, NULL},
        {"CRLF after data pending", "5\r\nhello\r", 0, CH_WANT_MORE, "hello", 0, NULL},
        {"trailers pending", "0\r\n", 0, CH_WANT_MORE, "", 0, NULL},
        {"final CR pending", "0\r\nA: b\r\n\r", 0, CH_WANT_MORE, "", 0, NULL},
        {"extension pending", "5;name=val", 0, CH_WANT_MORE, "", 0, NULL},

        {"empty size line", "\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"extension without size", ";a=b\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"leading space", " 5\r\nhello\r\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"non-hex digit", "g\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"hex then junk", "5x\r\nhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"0x prefix", "0x5\r\nhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"negative", "-5\r\nhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"two numbers", "5 5\r\nhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"17 digits", "00000000000000005\r\nhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"2^63", "8000000000000000\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"2^64-1", "ffffffffffffffff\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare CR in size line", "5\rhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF after size", "5\nhello\r\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF after extension", "2;a\nb\r\nab\r\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF after BWS", "5 \nhello\r\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF after data", "5\r\nhello\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF after last size", "0\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF after trailer", "0\r\nT: 1\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare LF ends trailers", "0\r\n\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"all bare LF", "5\nhello\n0\nT: 1\n\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"control in extension", "5;a\x01\r\nhello\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"data too long", "5\r\nhelloX\r\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"CR then junk after data", "5\r\nhello\rX\n0\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"bare CR in trailer", "0\r\nA: b\rc\r\n\r\n", 0, CH_WANT_ERROR, NULL, 0, NULL},
        {"NUL in trailer", BIN("0\r\nA: \0\r\n\r\n"), CH_WANT_ERROR, NULL, 0, NULL},
        {"CR then junk at end", "0\r\n\rX", 0, CH_WANT_ERROR, NULL, 0, NULL},
};

struct chunk_result {
	ssize_t r;  /* last return value */
	char *data; /* decoded bytes */
	size_t data_len;
	char *rest; /* bytes after the body: returned leftovers and input never fed */
	size_t rest_len;
};

static void feed_chunked(struct guard *g, const char *in, size_t len, struct split *sp,
                         struct chunk_result *res)
{
	struct http_chunked d;
	size_t k = 0;

	memset(&d, 0, sizeof(d));
	res->data_len = res->rest_len = 0;
	res->r = HTTP_PARSE_INCOMPLETE;
	while (k < len) {
		size_t piece = split_next(sp, len - k), n = piece;
		char *buf = guard_place(g, in + k, piece);

		k += piece;
		res->r = http_chunked_decode(&d, buf, &n);
		if (res->r == HTTP_PARSE_ERROR)
			return;
		assert_true(n <= piece);
		memcpy(res->data + res->data_len, buf, n);
		res->data_len += n;
		if (res->r >= 0) {
			assert_true(n + (size_t)res->r <= piece);
			memcpy(res->rest, buf + n, (size_t)res->r);
			res->rest_len = (size_t)res->r;
			memcpy(res->rest + res->rest_len, in + k, len - k);
			res->rest_len += len - k;
			return;
		}
	}
}

static void check_chunked(const struct chunk_case *c, const char *mode, const struct chunk_result *res)
{
	size_t dlen = c->data ? (c->data_len ? c->data_len : strlen(c->data)) : 0;

	switch (c->want) {
	case CH_WANT_ERROR:
		if (res->r != HTTP_PARSE_ERROR)
			fail_msg("row \"%s\" [%s]: got %zd, want error", c->name, mode, res->r);
		return;
	case CH_WANT_MORE:
		if (res->r != HTTP_PARSE_INCOMPLETE)
			fail_msg("row \"%s\" [%s]: got %zd, want incomplete", c->name, mode, res->r);
		break;
	case CH_WANT_DONE:
		if (res->r < 0)
			fail_msg("row \"%s\" [%s]: got %zd, want done", c->name, mode, res->r);
		if (res->rest_len != strlen(c->rest) || memcmp(res->rest, c->rest, res->rest_len))
			fail_msg("row \"%s\" [%s]: rest \"%.*s\", want \"%s\"", c->name, mode,
			         (int)res->rest_len, res->rest, c->rest);
		break;
	}
	if (res->data_len != dlen || memcmp(res->data, c->data, dlen) != 0)
		fail_msg("row \"%s\" [%s]: data \"%.*s\" (%zu bytes), want %zu bytes", c->name, mode,
		         (int)res->data_len, res->data, res->data_len, dlen);
}

static void run_chunk_case(struct guard *g, const struct chunk_case *c, const char *in, size_t len)
{
	struct chunk_result res;
	struct split sp = {SPLIT_WHOLE, 0};
	int seed;

	res.data = malloc(len + 1);
	res.rest = malloc(len + 1);
	assert_true(res.data && res.rest);

	sp.mode = SPLIT_WHOLE;
	feed_chunked(g, in, len, &sp, &res);
	check_chunked(c, "whole", &res);
	sp.mode = SPLIT_BYTES;
	feed_chunked(g, in, len, &sp, &res);
	check_chunked(c, "bytewise", &res);
	for (seed = 1; seed <= 16; seed++) {
		char mode[32];

		sp.mode = SPLIT_RANDOM;
		sp.rng = 0x2545f4914f6cdd1dull * (uint64_t)seed;
		snprintf(mode, sizeof(mode), "random seed %d", seed);
		feed_chunked(g, in, len, &sp, &res);
		check_chunked(c, mode, &res);
	}
	free(res.data);
	free(res.rest);
}

static void test_chunked_table(void **state)
{
	struct guard g;
	size_t i;

	(void)state;
	guard_init(&g, 4096);
	for (i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
		const struct chunk_case *c = &chunk_cases[i];

		run_chunk_case(&g, c, c->in, c->len ? c->len : strlen(c->in));
	}
	guard_free(&g);
}

static void test_chunked_limits(void **state)
{
	struct chunk_case c;
	struct guard g;
	char *in = malloc(1024 * 1024);
	size_t at, i;

	(void)state;
	assert_non_null(in);
	guard_init(&g, 1024 * 1024);

	/* A size line of HTTP_CHUNK_MAX_LINE bytes (without its CRLF), then one more. */
	memset(&c, 0, sizeof(c));
	c.name = "size line of HTTP_CHUNK_MAX_LINE";
	c.want = CH_WANT_DONE;
	c.data = "abc";
	c.rest = "";
	at = put_str(in, 0, "3;x=");
	at = put_rep(in, at, 'v', HTTP_CHUNK_MAX_LINE - at);
	at = put_str(in, at, "\r\nabc\r\n0\r\n\r\n");
	run_chunk_case(&g, &c, in, at);
	c.name = "size line over HTTP_CHUNK_MAX_LINE";
	c.want = CH_WANT_ERROR;
	at = put_str(in, 0, "3;x=");
	at = put_rep(in, at, 'v', HTTP_CHUNK_MAX_LINE + 1 - at);
	at = put_str(in, at, "\r\nabc\r\n0\r\n\r\n");
	run_chunk_case(&g, &c, in, at);

	memset(&c, 0, sizeof(c));
	c.name = "trailer line of HTTP_CHUNK_MAX_LINE";
	c.want = CH_WANT_DONE;
	c.data = "";
	c.rest = "";
	at = put_str(in, 0, "0\r\nT: ");
	at = put_rep(in, at, 'v', HTTP_CHUNK_MAX_LINE - 3);
	at = put_str(in, at, "\r\n\r\n");
	run_chunk_case(&g, &c, in, at);
	c.name = "trailer line over HTTP_CHUNK_MAX_LINE";
	c.want = CH_WANT_ERROR;
	at = put_str(in, 0, "0\r\nT: ");
	at = put_rep(in, at, 'v', HTTP_CHUNK_MAX_LINE - 2);
	at = put_str(in, at, "\r\n\r\n");
	run_chunk_case(&g, &c, in, at);

	/* Trailer fields are capped like header fields. */
	memset(&c, 0, sizeof(c));
	c.name = "HTTP_MAX_HEADERS trailer fields";
	c.want = CH_WANT_DONE;
	c.data = "";
	c.rest = "";
	at = put_str(in, 0, "0\r\n");
	for (i = 0; i < HTTP_MAX_HEADERS; i++)
		at = put_str(in, at, "T: v\r\n");
	at = put_str(in, at, "\r\n");
	run_chunk_case(&g, &c, in, at);
	c.name = "over HTTP_MAX_HEADERS trailer fields";
	c.want = CH_WANT_ERROR;
	at = put_str(in, at - 2, "T: v\r\n\r\n");
	run_chunk_case(&g, &c, in, at);

	/* Many chunks of one byte, then one big chunk. */
	memset(&c, 0, sizeof(c));
	c.name = "many chunks";
	c.want = CH_WANT_DONE;
	c.rest = "";
	{
		char *want = malloc(300 * 1024);

		assert_non_null(want);
		at = 0;
		for (i = 0; i < 1000; i++) {
			at = put_str(in, at, "1\r\n");
			in[at++] = (char)('a' + i % 26);
			want[i] = (char)('a' + i % 26);
			at = put_str(in, at, "\r\n");
		}
		at = put_str(in, at, "3e800\r\n"); /* 256000 bytes */
		for (i = 0; i < 256000; i++)
			in[at++] = want[1000 + i] = (char)(i * 7);
		at = put_str(in, at, "\r\n0\r\n\r\n");
		c.data = want;
		c.data_len = 1000 + 256000;
		run_chunk_case(&g, &c, in, at);
		free(want);
	}

	guard_free(&g);
	free(in);
}

/* After the end, every byte is leftover; after an error, the decoder stays failed. */
static void test_chunked_after_end(void **state)
{
	struct http_chunked d;
	char buf[64];
	size_t n;

	(void)state;
	memset(&d, 0, sizeof(d));
	memcpy(buf, "0\r\n\r\n", 5);
	n = 5;
	assert_int_equal(http_chunked_decode(&d, buf, &n), 0);
	assert_int_equal(n, 0);
	memcpy(buf, "more", 4);
	n = 4;
	assert_int_equal(http_chunked_decode(&d, buf, &n), 4);
	assert_int_equal(n, 0);
	assert_memory_equal(buf, "more", 4);

	memset(&d, 0, sizeof(d));
	memcpy(buf, "z\r\n", 3);
	n = 3;
	assert_int_equal(http_chunked_decode(&d, buf, &n), HTTP_PARSE_ERROR);
	memcpy(buf, "0\r\n\r\n", 5);
	n = 5;
	assert_int_equal(http_chunked_decode(&d, buf, &n), HTTP_PARSE_ERROR);

	/* An empty call changes nothing. */
	memset(&d, 0, sizeof(d));
	n = 0;
	assert_int_equal(http_chunked_decode(&d, buf, &n), HTTP_PARSE_INCOMPLETE);
	assert_int_equal(n, 0);
}

/*
 * Range.
 */

struct range_case {
	const char *v;
	uint64_t size;
	enum http_range_result want;
	uint64_t first, last;
};

static const struct range_case range_cases[] = {
        {"bytes=0-499", 1000, HTTP_RANGE_OK, 0, 499},
        {"bytes=500-999", 1000, HTTP_RANGE_OK, 500, 999},
        {"bytes=500-", 1000, HTTP_RANGE_OK, 500, 999},
        {"bytes=-500", 1000, HTTP_RANGE_OK, 500, 999},
        {"bytes=-1", 1000, HTTP_RANGE_OK, 999, 999},
        {"bytes=-1000", 1000, HTTP_RANGE_OK, 0, 999},
        {"bytes=-2000", 1000, HTTP_RANGE_OK, 0, 999},
        {"bytes=0-0", 1000, HTTP_RANGE_OK, 0, 0},
        {"bytes=0-", 1000, HTTP_RANGE_OK, 0, 999},
        {"bytes=999-999", 1000, HTTP_RANGE_OK, 999, 999},
        {"bytes=999-5000", 1000, HTTP_RANGE_OK, 999, 999},
        {"bytes=0-18446744073709551615", 1000, HTTP_RANGE_OK, 0, 999},
        {"bytes=0-99999999999999999999999", 1000, HTTP_RANGE_OK, 0, 999},
        {"bytes=-99999999999999999999999", 1000, HTTP_RANGE_OK, 0, 999},
        {"bytes=0-0", 1, HTTP_RANGE_OK, 0, 0},
        {"bytes=-5", 1, HTTP_RANGE_OK, 0, 0},
        {"bytes=4294967296-", 8589934592ull, HTTP_RANGE_OK, 4294967296ull, 8589934591ull},
        {"BYTES=0-1", 1000, HTTP_RANGE_OK, 0, 1},
        {"Bytes=0-1", 1000, HTTP_RANGE_OK, 0, 1},
        {" bytes = 0 - 1 ", 1000, HTTP_RANGE_OK, 0, 1},
        {"bytes=\t2-3\t", 1000, HTTP_RANGE_OK, 2, 3},
        {"bytes=0-1,", 1000, HTTP_RANGE_OK, 0, 1},
        {"bytes=, ,0-1", 1000, HTTP_RANGE_OK, 0, 1},
        {"bytes=007-8", 1000, HTTP_RANGE_OK, 7, 8},

        {"bytes=1000-", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=1000-2000", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=99999999999999999999999-", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-000", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-0", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-5", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},

        {"bytes=0-1,2-3", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=0-1, 5-", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=-1,-2", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=0-1,junk", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=5-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=,", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes", 1000, HTTP_RANGE_NONE, 0, 0},
        {"byte=0-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytesx=0-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes 0-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"", 1000, HTTP_RANGE_NONE, 0, 0},
        {"items=0-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=-", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=--1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=abc", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=1-2-3", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=0x1-2", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=+1-2", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=1-2;x", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=0-1\r\n", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=1000-2000,0-1", 1000, HTTP_RANGE_NONE, 0, 0},
};

static void test_range_table(void **state)
{
	struct guard g;
	size_t i;

	(void)state;
	guard_init(&g, 4096);
	for (i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
		const struct range_case *c = &range_cases[i];
		size_t len = strlen(c->v);
		const char *v = guard_place(&g, c->v, len);
		uint64_t first = 12345, last = 12345;
		enum http_range_result r = http_parse_range(v, len, c->size, &first, &last);

		if (r != c->want)
			fail_msg("row %zu \"%s\" size %llu: got %d, want %d", i, c->v,
			         (unsigned long long)c->size, (int)r, (int)c->want);
		if (r == HTTP_RANGE_OK && (first != c->first || last != c->last))
			fail_msg("row %zu \"%s\" size %llu: got %llu-%llu, want %llu-%llu", i, c->v,
			         (unsigned long long)c->size, (unsigned long long)first,
			         (unsigned long long)last, (unsigned long long)c->first,
			         (unsigned long long)c->last);
	}
	guard_free(&g);
}

/* Accept q-values: the most specific matching range decides. */
static void test_accept_q(void **state)
{
	static const struct {
		const char *accept, *type;
		int q, spec;
	} cases[] = {
	        {"application/json", "application/json", 1000, 3},
	        {"APPLICATION/JSON", "application/json", 1000, 3},
	        {"application/json;q=0", "application/json", 0, 3},
	        {"text/html,application/json;q=0.9", "application/json", 900, 3},
	        {"text/html,application/json;q=0.9", "text/html", 1000, 3},
	        {"*/*", "application/json", 1000, 1},
	        {"*/*;q=0.8, application/*;q=0.5", "application/json", 500, 2},
	        {"application/json;q=0.25, */*", "application/json", 250, 3},
	        {" application/json ; charset=utf-8 ; Q=0.7 ", "application/json", 700, 3},
	        {"application/json;q=1.5", "application/json", 0, 3}, /* malformed: not acceptable */
	        {"application/json;q=0.1234", "application/json", 0, 3},
	        {"application/json;q=", "application/json", 0, 3},
	        {"application/json;q=1.000", "application/json", 1000, 3},
	        {"application/jsonx", "application/json", -1, 0},
	        {"application/json-seq", "application/json", -1, 0},
	        {"text/*", "application/json", -1, 0},
	        {"", "application/json", -1, 0},
	        {",,;,", "application/json", -1, 0},
	        {"application/json;q=0.5,application/json;q=0.9", "application/json", 500, 3},
	        /* Accept-Encoding: codings and "*" */
	        {"gzip, deflate, br", "br", 1000, 3},
	        {"gzip;q=0.5, *;q=0.1", "br", 100, 1},
	        {"gzip;q=0", "gzip", 0, 3},
	        {"identity", "gzip", -1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_slice a = {cases[i].accept, strlen(cases[i].accept)};
		int spec = -9, q = http_accept_q(a, cases[i].type, &spec);
		if (q != cases[i].q || spec != cases[i].spec)
			fail_msg("Accept: %s, %s: q %d spec %d; want %d and %d", cases[i].accept,
			         cases[i].type, q, spec, cases[i].q, cases[i].spec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_table),     cmocka_unit_test(test_request_limits),
	        cmocka_unit_test(test_request_pipeline),  cmocka_unit_test(test_find_header),
	        cmocka_unit_test(test_chunked_table),     cmocka_unit_test(test_chunked_limits),
	        cmocka_unit_test(test_chunked_after_end), cmocka_unit_test(test_range_table),
	        cmocka_unit_test(test_accept_q),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
