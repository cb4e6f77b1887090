/* test_sniff.c - protocol sniffing of a connection's first bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/sniff.h"

struct sniff_case {
	const char *in;
	size_t len;
	int want;
};

static void test_classify(void **state)
{
	static const struct sniff_case t[] = {
	        {"", 0, HTTP_SNIFF_NEED_MORE},
	        {"GET / HTTP/1.1\r\n", 16, HTTP_SNIFF_HTTP},
	        {"G", 1, HTTP_SNIFF_HTTP},
	        {"\r\n", 2, HTTP_SNIFF_HTTP}, /* stray CRLF before a request line */
	        {"\n", 1, HTTP_SNIFF_HTTP},
	        {"\t", 1, HTTP_SNIFF_HTTP},
	        {" ", 1, HTTP_SNIFF_HTTP},
	        {"~", 1, HTTP_SNIFF_HTTP},
	        {"\x16\x03\x01\x02\x00", 5, HTTP_SNIFF_TLS}, /* ClientHello record */
	        {"\x16", 1, HTTP_SNIFF_TLS},                 /* a lone 0x16 is taken for TLS */
	        {"\x16\x02", 2, HTTP_SNIFF_OTHER},
	        {"\x00", 1, HTTP_SNIFF_OTHER},
	        {"\x7f", 1, HTTP_SNIFF_OTHER},
	        {"\x80GET", 4, HTTP_SNIFF_OTHER},
	        {"\xff\xf4", 2, HTTP_SNIFF_OTHER}, /* telnet IAC: FTP clients never speak first */
	        {"\x1f", 1, HTTP_SNIFF_OTHER},
	        {"\r", 1, HTTP_SNIFF_HTTP},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = http_sniff_classify((const unsigned char *)t[i].in, t[i].len);
		if (r != t[i].want)
			fail_msg("row %zu: got %d, want %d", i, r, t[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
