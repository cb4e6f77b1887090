/* fuzz_multipart.c - multipart bodies, header parameters and Digest credentials: every
 * slice inside the input, the iteration ends, an error stays an error. */
#include "fuzz.h"

#include "http/digest.h"
#include "http/multipart.h"

/* The input: a Content-Type line, a NUL, then the body (no NUL: the whole input is
 * both a Content-Type and an Authorization value). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *buf = fuzz_dup(data, n);
	const char *nul = memchr(buf, 0, n);
	size_t tlen = nul ? (size_t)(nul - buf) : n;
	const char *body = nul ? nul + 1 : buf;
	size_t blen = nul ? n - tlen - 1 : n;
	struct http_slice type = {buf, tlen};

	struct http_mp m;
	if (http_multipart_init(&m, type, body, blen) == 0) {
		struct http_mp_part p;
		int r, parts = 0;
		while ((r = http_multipart_next(&m, &p)) > 0) {
			FUZZ_CHECK(fuzz_within(p.name.p, p.name.len, body, blen), "name outside the body");
			FUZZ_CHECK(fuzz_within(p.data.p, p.data.len, body, blen), "data outside the body");
			FUZZ_CHECK(!p.filename.p || fuzz_within(p.filename.p, p.filename.len, body, blen),
			           "filename outside the body");
			FUZZ_CHECK(!p.type.len || fuzz_within(p.type.p, p.type.len, body, blen),
			           "type outside the body");
			FUZZ_CHECK(++parts <= (int)blen, "more parts than bytes");
		}
		FUZZ_CHECK(http_multipart_next(&m, &p) == r, "ended %d, then not", r);
	}
	struct http_slice v;
	if (http_param_find(type, ';', "name", &v) == 0) {
		char out[64];
		FUZZ_CHECK(fuzz_within(v.p, v.len, buf, tlen), "parameter outside the value");
		long k = http_param_unquote(v, out, sizeof(out));
		FUZZ_CHECK(k <= (long)v.len && k <= (long)sizeof(out), "unquoted to %ld", k);
	}
	struct http_digest_creds cr;
	if (http_digest_parse(type, &cr) == 0) {
		char hex[HTTP_DIGEST_HEX_MAX];
		FUZZ_CHECK(fuzz_within(cr.response.p, cr.response.len, buf, tlen),
		           "response outside the value");
		http_digest_response(&cr, HTTP_DIGEST_SHA256, 1, "u", "p", (struct http_slice){"GET", 3},
		                     body, blen, hex);
	}
	free(buf);
	return 0;
}
