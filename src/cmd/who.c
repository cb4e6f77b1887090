/* who.c - `loopkit who PORT`: every process holding a local port, listening or connected. */
#include <stdio.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/ports.h"

#define WHO_JSON_MAX (64u << 20)

struct who_args {
	unsigned port;
	int json;
};
#define AT(f) CMD_AT(struct who_args, f)

/* clang-format off */
static const struct cmd_flag who_flags[] = {
	{ "PORT", 0, NULL, NULL, "the local port", CMD_UINT, AT(port), .min = 1, .max = 65535, .attr = CMD_ARG | CMD_NEED },
	{ "json", 0, NULL, NULL, "one JSON document: {\"port\",\"free\",\"kernel\",\"processes\":[...],\"sockets\":[...]}", CMD_SWITCH, AT(json) },
	{ 0 },
};
/* clang-format on */

static int who_main(void *p)
{
	const struct who_args *a = p;
	struct diag_ports r;
	char err[256];
	if (diag_ports_collect(&r, 0, (uint16_t)a->port, err, sizeof err) < 0) {
		cmd_error("who", err);
		return 1;
	}
	int rc = r.nrows || r.kernel_blocks ? 0 : 1;
	if (a->json) {
		struct buf b;
		buf_init(&b, WHO_JSON_MAX);
		if (diag_who_json(&b, &r, (uint16_t)a->port) < 0) {
			fprintf(stderr, "loopkit who: output too large\n");
			rc = 1;
		} else {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
			fputc('\n', stdout);
		}
		buf_free(&b);
	} else {
		diag_who_print(stdout, &r, (uint16_t)a->port, diag_color_ok(stdout));
	}
	diag_ports_free(&r);
	fflush(stdout);
	return rc;
}

const struct cmd_verb cmd_who = {
        .name = "who",
        .summary = "which processes hold a port (exit 1 when it is free)",
        .about = "Names every process holding local port PORT (TCP or UDP, listening or connected)\n"
                 "with pid, user and command line, and what the kernel keeps of closed connections\n"
                 "on it when that keeps a server out. Exit 1 when it is free: no process holds it,\n"
                 "and nothing the kernel keeps there keeps a server out.\n",
        .flags = who_flags,
        .size = sizeof(struct who_args),
        .run = who_main,
        .examples = "$ loopkit who " CMD_HOME_PORT "\n$ loopkit who 5432 --json\n",
};
