/* test_ftp.c - FTP command-line and PORT/EPRT parsers, and FTP path joining. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/fsroot.h"
#include "ftp/parse.h"

struct cmd_case {
	const char *in;
	int ret; /* expected return: length, or FTP_PARSE_* */
	const char *verb, *arg;
};

static void test_commands(void **state)
{
	static const struct cmd_case t[] = {
	        {"USER anonymous\r\n", 16, "USER", "anonymous"},
	        {"user bob\n", 9, "USER", "bob"},
	        {"PWD\r\n", 5, "PWD", ""},
	        {"RETR a file with spaces.txt\r\n", 29, "RETR", "a file with spaces.txt"},
	        {"STOR  lead\r\n", 12, "STOR", " lead"},
	        {"\r\n", 2, "", ""},
	        {"NOOP", FTP_PARSE_INCOMPLETE, NULL, NULL},
	        {"TOOLONGVERB x\r\n", 15, "?", "x"},
	        {"R3TR x\r\n", 8, "?", "x"},
	        {"\xff\xf4\xff\xf2"
	         "ABOR\r\n",
	         10, "ABOR", ""},                              /* telnet IP, DM before ABOR */
	        {"\xff\xfb\x01NOOP\r\n", 9, "NOOP", ""},       /* IAC WILL ECHO */
	        {"RETR a\xff\xffz\r\n", 11, "RETR", "a\xffz"}, /* IAC IAC is a literal 0xff */
	        {"CWD /x\r\nPWD\r\n", 8, "CWD", "/x"},         /* only the first line */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char buf[256];
		struct ftp_command c;
		size_t n = strlen(t[i].in);
		memcpy(buf, t[i].in, n);
		int r = ftp_parse_command(buf, n, &c);
		if (r != t[i].ret)
			fail_msg("row %zu (%s): returned %d, want %d", i, t[i].in, r, t[i].ret);
		if (r > 0 &&
		    (strcmp(c.verb, t[i].verb) || strcmp(c.arg, t[i].arg) || c.arg_len != strlen(t[i].arg)))
			fail_msg("row %zu: verb '%s' arg '%s', want '%s' '%s'", i, c.verb, c.arg, t[i].verb,
			         t[i].arg);
	}
}

static void test_line_limit(void **state)
{
	static char buf[FTP_MAX_LINE + 16];
	struct ftp_command c;
	memset(buf, 'A', sizeof(buf));
	assert_int_equal(ftp_parse_command(buf, FTP_MAX_LINE - 1, &c), FTP_PARSE_INCOMPLETE);
	assert_int_equal(ftp_parse_command(buf, FTP_MAX_LINE, &c), FTP_PARSE_TOO_LONG);
	memcpy(buf, "NOOP ", 5);
	buf[FTP_MAX_LINE - 1] = '\n';
	assert_int_equal(ftp_parse_command(buf, FTP_MAX_LINE + 10, &c), FTP_MAX_LINE);
	assert_string_equal(c.verb, "NOOP");
}

static void test_port(void **state)
{
	static const struct {
		const char *in;
		int ok;
		const char *ip;
		unsigned port;
	} t[] = {
	        {"127,0,0,1,4,1", 1, "127.0.0.1", 1025},
	        {"10,0,0,1,0,21", 1, "10.0.0.1", 21},
	        {" 127,0,0,1,255,255 ", 1, "127.0.0.1", 65535},
	        {"127,0,0,1,4", 0, NULL, 0},
	        {"127,0,0,1,4,256", 0, NULL, 0},
	        {"127,0,0,1,4,1,2", 0, NULL, 0},
	        {"127.0.0.1,4,1", 0, NULL, 0},
	        {"", 0, NULL, 0},
	        {"-1,0,0,1,4,1", 0, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage ss;
		char ip[64];
		int r = ftp_parse_port(t[i].in, &ss);
		if ((r == 0) != t[i].ok)
			fail_msg("row %zu (%s): returned %d", i, t[i].in, r);
		if (r == 0) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
			if (strcmp(ip, t[i].ip) || ntohs(s4->sin_port) != t[i].port)
				fail_msg("row %zu: %s:%u", i, ip, ntohs(s4->sin_port));
		}
	}
}

static void test_eprt(void **state)
{
	static const struct {
		const char *in;
		int ok, family;
		unsigned port;
	} t[] = {
	        {"|1|127.0.0.1|6446|", 1, AF_INET, 6446},
	        {"|2|::1|6446|", 1, AF_INET6, 6446},
	        {"!1!127.0.0.1!80!", 1, AF_INET, 80},
	        {"|1|::1|6446|", 0, 0, 0},
	        {"|2|127.0.0.1|6446|", 0, 0, 0},
	        {"|3|127.0.0.1|6446|", 0, 0, 0},
	        {"|1|127.0.0.1|0|", 0, 0, 0},
	        {"|1|127.0.0.1|65536|", 0, 0, 0},
	        {"|1|127.0.0.1|80", 0, 0, 0},
	        {"|1|127.0.0.1|80|x", 0, 0, 0},
	        {"", 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage ss;
		int r = ftp_parse_eprt(t[i].in, &ss);
		if ((r == 0) != t[i].ok)
			fail_msg("row %zu (%s): returned %d", i, t[i].in, r);
		if (r == 0 && (ss.ss_family != t[i].family ||
		               ntohs(((struct sockaddr_in *)&ss)->sin_port) != t[i].port))
			fail_msg("row %zu: family %d", i, ss.ss_family);
	}
}

static void test_join(void **state)
{
	static const struct {
		const char *cwd, *arg, *out;
		int ret;
	} t[] = {
	        {"", "a.txt", "a.txt", 0},
	        {"d", "a.txt", "d/a.txt", 0},
	        {"d", "/a.txt", "a.txt", 0},
	        {"d/e", "..", "d", 0},
	        {"d", "../..", "", 0},
	        {"", "../../etc/passwd", "etc/passwd", 0},
	        {"d", "./x//y/", "d/x/y", 0},
	        {"d", "", "d", 0},
	        {"", "/", "", 0},
	        {"a", "b/../../../c", "c", 0},
	        {"", "..\\..\\x", "..\\..\\x", 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[64];
		int r = fsroot_join(t[i].cwd, t[i].arg, out, sizeof(out));
		if (r != t[i].ret || (r == 0 && strcmp(out, t[i].out)))
			fail_msg("row %zu (%s + %s): %d '%s', want '%s'", i, t[i].cwd, t[i].arg, r, out,
			         t[i].out);
	}
	char small[4];
	assert_int_equal(fsroot_join("", "abcd", small, sizeof(small)), -1);
	assert_int_equal(fsroot_join("", "abc", small, sizeof(small)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_commands), cmocka_unit_test(test_line_limit),
	        cmocka_unit_test(test_port),     cmocka_unit_test(test_eprt),
	        cmocka_unit_test(test_join),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
