/* ports.c - `loopkit ports`: listening sockets (and with --all connections) with their owners. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/ports.h"

#define PORTS_JSON_MAX (256u << 20) /* 2 KB a socket: room for 100k+ sockets */

static const struct cmd_old_flag ports_flags[] = {
	{ "--all", NULL, "connections too (every state), and a count per state" },
	{ "--tcp", NULL, "TCP sockets only" },
	{ "--udp", NULL, "UDP sockets only" },
	{ "--json", NULL, "one JSON document: {\"sockets\":[...],\"counts\":{...}}" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static void ports_usage(FILE *f)
{
	fprintf(f, "usage: loopkit ports [OPTIONS]\n\n"
	           "Lists listening TCP and UDP sockets (IPv4 and IPv6) with the process that\n"
	           "holds each; EXPOSED marks those reachable from the network (see docs/ports.md).\n\n"
	           "options:\n");
	cmd_old_print_flags(f, ports_flags);
}

int cmd_old_ports(int argc, char **argv)
{
	unsigned flags = 0;
	int json = 0;

	for (int i = 1; i < argc; i++) {
		const char *val;
		if (!strcmp(argv[i], "-h")) {
			ports_usage(stdout);
			return 0;
		}
		const struct cmd_old_flag *f = cmd_old_match(ports_flags, argc, argv, &i, &val, "ports");
		if (!f) {
			ports_usage(stderr);
			return 2;
		}
		const char *n = f->name + 2;
		if (!strcmp(n, "help")) {
			ports_usage(stdout);
			return 0;
		} else if (!strcmp(n, "all")) {
			flags |= DIAG_PORTS_ALL;
		} else if (!strcmp(n, "tcp")) {
			flags |= DIAG_PORTS_TCP;
		} else if (!strcmp(n, "udp")) {
			flags |= DIAG_PORTS_UDP;
		} else if (!strcmp(n, "json")) {
			json = 1;
		}
	}
	static char outbuf[1 << 16]; /* tens of thousands of lines: fewer writes */
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	struct diag_ports p;
	char err[256];
	if (diag_ports_collect(&p, flags, 0, err, sizeof err) < 0) {
		fprintf(stderr, "loopkit ports: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (json) {
		struct buf b;
		buf_init(&b, PORTS_JSON_MAX);
		if (diag_ports_json(&b, &p) < 0) {
			fprintf(stderr, "loopkit ports: output larger than %u bytes\n", PORTS_JSON_MAX);
			rc = 1;
		} else {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
			fputc('\n', stdout);
		}
		buf_free(&b);
	} else {
		diag_ports_print(stdout, &p, flags, diag_color_ok(stdout));
	}
	diag_ports_free(&p);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}

const struct cmd_verb cmd_ports = { .name = "ports", .summary = "listening sockets (--all: connections) with owners; EXPOSED ones flagged", .legacy = cmd_old_ports };
