/* port.c - `loopkit port`: free ports for tests, leased so concurrent callers never share one. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/portlease.h"
#include "diag/portserver.h"

#define XSTR(x)             STR(x)
#define STR(x)              #x
#define PORT_MAX_LEASE_SECS (7 * 86400)

struct port_args {
	unsigned count, lease;
	int udp, server, json;
	struct strparse_range pool;
	const char *sock;
};
#define AT(f) CMD_AT(struct port_args, f)

/* clang-format off */
static const struct cmd_flag port_flags[] = {
	{ "SOCKET", 0, NULL, NULL, "with --server: where to listen, @abstract or a path ($PORTSERVER_ADDRESS, else " PORTSERVER_DEFAULT_ADDR ")", CMD_STR, AT(sock), .attr = CMD_ARG },
	{ "count", 'c', "N", "1", "how many ports", CMD_UINT, AT(count), .min = 1, .max = PORTLEASE_MAX_COUNT },
	{ "udp", 'u', NULL, NULL, "the ports are for UDP: check only UDP (else free for TCP and UDP)", CMD_SWITCH, AT(udp) },
	{ "lease", 0, "SECS", XSTR(PORTLEASE_DEFAULT_SECS), "how long no other caller gets the same port, in whole seconds", CMD_UINT, AT(lease), .min = 1, .max = PORT_MAX_LEASE_SECS },
	{ "pool", 0, "LO-HI", XSTR(PORTLEASE_POOL_LO) "-" XSTR(PORTLEASE_POOL_HI), "take ports from LO-HI, minus the kernel's ephemeral range", CMD_RANGE, AT(pool), .min = 1, .max = 65535 },
	{ "server", 0, NULL, NULL, "run a port server (portpicker's protocol) on SOCKET", CMD_SWITCH, AT(server) },
	{ "json", 0, NULL, NULL, "one JSON document: {\"ports\":[...],\"source\",\"lease_secs\",...}", CMD_SWITCH, AT(json) },
	{ 0 },
};
/* clang-format on */

static void server_ready(const char *addr)
{
	printf("%s\n", addr);
	fflush(stdout);
	fprintf(stderr, "loopkit: port server on %s; clients: PORTSERVER_ADDRESS=%s\n", addr, addr);
}

static int port_server(const struct port_args *a, unsigned need, struct portlease_range want)
{
	struct portlease_range pool[2], eph;
	char dir[4096], err[512];
	const char *env = getenv("PORTSERVER_ADDRESS");
	struct portserver ps = {
	        .addr = a->sock         ? a->sock
	                : env && env[0] ? env
	                                : PORTSERVER_DEFAULT_ADDR,
	        .pool = pool,
	        .need = need,
	        .dir = dir,
	        .log = stderr,
	};
	if (portlease_dir(dir, sizeof dir, err, sizeof err) < 0 ||
	    !(ps.npool = portserver_pool(want, pool, &eph, err, sizeof err))) {
		fprintf(stderr, "loopkit port --server: %s\n", err);
		return 1;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (portserver_run(&ps, server_ready, err, sizeof err) < 0) {
		fprintf(stderr, "loopkit port --server: %s\n", err);
		return 1;
	}
	fprintf(stderr, "loopkit: port server stopped (%lu ports handed out, %lu refused)\n", ps.served,
	        ps.refused);
	return 0;
}

static int port_main(void *p)
{
	const struct port_args *a = p;
	unsigned need = a->udp ? PORTLEASE_UDP : PORTLEASE_TCP | PORTLEASE_UDP;
	struct portlease_range want = {(uint16_t)a->pool.lo, (uint16_t)a->pool.hi};
	if (a->sock && !a->server) {
		fprintf(stderr, "loopkit port: unexpected argument '%s' (a SOCKET goes with --server)\n",
		        a->sock);
		return 2;
	}
	if (a->server)
		return port_server(a, need, want);
	/* A port server ties each port to our caller (the shell or test runner): this
	 * process exits at once. */
	struct portserver_grant g;
	char err[512];
	if (portserver_grant(a->count, need, want, a->lease, getenv("PORTSERVER_ADDRESS"), getppid(), &g, err,
	                     sizeof err) < 0) {
		cmd_error("port", err);
		return 1;
	}
	if (a->json) {
		struct buf b;
		buf_init(&b, 1 << 20);
		portserver_grant_json(&b, &g);
		printf("%.*s\n", (int)buf_used(&b), buf_start(&b));
		buf_free(&b);
	} else {
		for (size_t i = 0; i < g.n; i++)
			printf("%u\n", g.ports[i]);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

const struct cmd_verb cmd_port = {
        .name = "port",
        .summary = "free ports for tests, never the same to two callers; --server: a portserver",
        .about = "Prints free port(s) on 127.0.0.1, outside the kernel's ephemeral range, leased so\n"
                 "that concurrent callers never get the same one. With PORTSERVER_ADDRESS set it asks\n"
                 "that port server first. --server runs a server speaking portpicker's protocol (a pid\n"
                 "line in, a port line out).\n",
        .flags = port_flags,
        .size = sizeof(struct port_args),
        .run = port_main,
        .examples = "$ loopkit port\n$ loopkit port -c 3 --json\n$ loopkit port --server @ci-ports &\n"
                    "$ PORTSERVER_ADDRESS=@ci-ports pytest -n 16\n",
};
