/* test_ftp.c - FTP parsers, path joining, listing lines and the command table. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/fsroot.h"
#include "ftp/cmds.h"
#include "ftp/list.h"
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
		int r = ftp_parse_port(t[i].in, &ss);
		if ((r == 0) != t[i].ok)
			fail_msg("row %zu (%s): returned %d", i, t[i].in, r);
		if (r == 0) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			char ip[64];
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

/*
 * listing lines (list.c)
 */

#define NOW     1735787045 /* 2025-01-02 03:04:05 UTC */
#define LONGAGO 1262304000 /* 2010-01-01 00:00:00 UTC */

static void test_list_lines(void **state)
{
	static const struct {
		enum ftp_list_kind k;
		const char *name;
		int is_dir, write, crlf;
		mode_t mode;
		uint64_t size;
		time_t mtime;
		const char *want; /* "" when the entry must not be listed */
	} t[] = {
	        {FTP_L_LIST, "a.txt", 0, 0, 1, 0644, 12, NOW - 3600,
	         "-rw-r--r-- 1 ftp ftp           12 Jan  2 02:04 a.txt\r\n"},
	        {FTP_L_LIST, "old.bin", 0, 0, 1, 0600, 1ull << 40, LONGAGO,
	         "-rw------- 1 ftp ftp 1099511627776 Jan  1  2010 old.bin\r\n"},
	        {FTP_L_LIST, "sub", 1, 0, 1, 0755, 4096, NOW - 86400 * 30,
	         "drwxr-xr-x 1 ftp ftp         4096 Dec  3 03:04 sub\r\n"},
	        {FTP_L_LIST, "future", 0, 0, 1, 0777, 0, NOW + 86400 * 2,
	         "-rwxrwxrwx 1 ftp ftp            0 Jan  4  2025 future\r\n"},
	        {FTP_L_LIST, "no crlf", 0, 0, 0, 0644, 1, NOW,
	         "-rw-r--r-- 1 ftp ftp            1 Jan  2 03:04 no crlf"},
	        {FTP_L_NLST, "a b.txt", 0, 0, 1, 0644, 1, NOW, "a b.txt\r\n"},
	        {FTP_L_NLST, "dir", 1, 1, 0, 0755, 1, NOW, "dir"},
	        {FTP_L_MLSD, "a.txt", 0, 0, 1, 0644, 12, NOW,
	         "type=file;size=12;modify=20250102030405;perm=r;UNIX.mode=0644;UNIX.owner=0;UNIX.group=0; "
	         "a.txt\r\n"},
	        {FTP_L_MLSD, "a.txt", 0, 1, 1, 0644, 12, NOW,
	         "type=file;size=12;modify=20250102030405;perm=radfw;UNIX.mode=0644;UNIX.owner=0;UNIX.group="
	         "0; a.txt\r\n"},
	        {FTP_L_MLSD, "d", 1, 0, 1, 0755, 0, LONGAGO,
	         "type=dir;size=0;modify=20100101000000;perm=el;UNIX.mode=0755;UNIX.owner=0;UNIX.group=0; "
	         "d\r\n"},
	        {FTP_L_MLSD, "d", 1, 1, 1, 0755, 0, LONGAGO,
	         "type=dir;size=0;modify=20100101000000;perm=elcmp;UNIX.mode=0755;UNIX.owner=0;UNIX.group=0; "
	         "d\r\n"},
	        {FTP_L_MLSD, "\xc3\xbcn\xc3\xaf_\xc3\xb8.txt", 0, 0, 1, 0644, 1, NOW,
	         "type=file;size=1;modify=20250102030405;perm=r;UNIX.mode=0644;UNIX.owner=0;UNIX.group=0; "
	         "\xc3\xbcn\xc3\xaf_\xc3\xb8.txt\r\n"},
	        /* One name must never read as two lines. */
	        {FTP_L_LIST, "evil\r\n226 done", 0, 0, 1, 0644, 1, NOW, ""},
	        {FTP_L_NLST, "a\nb", 0, 0, 1, 0644, 1, NOW, ""},
	        {FTP_L_MLSD, "a\rb", 0, 0, 1, 0644, 1, NOW, ""},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[FTP_LIST_LINE_MAX];
		struct dirsnap_ent e = {.name = t[i].name,
		                        .is_dir = t[i].is_dir,
		                        .mode = t[i].mode | (t[i].is_dir ? S_IFDIR : S_IFREG),
		                        .size = t[i].size,
		                        .mtime = {.tv_sec = t[i].mtime}};
		size_t n = ftp_list_line(out, sizeof(out), t[i].k, &e, NOW, t[i].write, t[i].crlf);
		if (n != strlen(t[i].want) || (n && strcmp(out, t[i].want)))
			fail_msg("row %zu: got %zu \"%s\", want \"%s\"", i, n, n ? out : "", t[i].want);
	}
	/* The longest name fits FTP_LIST_LINE_MAX in every kind. */
	char name[NAME_MAX + 1], out[FTP_LIST_LINE_MAX];
	memset(name, 'n', NAME_MAX);
	name[NAME_MAX] = 0;
	struct dirsnap_ent e = {.name = name,
	                        .size = UINT64_MAX,
	                        .mode = 0777,
	                        .uid = (uid_t)-2,
	                        .gid = (gid_t)-2,
	                        .mtime = {.tv_sec = NOW}};
	for (int k = FTP_L_LIST; k <= FTP_L_MLSD; k++) {
		size_t n = ftp_list_line(out, sizeof(out), (enum ftp_list_kind)k, &e, NOW, 1, 1);
		assert_true(n > NAME_MAX && n < sizeof(out));
		assert_memory_equal(out + n - NAME_MAX - 2, name, NAME_MAX);
		assert_memory_equal(out + n - 2, "\r\n", 2);
	}
	/* Cut to a small buffer: terminated, never over. */
	assert_int_equal(ftp_list_line(out, 8, FTP_L_NLST, &e, NOW, 0, 1), 7);
	assert_int_equal(out[7], 0);
}

static void test_list_helpers(void **state)
{
	char out[128], m[16];
	assert_string_equal(ftp_list_quote("", out, sizeof(out)), "/");
	assert_string_equal(ftp_list_quote("a/b", out, sizeof(out)), "/a/b");
	assert_string_equal(ftp_list_quote("q\"d/x", out, sizeof(out)), "/q\"\"d/x");
	assert_string_equal(ftp_list_quote("abcdef", out, 4), "/ab");
	assert_string_equal(ftp_list_quote("\"\"", out, 4), "/\"\"");
	ftp_list_modify(NOW, m);
	assert_string_equal(m, "20250102030405");
	ftp_list_modify(0, m);
	assert_string_equal(m, "19700101000000");
	assert_string_equal(ftp_list_skip_options("-la"), "");
	assert_string_equal(ftp_list_skip_options("-la  sub dir"), "sub dir");
	assert_string_equal(ftp_list_skip_options("-a -l x"), "x");
	assert_string_equal(ftp_list_skip_options("x -l"), "x -l");
	struct dirsnap_ent e = {.name = "x",
	                        .mode = S_IFREG | 04640,
	                        .uid = 1000,
	                        .gid = 65534,
	                        .size = 5,
	                        .mtime = {.tv_sec = NOW}};
	size_t n = ftp_list_facts(out, sizeof(out), &e, 0);
	/* UNIX.mode: the nine permission bits, as LIST shows them (no setuid: lftp would copy it). */
	assert_string_equal(out,
	                    "type=file;size=5;modify=20250102030405;perm=r;UNIX.mode=0640;UNIX.owner=1000;"
	                    "UNIX.group=65534; ");
	assert_int_equal(n, strlen(out));
}

/*
 * the command table (cmds.c)
 */

static int in_list(const char *verb, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(verb, *list))
			return 1;
	return 0;
}

static void test_command_table(void **state)
{
	/* What a client may send before logging in: exactly these (RFC 959 and 2389). */
	static const char *const prelogin[] = {"AUTH", "FEAT", "HELP", "NOOP", "OPTS",
	                                       "PASS", "QUIT", "SYST", "USER", NULL};
	static const char *const during[] = {"ABOR", "NOOP", "STAT", NULL};
	static const char *const data[] = {"APPE", "LIST", "MLSD", "NLST", "RETR", "STOR", NULL};
	static const char *const write[] = {"APPE", "DELE", "MFMT", "MKD",  "RMD", "RNFR",
	                                    "RNTO", "STOR", "XMKD", "XRMD", NULL};
	assert_true(ftp_ncmds > 40);
	for (size_t i = 0; i < ftp_ncmds; i++) {
		const struct ftp_cmd *c = &ftp_cmds[i];
		if (i && strcmp(ftp_cmds[i - 1].verb, c->verb) >= 0)
			fail_msg("row %zu %s: the table must be sorted and unique (after %s)", i, c->verb,
			         ftp_cmds[i - 1].verb);
		if (ftp_cmd_find(c->verb) != c)
			fail_msg("row %zu %s: ftp_cmd_find misses it", i, c->verb);
		if (!c->fn || strlen(c->verb) > 4 || strlen(c->verb) < 3)
			fail_msg("row %zu %s: no handler, or not a 3-4 letter verb", i, c->verb);
		if ((!(c->flags & FTP_C_LOGIN)) != in_list(c->verb, prelogin))
			fail_msg("row %zu %s: login flag disagrees with the allow-list", i, c->verb);
		if (!!(c->flags & FTP_C_XFER) != in_list(c->verb, during))
			fail_msg("row %zu %s: during-transfer flag wrong", i, c->verb);
		if (!!(c->flags & FTP_C_DATA) != in_list(c->verb, data))
			fail_msg("row %zu %s: needs-data flag wrong", i, c->verb);
		if (!!(c->flags & FTP_C_WRITE) != in_list(c->verb, write))
			fail_msg("row %zu %s: needs-write flag wrong", i, c->verb);
	}
	assert_null(ftp_cmd_find("retr")); /* the parser upper-cases */
	assert_null(ftp_cmd_find("GET"));
	assert_null(ftp_cmd_find(""));
	assert_null(ftp_cmd_find("?"));
	assert_null(ftp_cmd_find("ZZZZ"));
	assert_non_null(ftp_cmd_find("ABOR"));
	assert_non_null(ftp_cmd_find("XRMD"));
}

/* HELP names every verb the table offers, once, and nothing else; FEAT is exactly the
 * table's feat column. */
static void test_help_and_feat_from_table(void **state)
{
	char help[2048], feat[1024];
	size_t n = ftp_cmds_help(help, sizeof(help));
	assert_int_equal(n, strlen(help));
	size_t words = 0, offered = 0;
	for (char *line = strtok(help, "\n"); line; line = strtok(NULL, "\n")) {
		size_t on_line = 0;
		assert_true(line[0] != ' ');
		for (char *p = line; *p;) {
			size_t len = strcspn(p, " ");
			char verb[8];
			assert_true(len > 0 && len < sizeof(verb));
			memcpy(verb, p, len);
			verb[len] = 0;
			const struct ftp_cmd *c = ftp_cmd_find(verb);
			if (!c || (c->flags & FTP_C_UNIMPL))
				fail_msg("HELP lists %s, which the table does not offer", verb);
			words++;
			on_line++;
			p += len + (p[len] == ' ');
		}
		assert_true(on_line <= FTP_HELP_PER_LINE);
	}
	for (size_t i = 0; i < ftp_ncmds; i++)
		offered += !(ftp_cmds[i].flags & FTP_C_UNIMPL);
	assert_int_equal(words, offered); /* each once: all found, and no more words */

	static const char *const want[] = {
	        "EPRT",
	        "EPSV",
	        "MDTM",
	        "MFMT",
	        "MLST type*;size*;modify*;perm*;UNIX.mode*;UNIX.owner*;UNIX.group*;",
	        "PASV",
	        "REST STREAM",
	        "SIZE",
	        "TVFS",
	        "UTF8",
	        NULL};
	n = ftp_cmds_feat(feat, sizeof(feat));
	assert_int_equal(n, strlen(feat));
	size_t lines = 0;
	for (char *line = strtok(feat, "\n"); line; line = strtok(NULL, "\n")) {
		if (!in_list(line, want))
			fail_msg("FEAT line \"%s\" unexpected", line);
		lines++;
	}
	assert_int_equal(lines, sizeof(want) / sizeof(want[0]) - 1);
	/* Cut short: still terminated, within the buffer. */
	assert_true(ftp_cmds_help(help, 10) < 10);
	assert_true(ftp_cmds_feat(feat, 3) < 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_commands),
	        cmocka_unit_test(test_line_limit),
	        cmocka_unit_test(test_port),
	        cmocka_unit_test(test_eprt),
	        cmocka_unit_test(test_join),
	        cmocka_unit_test(test_list_lines),
	        cmocka_unit_test(test_list_helpers),
	        cmocka_unit_test(test_command_table),
	        cmocka_unit_test(test_help_and_feat_from_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
