/* fuzz_sniff.c - sniff_classify: a valid row, decided by the first two bytes only. */
#include "fuzz.h"

#include "serve/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	unsigned char *p = (unsigned char *)fuzz_dup(data, n);
	int r = sniff_classify(p, n);
	FUZZ_CHECK(r == SNIFF_NEED_MORE || r == SNIFF_UNKNOWN || (r >= 0 && (size_t)r < sniff_nprobes),
	           "row %d", r);
	FUZZ_CHECK((r == SNIFF_NEED_MORE) == (n == 0), "need more with %zu bytes", n);
	if (n == 0)
		goto out;
	/* More bytes never change the answer once two are in. */
	FUZZ_CHECK(sniff_classify(p, n < 2 ? n : 2) == r, "row depends on bytes past the second");
	/* What the HTTP side gets starts like a request; TLS starts with a handshake record. */
	if (r >= 0 && sniff_probes[r].proto == SNIFF_HTTP)
		FUZZ_CHECK((p[0] >= 0x20 && p[0] < 0x7f) || p[0] == '\r' || p[0] == '\n' || p[0] == '\t',
		           "HTTP from 0x%02x", p[0]);
	if (r >= 0 && sniff_probes[r].proto == SNIFF_TLS)
		FUZZ_CHECK(p[0] == 0x16 && (n == 1 || p[1] == 0x03), "TLS from 0x%02x", p[0]);
	/* A one-byte answer holds for the longer input, except a lone 0x16 (TLS until
	 * the second byte says otherwise). */
	if (p[0] != 0x16)
		FUZZ_CHECK(sniff_classify(p, 1) == r, "first byte alone gives another row");
out:
	free(p);
	return 0;
}
