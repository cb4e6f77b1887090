/* doctor.c - `loopkit doctor`: is the loopback stack healthy? Each check PASS/WARN/FAIL/SKIP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/doctor.h"
#include "diag/ports.h"

static const struct cmd_flag doctor_flags[] = {
	{ "--port", "N", "the port to look at: free or held, and by whom (default 62893)" },
	{ "--json", NULL, "one JSON document: {\"checks\":[...],\"summary\":{...}}" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static void doctor_usage(FILE *f)
{
	fprintf(f, "usage: loopkit doctor [--port N] [--json]\n\n"
	           "Checks the loopback stack: lo, its addresses, localhost, ICMP/TCP/UDP round\n"
	           "trips on IPv4 and IPv6, ephemeral ports, a port, limits. Exit 1 when a check\n"
	           "FAILs. See docs/doctor.md.\n\noptions:\n");
	cmd_print_flags(f, doctor_flags);
}

int cmd_doctor(int argc, char **argv)
{
	unsigned long port = 62893;
	int json = 0;

	for (int i = 1; i < argc; i++) {
		const char *val;
		char *end;
		if (!strcmp(argv[i], "-h")) {
			doctor_usage(stdout);
			return 0;
		}
		if (argv[i][0] != '-') {
			fprintf(stderr, "loopkit doctor: unexpected argument '%s'\n", argv[i]);
			doctor_usage(stderr);
			return 2;
		}
		const struct cmd_flag *f = cmd_match(doctor_flags, argc, argv, &i, &val, "doctor");
		if (!f) {
			doctor_usage(stderr);
			return 2;
		}
		if (!strcmp(f->name, "--help")) {
			doctor_usage(stdout);
			return 0;
		} else if (!strcmp(f->name, "--json")) {
			json = 1;
		} else if (!strcmp(f->name, "--port")) {
			errno = 0;
			port = strtoul(val, &end, 10);
			if (errno || *end || val[0] == '-' || port < 1 || port > 65535) {
				fprintf(stderr, "loopkit doctor: --port %s: a port is 1-65535\n", val);
				return 2;
			}
		}
	}
	struct doctor_report r;
	doctor_run((uint16_t)port, &r);
	if (json) {
		struct buf b;
		buf_init(&b, 1 << 20);
		if (doctor_json(&b, &r) == 0) {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
			fputc('\n', stdout);
		}
		buf_free(&b);
	} else {
		doctor_print(stdout, &r, diag_color_ok(stdout));
	}
	fflush(stdout);
	return r.count[DOCTOR_FAIL] ? 1 : 0;
}
