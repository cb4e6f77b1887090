/* who.c - `loopkit who PORT`: every process holding a local port, listening or connected. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/ports.h"

#define WHO_JSON_MAX (64u << 20)

static const struct cmd_old_flag who_flags[] = {
	{ "--json", NULL, "one JSON document: {\"port\",\"free\",\"processes\":[...],\"sockets\":[...]}" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static void who_usage(FILE *f)
{
	fprintf(f, "usage: loopkit who PORT [OPTIONS]\n\n"
	           "Names every process holding local port PORT (TCP or UDP, listening or\n"
	           "connected) with pid, user and command line. Exit 1 when nobody holds it.\n\n"
	           "options:\n");
	cmd_old_print_flags(f, who_flags);
}

int cmd_old_who(int argc, char **argv)
{
	const char *port_arg = NULL;
	int json = 0;

	for (int i = 1; i < argc; i++) {
		const char *val;
		if (argv[i][0] != '-') {
			if (port_arg) {
				fprintf(stderr, "loopkit who: one PORT only, got '%s' and '%s'\n", port_arg,
				        argv[i]);
				return 2;
			}
			port_arg = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "-h")) {
			who_usage(stdout);
			return 0;
		}
		const struct cmd_old_flag *f = cmd_old_match(who_flags, argc, argv, &i, &val, "who");
		if (!f) {
			who_usage(stderr);
			return 2;
		}
		if (!strcmp(f->name, "--help")) {
			who_usage(stdout);
			return 0;
		}
		json = 1;
	}
	if (!port_arg) {
		fprintf(stderr, "loopkit who: which port? e.g. loopkit who 62893\n");
		who_usage(stderr);
		return 2;
	}
	char *end;
	errno = 0;
	unsigned long port = strtoul(port_arg, &end, 10);
	if (errno || *end || end == port_arg || port_arg[0] == '-' || port == 0 || port > 65535) {
		fprintf(stderr, "loopkit who: '%s' is not a port (1-65535)\n", port_arg);
		return 2;
	}

	struct diag_ports p;
	char err[256];
	if (diag_ports_collect(&p, 0, (uint16_t)port, err, sizeof err) < 0) {
		fprintf(stderr, "loopkit who: %s\n", err);
		return 1;
	}
	int rc = p.nrows ? 0 : 1;
	if (json) {
		struct buf b;
		buf_init(&b, WHO_JSON_MAX);
		if (diag_who_json(&b, &p, (uint16_t)port) < 0) {
			fprintf(stderr, "loopkit who: output too large\n");
			rc = 1;
		} else {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
			fputc('\n', stdout);
		}
		buf_free(&b);
	} else {
		diag_who_print(stdout, &p, (uint16_t)port, diag_color_ok(stdout));
	}
	diag_ports_free(&p);
	fflush(stdout);
	return rc;
}

const struct cmd_verb cmd_who = { .name = "who", .summary = "which processes hold a port (exit 1 when it is free)", .legacy = cmd_old_who };
