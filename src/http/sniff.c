/* sniff.c - protocol sniffing of a connection's first bytes, as a pure function. */
#include "http/sniff.h"

int http_sniff_classify(const unsigned char *p, size_t n)
{
	if (n == 0)
		return HTTP_SNIFF_NEED_MORE;
	/* A lone 0x16 is taken for TLS at once: nothing else starts that way. */
	if (p[0] == 0x16 && (n < 2 || p[1] == 0x03))
		return HTTP_SNIFF_TLS;
	if ((p[0] >= 0x20 && p[0] < 0x7f) || p[0] == '\r' || p[0] == '\n' || p[0] == '\t')
		return HTTP_SNIFF_HTTP;
	return HTTP_SNIFF_OTHER;
}
