/* probe.c - the sniff table: pure tests of a connection's first bytes. */
#include "serve/probe.h"

/* A TLS record of type handshake (22) with major version 3; a lone 0x16 is taken for
 * TLS at once, since nothing else starts that way. */
static int match_tls(const unsigned char *p, size_t n)
{
	return p[0] == 0x16 && (n < 2 || p[1] == 0x03);
}

/* An HTTP request starts with a method token (or stray CRLFs): printable text is
 * HTTP, and the parser answers 400 or 501 if it is not valid. */
static int match_http(const unsigned char *p, size_t n)
{
	return (p[0] >= 0x20 && p[0] < 0x7f) || p[0] == '\r' || p[0] == '\n' || p[0] == '\t';
}

const struct sniff_probe sniff_probes[] = {
        {"tls", match_tls, SNIFF_TLS},
        {"http", match_http, SNIFF_HTTP},
};
const size_t sniff_nprobes = sizeof(sniff_probes) / sizeof(sniff_probes[0]);

int sniff_classify(const unsigned char *p, size_t n)
{
	if (n == 0)
		return SNIFF_NEED_MORE;
	for (size_t i = 0; i < sniff_nprobes; i++) {
		int m = sniff_probes[i].match(p, n);
		if (m < 0)
			return SNIFF_NEED_MORE;
		if (m > 0)
			return (int)i;
	}
	return SNIFF_UNKNOWN;
}
