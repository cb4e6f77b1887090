/* serve.c - `loopkit serve`: flags in, an HTTP server on loopback out. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "core/procfs.h"
#include "http/server.h"

static const struct cmd_flag serve_flags[] = {
        {"--host", "ADDR", "address to listen on (default 127.0.0.1; any 127.0.0.0/8 or ::1)"},
        {"--port", "N", "port (default 62893; 0 picks a free one)"},
        {"--public", NULL, "allow a non-loopback or wildcard --host (reachable from the network)"},
        {"--write", NULL, "allow PUT (upload) and DELETE; read-only without it"},
        {"--threads", "N", "event-loop threads (default: number of CPUs)"},
        {"--dotfiles", NULL, "serve and list names starting with '.' (hidden by default)"},
        {"--cors", NULL, "send CORS headers and answer preflight requests"},
        {"--spa", NULL, "serve /index.html for missing paths without an extension"},
        {"--allow-host", "NAME", "accept this Host name too (repeatable; '*' turns the check off)"},
        {"--log", "FORMAT", "access log on stderr: common (default) or json"},
        {"--quiet", NULL, "no access log"},
        {"--max-conns", "N", "most open connections; more get 503 and are closed (default 16384)"},
        {"--max-body", "SIZE", "largest upload (PUT, FTP STOR/APPE), with K, M or G suffix (default 1G)"},
        {"--head-timeout", "SECS", "a request head must arrive within this (default 10) or 408"},
        {"--idle-timeout", "SECS", "close keep-alive connections idle this long (default 15)"},
        {"--body-timeout", "SECS", "longest stall reading a body or writing a response (default 30)"},
        {"--grace", "SECS", "on SIGINT/SIGTERM, time to finish in-flight requests (default 5)"},
        {"--proto", "LIST", "protocols on the port: http,ftp (default), http or ftp"},
        {"--sniff-ms", "MS", "silence before a new connection is greeted as FTP (default 50)"},
        {"--user", "NAME:PASS", "FTP login required (default: anonymous)"},
        {"--pasv-ports", "A-B", "FTP passive data ports (default: any free port)"},
        {"--ftp-idle-timeout", "SECS", "close FTP sessions idle this long, with 421 (default 300)"},
        {"--data-timeout", "SECS", "FTP data connection setup or stall limit (default 30)"},
        {"--help", NULL, "this text"},
        {NULL, NULL, NULL},
};

static void serve_usage(FILE *f)
{
	fprintf(f, "usage: loopkit serve [DIR] [OPTIONS]\n\n"
	           "Serves DIR (default .) over HTTP/1.1 on 127.0.0.1:62893, read-only, with\n"
	           "API-testing endpoints under /_/ (see docs/serve.md).\n\noptions:\n");
	cmd_print_flags(f, serve_flags);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult = 1;
	if (*end == 'k' || *end == 'K')
		mult = 1ull << 10;
	else if (*end == 'm' || *end == 'M')
		mult = 1ull << 20;
	else if (*end == 'g' || *end == 'G')
		mult = 1ull << 30;
	else if (*end)
		return -1;
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -1;
	if (errno || v > (UINT64_MAX >> 30))
		return -1;
	*out = v * mult;
	return 0;
}

static int parse_secs(const char *s, unsigned *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 86400)
		return -1;
	*ms = (unsigned)(v * 1000 + 0.5);
	return 0;
}

static int bad(const char *flag, const char *val, const char *want)
{
	fprintf(stderr, "loopkit serve: %s %s: %s\n", flag, val, want);
	return 2;
}

/* Lets one process hold as many connections as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int serve_main(int argc, char **argv, const char **allow)
{
	struct http_config cfg;
	const char *host = "127.0.0.1", *dir = NULL;
	unsigned long long port = 62893, v;
	int public = 0;
	size_t nallow = 0;
	char ftp_user[64];
	http_config_default(&cfg);
	for (int i = 1; i < argc; i++) {
		const char *val;
		if (argv[i][0] != '-' || !strcmp(argv[i], "-")) {
			if (dir) {
				fprintf(stderr, "loopkit serve: only one DIR, got '%s' and '%s'\n", dir,
				        argv[i]);
				serve_usage(stderr);
				return 2;
			}
			dir = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "-h")) {
			serve_usage(stdout);
			return 0;
		}
		const struct cmd_flag *f = cmd_match(serve_flags, argc, argv, &i, &val, "serve");
		if (!f) {
			serve_usage(stderr);
			return 2;
		}
		const char *n = f->name + 2;
		if (!strcmp(n, "help")) {
			serve_usage(stdout);
			return 0;
		} else if (!strcmp(n, "host")) {
			host = val;
		} else if (!strcmp(n, "port")) {
			if (parse_uint(val, 65535, &port) < 0)
				return bad(f->name, val, "a port is 0-65535");
		} else if (!strcmp(n, "public")) {
			public = 1;
		} else if (!strcmp(n, "write")) {
			cfg.write = 1;
		} else if (!strcmp(n, "threads")) {
			if (parse_uint(val, 256, &v) < 0 || !v)
				return bad(f->name, val, "threads are 1-256");
			cfg.threads = (int)v;
		} else if (!strcmp(n, "dotfiles")) {
			cfg.dotfiles = 1;
		} else if (!strcmp(n, "cors")) {
			cfg.cors = 1;
		} else if (!strcmp(n, "spa")) {
			cfg.spa = 1;
		} else if (!strcmp(n, "allow-host")) {
			allow[nallow++] = val;
		} else if (!strcmp(n, "log")) {
			if (!strcmp(val, "common"))
				cfg.log = HTTP_LOG_COMMON;
			else if (!strcmp(val, "json"))
				cfg.log = HTTP_LOG_JSON;
			else
				return bad(f->name, val, "the formats are common and json");
		} else if (!strcmp(n, "quiet")) {
			cfg.log = HTTP_LOG_NONE;
		} else if (!strcmp(n, "max-conns")) {
			if (parse_uint(val, 10000000, &v) < 0 || !v)
				return bad(f->name, val, "a number from 1");
			cfg.max_conns = (unsigned)v;
		} else if (!strcmp(n, "max-body")) {
			if (parse_size(val, &cfg.max_body) < 0)
				return bad(f->name, val, "a size like 1024, 64K, 10M or 2G");
		} else if (!strcmp(n, "head-timeout")) {
			if (parse_secs(val, &cfg.head_timeout_ms) < 0)
				return bad(f->name, val, "seconds, more than 0");
		} else if (!strcmp(n, "idle-timeout")) {
			if (parse_secs(val, &cfg.idle_timeout_ms) < 0)
				return bad(f->name, val, "seconds, more than 0");
		} else if (!strcmp(n, "body-timeout")) {
			if (parse_secs(val, &cfg.body_timeout_ms) < 0)
				return bad(f->name, val, "seconds, more than 0");
		} else if (!strcmp(n, "grace")) {
			if (parse_secs(val, &cfg.grace_ms) < 0)
				return bad(f->name, val, "seconds, more than 0");
		} else if (!strcmp(n, "proto")) {
			if (!strcmp(val, "http,ftp") || !strcmp(val, "ftp,http"))
				cfg.proto_http = cfg.proto_ftp = 1;
			else if (!strcmp(val, "http"))
				cfg.proto_http = 1, cfg.proto_ftp = 0;
			else if (!strcmp(val, "ftp"))
				cfg.proto_http = 0, cfg.proto_ftp = 1;
			else
				return bad(f->name, val, "use http,ftp, http or ftp");
		} else if (!strcmp(n, "sniff-ms")) {
			if (parse_uint(val, 60000, &v) < 0 || !v)
				return bad(f->name, val, "milliseconds, 1-60000");
			cfg.sniff_ms = (unsigned)v;
		} else if (!strcmp(n, "user")) {
			const char *colon = strchr(val, ':');
			if (!colon || colon == val || !colon[1] || colon - val > 60)
				return bad(f->name, val, "NAME:PASS, both non-empty");
			snprintf(ftp_user, sizeof(ftp_user), "%.*s", (int)(colon - val), val);
			cfg.user = ftp_user;
			cfg.pass = colon + 1;
		} else if (!strcmp(n, "pasv-ports")) {
			unsigned lo, hi;
			char extra;
			if (sscanf(val, "%u-%u%c", &lo, &hi, &extra) != 2 || !lo || lo > hi || hi > 65535)
				return bad(f->name, val, "a range like 50000-50100");
			cfg.ftp.pasv_lo = (uint16_t)lo;
			cfg.ftp.pasv_hi = (uint16_t)hi;
		} else if (!strcmp(n, "ftp-idle-timeout")) {
			if (parse_secs(val, &cfg.ftp.idle_timeout_ms) < 0)
				return bad(f->name, val, "seconds, more than 0");
		} else if (!strcmp(n, "data-timeout")) {
			if (parse_secs(val, &cfg.ftp.data_timeout_ms) < 0)
				return bad(f->name, val, "seconds, more than 0");
		}
	}
	cfg.root = dir ? dir : ".";
	cfg.allow_hosts = allow;
	cfg.nallow_hosts = nallow;
	if (net_parse_addr(host, (uint16_t)port, &cfg.addr, &cfg.addrlen) < 0) {
		fprintf(stderr,
		        "loopkit serve: --host %s is not an IP address (use 127.0.0.1, ::1, or "
		        "another loopback address)\n",
		        host);
		return 2;
	}
	struct sockaddr *sa = (struct sockaddr *)&cfg.addr;
	if (!net_is_loopback(sa)) {
		if (!public) {
			fprintf(stderr,
			        "loopkit serve: --host %s is %s: anyone on the network could read "
			        "%s. Add --public if that is what you want.\n",
			        host, net_is_wildcard(sa) ? "every interface" : "not a loopback address",
			        cfg.root);
			return 2;
		}
		fprintf(stderr, "loopkit: WARNING: --public: serving %s to the NETWORK on %s, %s\n", cfg.root,
		        host, cfg.write ? "WRITABLE by anyone who can reach it" : "read-only");
	}

	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	raise_nofile();

	char err[512];
	int eno;
	struct http_server *s = http_server_new(&cfg, err, sizeof(err), &eno);
	if (!s) {
		if (eno == EADDRINUSE) {
			char who[512];
			if (procfs_port_holder_text((uint16_t)port, who, sizeof(who)))
				fprintf(stderr,
				        "loopkit serve: port %llu on %s is held by %s; try --port 0 "
				        "for any free port\n",
				        port, host, who);
			else
				fprintf(stderr,
				        "loopkit serve: port %llu on %s is already in use (its owner is "
				        "not visible to this user); try --port 0 for any free port\n",
				        port, host);
		} else if (eno == EACCES && port < 1024) {
			fprintf(stderr, "loopkit serve: %s: ports below 1024 need root; try --port 0\n", err);
		} else {
			fprintf(stderr, "loopkit serve: %s\n", err);
		}
		return 1;
	}
	char abs[PATH_MAX];
	if (!realpath(cfg.root, abs))
		snprintf(abs, sizeof(abs), "%s", cfg.root);
	int v6 = sa->sa_family == AF_INET6;
	char addr[64];
	net_addr_str(sa, addr, sizeof(addr));
	char hostport[96];
	snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "", addr, v6 ? "]" : "",
	         http_server_port(s));
	if (cfg.proto_http)
		printf("http://%s/\n", hostport);
	if (cfg.proto_ftp)
		printf("ftp://%s/\n", hostport);
	fflush(stdout);
	fprintf(stderr, "loopkit: serving %s on %s%s://%s (%s%s, %d thread%s)\n", abs,
	        cfg.proto_http ? "http" : "ftp", cfg.proto_http && cfg.proto_ftp ? "+ftp" : "", hostport,
	        cfg.write ? "writable" : "read-only", cfg.user ? ", FTP login required" : "", cfg.threads,
	        cfg.threads == 1 ? "" : "s");
	int rc = http_server_run(s);
	http_server_free(s);
	return rc < 0 ? 1 : 0;
}

int cmd_serve(int argc, char **argv)
{
	/* --allow-host values point into argv; at most one per argument. */
	const char **allow = calloc((size_t)argc, sizeof(*allow));
	if (!allow) {
		fprintf(stderr, "loopkit serve: out of memory\n");
		return 1;
	}
	int rc = serve_main(argc, argv, allow);
	free(allow);
	return rc;
}
