/* fuzz_sniff.c - http_sniff_classify: a valid class, decided by the first two bytes only. */
#include "fuzz.h"

#include "http/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	unsigned char *p = (unsigned char *)fuzz_dup(data, n);
	int r = http_sniff_classify(p, n);
	FUZZ_CHECK(r == HTTP_SNIFF_NEED_MORE || r == HTTP_SNIFF_HTTP || r == HTTP_SNIFF_TLS ||
	                   r == HTTP_SNIFF_OTHER,
	           "class %d", r);
	FUZZ_CHECK((r == HTTP_SNIFF_NEED_MORE) == (n == 0), "need more with %zu bytes", n);
	if (n == 0)
		goto out;
	/* More bytes never change the answer once two are in. */
	FUZZ_CHECK(http_sniff_classify(p, n < 2 ? n : 2) == r, "class depends on bytes past the second");
	/* What the HTTP side gets starts like a request; TLS starts with a handshake record. */
	if (r == HTTP_SNIFF_HTTP)
		FUZZ_CHECK((p[0] >= 0x20 && p[0] < 0x7f) || p[0] == '\r' || p[0] == '\n' || p[0] == '\t',
		           "HTTP from 0x%02x", p[0]);
	if (r == HTTP_SNIFF_TLS)
		FUZZ_CHECK(p[0] == 0x16 && (n == 1 || p[1] == 0x03), "TLS from 0x%02x", p[0]);
	/* A one-byte answer holds for the longer input, except a lone 0x16 (TLS until
	 * the second byte says otherwise). */
	if (p[0] != 0x16)
		FUZZ_CHECK(http_sniff_classify(p, 1) == r, "first byte alone gives another class");
out:
	free(p);
	return 0;
}
