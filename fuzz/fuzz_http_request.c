/* fuzz_http_request.c - http_parse_request: slices in bounds, and whole == split feeding. */
#include "fuzz.h"

#include "http/parse.h"

static const unsigned char tchar_ok[] = "!#$%&'*+-.^_`|~";

static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr((const char *)tchar_ok, c));
}

/* Everything a successful or failed parse promises about req. */
static void check_result(const char *buf, size_t n, int r, const struct http_request *req)
{
	if (r == HTTP_PARSE_INCOMPLETE) {
		FUZZ_CHECK(n < HTTP_MAX_HEAD, "incomplete at %zu bytes, past the head limit", n);
		return;
	}
	if (r == HTTP_PARSE_ERROR) {
		int s = req->error_status;
		FUZZ_CHECK(s == 400 || s == 414 || s == 431 || s == 501 || s == 505, "status %d", s);
		FUZZ_CHECK(req->error_reason != NULL, "no reason for %d", s);
		return;
	}
	FUZZ_CHECK(r > 0 && (size_t)r <= n && r <= HTTP_MAX_HEAD, "head length %d of %zu", r, n);
	FUZZ_CHECK(buf[r - 1] == '\n', "head does not end in LF");
	const struct http_slice *m = &req->method, *t = &req->target;
	FUZZ_CHECK(fuzz_within(m->p, m->len, buf, (size_t)r), "method outside the head");
	FUZZ_CHECK(fuzz_within(t->p, t->len, buf, (size_t)r), "target outside the head");
	FUZZ_CHECK(m->len >= 1 && m->len <= HTTP_MAX_METHOD, "method length %zu", m->len);
	FUZZ_CHECK(t->len >= 1 && t->len <= HTTP_MAX_URI, "target length %zu", t->len);
	for (size_t i = 0; i < m->len; i++)
		FUZZ_CHECK(is_tchar((unsigned char)m->p[i]), "method byte 0x%02x", (unsigned char)m->p[i]);
	for (size_t i = 0; i < t->len; i++)
		FUZZ_CHECK((unsigned char)t->p[i] > 0x20 && (unsigned char)t->p[i] < 0x7f,
		           "target byte 0x%02x", (unsigned char)t->p[i]);
	FUZZ_CHECK(req->minor == 0 || req->minor == 1, "minor %d", req->minor);
	FUZZ_CHECK(req->nheaders <= HTTP_MAX_HEADERS, "%zu headers", req->nheaders);
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		FUZZ_CHECK(fuzz_within(h->name.p, h->name.len, buf, (size_t)r), "header %zu name outside", i);
		FUZZ_CHECK(fuzz_within(h->value.p, h->value.len, buf, (size_t)r), "header %zu value outside",
		           i);
		FUZZ_CHECK(h->name.len > 0, "header %zu: empty name", i);
		for (size_t k = 0; k < h->name.len; k++)
			FUZZ_CHECK(is_tchar((unsigned char)h->name.p[k]), "header %zu name byte", i);
		for (size_t k = 0; k < h->value.len; k++) {
			unsigned char c = (unsigned char)h->value.p[k];
			FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f), "header %zu value byte 0x%02x", i,
			           c);
		}
		if (h->value.len) {
			char a = h->value.p[0], z = h->value.p[h->value.len - 1];
			FUZZ_CHECK(a != ' ' && a != '\t' && z != ' ' && z != '\t', "header %zu: OWS kept", i);
		}
		/* http_find_header finds this name (or an earlier field of the same name). */
		if (i < 8 && h->name.len < 64) {
			char name[64];
			memcpy(name, h->name.p, h->name.len);
			name[h->name.len] = 0;
			const struct http_header *f = http_find_header(req, name);
			FUZZ_CHECK(f && f <= h && http_slice_ieq(f->name, name), "header %zu not found", i);
		}
	}
}

/* Two results are the same when they say the same thing at the same offsets. */
static void check_same(const char *what, size_t k, int r1, const struct http_request *a, const char *abuf,
                       int r2, const struct http_request *b, const char *bbuf)
{
	FUZZ_CHECK(r1 == r2, "%s at %zu: %d vs %d (%s / %s)", what, k, r1, r2,
	           a->error_reason ? a->error_reason : "-", b->error_reason ? b->error_reason : "-");
	if (r1 == HTTP_PARSE_ERROR)
		FUZZ_CHECK(a->error_status == b->error_status, "%s at %zu: status %d vs %d (%s / %s)", what,
		           k, a->error_status, b->error_status, a->error_reason, b->error_reason);
	if (r1 < 0)
		return;
	FUZZ_CHECK(a->method.p - abuf == b->method.p - bbuf && a->method.len == b->method.len, "%s: method",
	           what);
	FUZZ_CHECK(a->target.p - abuf == b->target.p - bbuf && a->target.len == b->target.len, "%s: target",
	           what);
	FUZZ_CHECK(a->minor == b->minor && a->nheaders == b->nheaders, "%s: minor or header count", what);
	for (size_t i = 0; i < a->nheaders; i++)
		FUZZ_CHECK(a->headers[i].name.p - abuf == b->headers[i].name.p - bbuf &&
		                   a->headers[i].name.len == b->headers[i].name.len &&
		                   a->headers[i].value.p - abuf == b->headers[i].value.p - bbuf &&
		                   a->headers[i].value.len == b->headers[i].value.len,
		           "%s: header %zu", what, i);
}

static struct http_request whole, part, fresh;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *buf = fuzz_dup(data, n);
	int r = http_parse_request(buf, n, &whole, 0);
	check_result(buf, n, r, &whole);

	/* Feed it as a connection would: a growing prefix, last_len from the call before,
	 * each prefix in a block of exactly its size (so a read past it faults). Every
	 * step must agree with a fresh parse of the same prefix; the feeding stops when a
	 * step is final, and a final answer must then be the whole input's answer. */
	uint64_t s = fuzz_seed(data, n);
	int bytewise = n <= 512 && (s & 3) == 0;
	size_t k = 0, last = 0;
	int rk = HTTP_PARSE_INCOMPLETE;
	while (k < n) {
		size_t step = bytewise ? 1 : 1 + (size_t)(fuzz_next(&s) % (n / 8 + 1));
		k = step > n - k ? n : k + step;
		char *pre = fuzz_dup(data, k);
		rk = http_parse_request(pre, k, &part, last);
		check_result(pre, k, rk, &part);
		int rf = http_parse_request(pre, k, &fresh, 0);
		check_same("resumed vs fresh", k, rk, &part, pre, rf, &fresh, pre);
		if (rk != HTTP_PARSE_INCOMPLETE) {
			check_same("prefix vs whole", k, rk, &part, pre, r, &whole, buf);
			free(pre);
			break;
		}
		free(pre);
		last = k;
	}
	if (n == 0)
		FUZZ_CHECK(r == HTTP_PARSE_INCOMPLETE, "empty input: %d", r);
	else if (rk == HTTP_PARSE_INCOMPLETE)
		FUZZ_CHECK(r == HTTP_PARSE_INCOMPLETE, "split incomplete, whole %d", r);
	free(buf);
	return 0;
}
