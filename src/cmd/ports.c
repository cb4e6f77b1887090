/* ports.c - `loopkit ports`: listening sockets (and with --all connections) with their owners. */
#include <stdio.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/ports.h"

#define PORTS_JSON_MAX (256u << 20) /* 2 KB a socket: room for 100k+ sockets */

struct ports_args {
	int all, tcp, udp, json;
	struct diag_ports_filter filter;
};
#define AT(f) CMD_AT(struct ports_args, f)

static int set_state(void *p, const char *val, char *err, size_t errlen)
{
	return diag_ports_state_parse(val, &((struct ports_args *)p)->filter.states, err, errlen);
}

/* clang-format off */
static const struct cmd_flag ports_flags[] = {
	{ "all", 'a', NULL, NULL, "connections too (every state), and a count per state", CMD_SWITCH, AT(all) },
	{ "tcp", 0, NULL, NULL, "TCP sockets only", CMD_SWITCH, AT(tcp) },
	{ "udp", 'u', NULL, NULL, "UDP sockets only", CMD_SWITCH, AT(udp) },
	{ "port", 'p', "N", NULL, "only sockets whose local port is N (ss's sport = :N)", CMD_UINT, AT(filter.sport), .min = 1, .max = 65535 },
	{ "state", 0, "STATE", NULL, "only sockets in this state, listening or not: listen, established, time-wait, syn-sent, syn-recv, fin-wait-1, fin-wait-2, close-wait, last-ack, closing, unconn, connected (ss's state filter)", CMD_CALL, .set = set_state },
	{ "json", 0, NULL, NULL, "one JSON document: {\"sockets\":[...],\"counts\":{...}}", CMD_SWITCH, AT(json) },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint ports_hints[] = {
        {CMD_HINT_NUMBER, "to see who holds port {}, run: loopkit who {} (or loopkit ports --port {})"},
        {"-t", "TCP only is --tcp here (ss's -t)"},
        {"-l", "listening sockets are the default here; --all adds connections"},
        {0},
};

static int ports_main(void *p)
{
	const struct ports_args *a = p;
	/* a state filter shows remote ends too; a filtered listing has no machine-wide counts */
	unsigned flags = (a->all || a->filter.states ? DIAG_PORTS_ALL : 0) | (a->tcp ? DIAG_PORTS_TCP : 0) |
	                 (a->udp ? DIAG_PORTS_UDP : 0) |
	                 (a->filter.states || a->filter.sport ? DIAG_PORTS_NO_SUMMARY : 0);
	static char outbuf[1 << 16]; /* tens of thousands of lines: fewer writes */
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	struct diag_ports r;
	char err[256];
	if (diag_ports_collect_filtered(&r, flags, &a->filter, err, sizeof err) < 0) {
		cmd_error("ports", err);
		return 1;
	}
	int rc = 0;
	if (a->json) {
		struct buf b;
		buf_init(&b, PORTS_JSON_MAX);
		if (diag_ports_json(&b, &r) < 0) {
			fprintf(stderr, "loopkit ports: output larger than %u bytes\n", PORTS_JSON_MAX);
			rc = 1;
		} else {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
			fputc('\n', stdout);
		}
		buf_free(&b);
	} else {
		diag_ports_print(stdout, &r, flags, diag_color_ok(stdout));
	}
	diag_ports_free(&r);
	return fflush(stdout) != 0 ? 1 : rc;
}

const struct cmd_verb cmd_ports = {
        .name = "ports",
        .summary = "listening sockets (--all: connections) with owners; EXPOSED ones flagged",
        .about = "Lists listening TCP and UDP sockets (IPv4 and IPv6) with the process that holds\n"
                 "each; EXPOSED marks those reachable from the network.\n",
        .flags = ports_flags,
        .size = sizeof(struct ports_args),
        .run = ports_main,
        .hints = ports_hints,
        .examples = "$ loopkit ports\n$ loopkit ports --all --json\n$ loopkit ports --udp\n",
};
