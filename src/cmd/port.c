/* port.c - `loopkit port`: free ports for tests, leased so concurrent callers never share one. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"
#include "diag/portlease.h"
#include "diag/portserver.h"

static const struct cmd_old_flag port_flags[] = {
	{ "--count", "N", "how many ports (default 1, at most 1000)" },
	{ "--udp", NULL, "the ports are for UDP: check only UDP (default: free for TCP and UDP)" },
	{ "--lease", "SECS", "how long no other caller gets the same port (default 60)" },
	{ "--pool", "LO-HI", "take ports from LO-HI (default 15000-24999, minus the kernel's ephemeral range)" },
	{ "--server", NULL, "run a port server on SOCKET (default $PORTSERVER_ADDRESS or @unittest-portserver)" },
	{ "--json", NULL, "one JSON document: {\"ports\":[...],\"source\",\"lease_secs\",...}" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static void port_usage(FILE *f)
{
	fprintf(f, "usage: loopkit port [OPTIONS]\n"
	           "       loopkit port --server [SOCKET] [--pool LO-HI] [--udp]\n\n"
	           "Prints free port(s) on 127.0.0.1, outside the kernel's ephemeral range, leased\n"
	           "so that concurrent callers never get the same one. With PORTSERVER_ADDRESS set\n"
	           "it asks that port server first. --server runs a server speaking portpicker's\n"
	           "protocol (a pid line in, a port line out). See docs/port.md.\n\noptions:\n");
	cmd_old_print_flags(f, port_flags);
}

static int parse_pool(const char *s, struct portlease_range *r)
{
	unsigned lo, hi;
	int used = 0;

	if (sscanf(s, "%u-%u%n", &lo, &hi, &used) != 2 || s[used] || lo == 0 || lo > hi ||
			hi > 65535)
		return -1;
	r->lo = (uint16_t)lo;
	r->hi = (uint16_t)hi;
	return 0;
}

static void server_ready(const char *addr)
{
	printf("%s\n", addr);
	fflush(stdout);
	fprintf(stderr, "loopkit: port server on %s; clients: PORTSERVER_ADDRESS=%s\n", addr, addr);
}

int cmd_old_port(int argc, char **argv)
{
	unsigned long count = 1, lease = PORTLEASE_DEFAULT_SECS;
	unsigned need = PORTLEASE_TCP | PORTLEASE_UDP;
	struct portlease_range want = { PORTLEASE_POOL_LO, PORTLEASE_POOL_HI }, eph, pool[2];
	int json = 0, server = 0;
	const char *sock = NULL;

	for (int i = 1; i < argc; i++) {
		const char *val;
		char *end;
		if (argv[i][0] != '-') {
			if (!server || sock) {
				fprintf(stderr, "loopkit port: unexpected argument '%s'\n", argv[i]);
				port_usage(stderr);
				return 2;
			}
			sock = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "-h")) {
			port_usage(stdout);
			return 0;
		}
		const struct cmd_old_flag *f = cmd_old_match(port_flags, argc, argv, &i, &val, "port");
		if (!f) {
			port_usage(stderr);
			return 2;
		}
		const char *n = f->name + 2;
		if (!strcmp(n, "help")) {
			port_usage(stdout);
			return 0;
		} else if (!strcmp(n, "count")) {
			errno = 0;
			count = strtoul(val, &end, 10);
			if (errno || *end || val[0] == '-' || count < 1 || count > PORTLEASE_MAX_COUNT) {
				fprintf(stderr, "loopkit port: --count %s: a number from 1 to %d\n", val,
				        PORTLEASE_MAX_COUNT);
				return 2;
			}
		} else if (!strcmp(n, "lease")) {
			errno = 0;
			lease = strtoul(val, &end, 10);
			if (errno || *end || val[0] == '-' || lease < 1 || lease > 86400 * 7) {
				fprintf(stderr, "loopkit port: --lease %s: whole seconds, 1 to 604800\n", val);
				return 2;
			}
		} else if (!strcmp(n, "pool")) {
			if (parse_pool(val, &want) < 0) {
				fprintf(stderr, "loopkit port: --pool %s: a range like 15000-24999\n", val);
				return 2;
			}
		} else if (!strcmp(n, "udp")) {
			need = PORTLEASE_UDP;
		} else if (!strcmp(n, "server")) {
			server = 1;
		} else if (!strcmp(n, "json")) {
			json = 1;
		}
	}
	char dir[4096], err[512];
	if (portlease_dir(dir, sizeof dir, err, sizeof err) < 0) {
		fprintf(stderr, "loopkit port: lease directory: %s\n", err);
		return 1;
	}
	portlease_ephemeral(&eph);
	size_t npool = portlease_pool(want, eph, pool);
	if (npool == 0) {
		fprintf(stderr, "loopkit port: the pool %u-%u lies inside the kernel's ephemeral range "
		        "%u-%u (net.ipv4.ip_local_port_range); use --pool with ports outside it\n",
		        want.lo, want.hi, eph.lo, eph.hi);
		return 1;
	}

	if (server) {
		const char *env = getenv("PORTSERVER_ADDRESS");
		struct portserver ps = {
			.addr = sock ? sock : env && env[0] ? env : PORTSERVER_DEFAULT_ADDR,
			.pool = pool, .npool = npool, .need = need, .dir = dir, .log = stderr,
		};
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		if (portserver_run(&ps, server_ready, err, sizeof err) < 0) {
			fprintf(stderr, "loopkit port --server: %s\n", err);
			return 1;
		}
		fprintf(stderr, "loopkit: port server stopped (%lu ports handed out, %lu refused)\n",
		        ps.served, ps.refused);
		return 0;
	}

	uint16_t ports[PORTLEASE_MAX_COUNT];
	size_t got = 0;
	const char *source = "lease";
	const char *env = getenv("PORTSERVER_ADDRESS");
	if (env && env[0]) {
		/* The server ties each port to our caller (the shell or test runner), since
		 * this process exits at once. */
		for (; got < count; got++) {
			int p = portserver_request(env, getppid());
			if (p <= 0)
				break;
			ports[got] = (uint16_t)p;
		}
		if (got)
			source = "portserver";
	}
	if (got < count) {
		struct portlease tmpl = { .expires = (int64_t)time(NULL) + (int64_t)lease };
		int k = portlease_take(dir, pool, npool, count - got, need, &tmpl, ports + got, err,
		                       sizeof err);
		if (k < 0) {
			fprintf(stderr, "loopkit port: %s\n", err);
			return 1;
		}
		got += (size_t)k;
	}
	if (got < count) {
		fprintf(stderr, "loopkit port: only %zu of %lu ports free in the pool; free some or "
		        "widen it with --pool\n", got, count);
		return 1;
	}
	if (json) {
		struct buf b;
		struct json j;
		buf_init(&b, 1 << 20);
		json_init(&j, &b, 0);
		json_obj_begin(&j);
		json_key(&j, "ports");
		json_arr_begin(&j);
		for (size_t i = 0; i < got; i++)
			json_uint(&j, ports[i]);
		json_arr_end(&j);
		json_key(&j, "host");
		json_str(&j, "127.0.0.1");
		json_key(&j, "source");
		json_str(&j, source);
		json_key(&j, "lease_secs");
		if (!strcmp(source, "lease"))
			json_uint(&j, lease);
		else
			json_null(&j);
		json_key(&j, "ephemeral_range");
		json_arr_begin(&j);
		json_uint(&j, eph.lo);
		json_uint(&j, eph.hi);
		json_arr_end(&j);
		json_obj_end(&j);
		fwrite(buf_start(&b), 1, buf_used(&b), stdout);
		fputc('\n', stdout);
		buf_free(&b);
	} else {
		for (size_t i = 0; i < got; i++)
			printf("%u\n", ports[i]);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

const struct cmd_verb cmd_port = { .name = "port", .summary = "free ports for tests, never the same to two callers; --server: a portserver", .legacy = cmd_old_port };
