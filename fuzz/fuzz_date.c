/* fuzz_date.c - http_date_parse: what it accepts formats back to a date that parses the same. */
#include "fuzz.h"

#include "http/parse.h"

#define LAST_FIXDATE 253402300799LL /* Fri, 31 Dec 9999 23:59:59 GMT */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *s = fuzz_dup(data, n);
	time_t t, t2;
	if (http_date_parse(s, n, &t) == 0) {
		FUZZ_CHECK(n == 29 || n == 24 || (n >= 30 && n <= 33), "a %zu-byte date", n);
		/* Leap second 60 on the last day of 9999 folds past the last IMF-fixdate. */
		if (t <= LAST_FIXDATE) {
			char out[30];
			FUZZ_CHECK(http_date_format(t, out) == 29 && out[29] == 0, "format length");
			FUZZ_CHECK(http_date_parse(out, 29, &t2) == 0 && t2 == t,
			           "'%s' parses to %lld, not %lld", out, (long long)t2, (long long)t);
		}
	}
	free(s);
	return 0;
}
