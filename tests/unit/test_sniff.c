/* test_sniff.c - protocol sniffing of a connection's first bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "serve/probe.h"

/* The classes of the old interface, from the table's answer. */
enum { C_NEED_MORE, C_HTTP, C_TLS, C_OTHER };

static int class_of(int r)
{
	if (r == SNIFF_NEED_MORE)
		return C_NEED_MORE;
	if (r == SNIFF_UNKNOWN)
		return C_OTHER;
	return sniff_probes[r].proto == SNIFF_HTTP ? C_HTTP : C_TLS;
}

struct sniff_case {
	const char *in;
	size_t len;
	int want;
};

static void test_classify(void **state)
{
	static const struct sniff_case t[] = {
	        {"", 0, C_NEED_MORE},
	        {"GET / HTTP/1.1\r\n", 16, C_HTTP},
	        {"G", 1, C_HTTP},
	        {"\r\n", 2, C_HTTP}, /* stray CRLF before a request line */
	        {"\n", 1, C_HTTP},
	        {"\t", 1, C_HTTP},
	        {" ", 1, C_HTTP},
	        {"~", 1, C_HTTP},
	        {"\x16\x03\x01\x02\x00", 5, C_TLS}, /* ClientHello record */
	        {"\x16", 1, C_TLS},                 /* a lone 0x16 is taken for TLS */
	        {"\x16\x02", 2, C_OTHER},
	        {"\x00", 1, C_OTHER},
	        {"\x7f", 1, C_OTHER},
	        {"\x80GET", 4, C_OTHER},
	        {"\xff\xf4", 2, C_OTHER}, /* telnet IAC: FTP clients never speak first */
	        {"\x1f", 1, C_OTHER},
	        {"\r", 1, C_HTTP},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = class_of(sniff_classify((const unsigned char *)t[i].in, t[i].len));
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
