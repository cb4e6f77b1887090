/* fuzz_range.c - http_parse_range: on OK, first <= last < size; outputs untouched otherwise. */
#include "fuzz.h"

#include "http/parse.h"

/* The first byte picks the representation size: small sizes (where off-by-ones
 * live), sizes near 2^64, or 8 bytes of the input; the rest is the header value. */
static uint64_t pick_size(const uint8_t **p, size_t *n)
{
	uint64_t size = 0;
	if (*n == 0)
		return 0;
	uint8_t mode = (*p)[0];
	(*p)++;
	(*n)--;
	switch (mode % 4) {
	case 0: return mode / 4; /* 0..63 */
	case 1: return UINT64_MAX - mode / 4;
	case 2: return (uint64_t)1 << (mode / 4 % 64);
	default:
		for (int i = 0; i < 8 && *n; i++, (*p)++, (*n)--)
			size = size << 8 | **p;
		return size;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t size = pick_size(&p, &n);
	char *v = fuzz_dup(p, n);
	uint64_t first = 0x5a5a5a5a5a5a5a5aull, last = first;

	enum http_range_result r = http_parse_range(v, n, size, &first, &last);
	switch (r) {
	case HTTP_RANGE_OK:
		FUZZ_CHECK(first <= last && last < size, "OK with %llu-%llu of %llu",
		           (unsigned long long)first, (unsigned long long)last, (unsigned long long)size);
		break;
	case HTTP_RANGE_NONE:
	case HTTP_RANGE_UNSATISFIABLE:
		FUZZ_CHECK(first == 0x5a5a5a5a5a5a5a5aull && last == first, "outputs set on result %d", r);
		break;
	default: FUZZ_CHECK(0, "result %d", r);
	}
	/* Nothing but "bytes" (any case, after OWS) can name the unit. */
	if (r != HTTP_RANGE_NONE) {
		size_t i = 0;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		FUZZ_CHECK(n - i >= 6 && http_slice_ieq((struct http_slice){v + i, 5}, "bytes"),
		           "unit not bytes");
	}
	/* The same value against one more byte: an OK range stays OK, with the same
	 * first byte (suffix ranges move with the end, so only for A-B and A-). */
	if (r == HTTP_RANGE_OK && size < UINT64_MAX) {
		uint64_t f2, l2;
		FUZZ_CHECK(http_parse_range(v, n, size + 1, &f2, &l2) == HTTP_RANGE_OK, "lost with size + 1");
		FUZZ_CHECK(l2 <= last + 1 && l2 >= last, "last %llu then %llu", (unsigned long long)last,
		           (unsigned long long)l2);
	}
	free(v);
	return 0;
}
