/* fuzz_chunked.c - http_chunked_decode: whole and split feeding give the same output and leftover. */
#include "fuzz.h"

#include "http/parse.h"

/* One decode of data[0..n) in pieces (n pieces when step is 0: byte by byte, else pieces
 * of random sizes); the decoded bytes go to out, what followed the body to left. Returns
 * the last decoder result: HTTP_PARSE_INCOMPLETE, HTTP_PARSE_ERROR, or >= 0 when done. */
static ssize_t decode_split(const uint8_t *data, size_t n, int bytewise, uint64_t *s, char *out,
                            size_t *outlen, char *left, size_t *leftlen)
{
	struct http_chunked d;
	ssize_t r = HTTP_PARSE_INCOMPLETE;
	size_t k = 0;

	memset(&d, 0, sizeof(d));
	*outlen = *leftlen = 0;
	while (k < n) {
		size_t step = bytewise ? 1 : 1 + (size_t)(fuzz_next(s) % (n / 4 + 1));
		if (step > n - k)
			step = n - k;
		char *piece = fuzz_dup(data + k, step);
		size_t len = step;
		r = http_chunked_decode(&d, piece, &len);
		FUZZ_CHECK(len <= step, "decoded %zu of a %zu-byte piece", len, step);
		memcpy(out + *outlen, piece, len);
		*outlen += len;
		k += step;
		if (r >= 0) {
			FUZZ_CHECK((size_t)r <= step - len, "leftover %zd after %zu of %zu", r, len, step);
			memcpy(left, piece + len, (size_t)r);
			memcpy(left + r, data + k, n - k);
			*leftlen = (size_t)r + (n - k);
			free(piece);
			/* Done stays done: every later byte belongs to what follows. */
			char more[3] = {'x', '\r', '\n'};
			size_t ml = sizeof(more);
			FUZZ_CHECK(http_chunked_decode(&d, more, &ml) == 3 && ml == 0 && more[0] == 'x',
			           "a finished decoder took more bytes");
			return r;
		}
		free(piece);
		if (r == HTTP_PARSE_ERROR) {
			char more[1] = {'0'};
			size_t ml = 1;
			FUZZ_CHECK(http_chunked_decode(&d, more, &ml) == HTTP_PARSE_ERROR,
			           "error did not stick");
			return r;
		}
		FUZZ_CHECK(r == HTTP_PARSE_INCOMPLETE, "result %zd", r);
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *out1 = malloc(n + 1), *left1 = malloc(n + 1), *out2 = malloc(n + 1), *left2 = malloc(n + 1);
	size_t o1, l1, o2, l2;
	uint64_t s = fuzz_seed(data, n);

	/* Whole: one call over the input. */
	struct http_chunked d;
	memset(&d, 0, sizeof(d));
	char *b = fuzz_dup(data, n);
	size_t len = n;
	ssize_t r1 = http_chunked_decode(&d, b, &len);
	FUZZ_CHECK(len <= n, "decoded %zu of %zu", len, n);
	o1 = len;
	memcpy(out1, b, len);
	l1 = 0;
	if (r1 >= 0) {
		FUZZ_CHECK((size_t)r1 <= n - len, "leftover %zd after %zu of %zu", r1, len, n);
		memcpy(left1, b + len, (size_t)r1);
		l1 = (size_t)r1;
	}
	free(b);
	/* Split: byte by byte for short inputs now and then, random pieces otherwise. */
	int bytewise = n <= 4096 && (s & 1);
	ssize_t r2 = decode_split(data, n, bytewise, &s, out2, &o2, left2, &l2);

	FUZZ_CHECK((r1 >= 0) == (r2 >= 0) && (r1 < 0 ? r1 == r2 : 1), "whole %zd, split %zd", r1, r2);
	FUZZ_CHECK(o1 == o2 && memcmp(out1, out2, o1) == 0, "decoded data differ: %zu vs %zu bytes", o1, o2);
	if (r1 >= 0)
		FUZZ_CHECK(l1 == l2 && memcmp(left1, left2, l1) == 0, "leftovers differ: %zu vs %zu bytes",
		           l1, l2);
	FUZZ_CHECK(o1 + l1 <= n, "more out than in");
	free(out1);
	free(left1);
	free(out2);
	free(left2);
	return 0;
}
