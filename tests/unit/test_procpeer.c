/* test_procpeer.c - which class a process name and command line give (procpeer_classify). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/procpeer.h"

struct row {
	const char *comm;
	const char *cmd; /* arguments separated by '|' (NUL in /proc) */
	enum procpeer_class want;
};

static void test_classify(void **state)
{
	static const struct row t[] = {
	        {"lftp", "lftp|-e|mirror; quit|ftp://127.0.0.1:62893/", PROCPEER_FTP_CLIENT},
	        {"lftp", "lftp", PROCPEER_OTHER}, /* no URL: could be http */
	        {"lftp", "lftp|http://127.0.0.1:8080/", PROCPEER_OTHER},
	        {"curl", "curl|-s|ftp://127.0.0.1:62893/a.txt", PROCPEER_FTP_CLIENT},
	        {"curl", "curl|-s|--url=ftp://127.0.0.1/a", PROCPEER_FTP_CLIENT},
	        {"curl", "curl|FTP://127.0.0.1/a", PROCPEER_FTP_CLIENT}, /* schemes ignore case */
	        {"curl", "curl|http://127.0.0.1:62893/a.txt", PROCPEER_OTHER},
	        {"curl", "curl|ftp://h/a|http://h/b", PROCPEER_OTHER}, /* both: cannot tell */
	        {"loopkit", "loopkit|watch|ftp://127.0.0.1:62893/",
	         PROCPEER_FTP_CLIENT}, /* its own FTP probe */
	        {"loopkit", "loopkit|serve|/srv", PROCPEER_OTHER},
	        {"loopkit", "loopkit|watch|ftp://h/|http://h/", PROCPEER_OTHER},
	        {"curl", "curl|-T|notes.txt|127.0.0.1", PROCPEER_OTHER},
	        {"wget", "wget|-q|ftp://127.0.0.1/x", PROCPEER_FTP_CLIENT},
	        {"aria2c", "aria2c|-x1|ftp://127.0.0.1/big", PROCPEER_FTP_CLIENT},
	        {"ftp", "ftp|-n|127.0.0.1|62893", PROCPEER_FTP_CLIENT},
	        {"inetutils-ftp", "inetutils-ftp|-n", PROCPEER_FTP_CLIENT},
	        {"ncftpget", "ncftpget|-P|62893|127.0.0.1|.|/a", PROCPEER_FTP_CLIENT},
	        {"filezilla", "filezilla", PROCPEER_FTP_CLIENT},
	        {"chromium", "chromium|--headless", PROCPEER_BROWSER},
	        {"firefox-esr", "firefox-esr", PROCPEER_BROWSER},
	        {"code", "code|--type=utility|--utility-sub-type=network.mojom.NetworkService",
	         PROCPEER_BROWSER},
	        {"python3", "python3|-m|pytest", PROCPEER_OTHER},
	        {"node", "node|server.js", PROCPEER_OTHER},
	        {"curlx", "curlx|ftp://h/", PROCPEER_OTHER}, /* a name, exactly */
	        {"", "", PROCPEER_OTHER},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char cmd[512];
		size_t n = strlen(t[i].cmd);
		memcpy(cmd, t[i].cmd, n + 1);
		for (size_t k = 0; k < n; k++)
			if (cmd[k] == '|')
				cmd[k] = '\0';
		const char *rule = NULL;
		enum procpeer_class got = procpeer_classify(t[i].comm, cmd, n ? n + 1 : 0, &rule);
		if (got != t[i].want || !rule || !rule[0])
			fail_msg("row %zu (%s \"%s\"): got %s (%s), want %s", i, t[i].comm, t[i].cmd,
			         procpeer_class_name(got), rule ? rule : "no rule",
			         procpeer_class_name(t[i].want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
