/* main.c - loopkit's entry: dispatch to a verb, --help, --version. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} verbs[] = {
	{ "serve", cmd_serve, "HTTP/1.1 server for a directory, with API-testing endpoints under /_/" },
	{ "ports", cmd_ports, "listening sockets (--all: connections) with owners; EXPOSED ones flagged" },
	{ "who", cmd_who, "which processes hold a port (exit 1 when it is free)" },
	{ "doctor", cmd_doctor, "is the loopback stack healthy: each check PASS/WARN/FAIL/SKIP with a hint" },
	{ "ping", cmd_ping, "TCP/UDP/ICMP round trips with statistics and percentiles" },
	{ "port", cmd_port, "free ports for tests, never the same to two callers; --server: a portserver" },
	{ "bench", cmd_bench, "loopback throughput, latency, connection rate and HTTP load" },
};

static void usage(FILE *f)
{
	fprintf(f, "loopkit %s - the loopback workbench\n\n"
	           "usage: loopkit VERB [OPTIONS]   (loopkit VERB --help for a verb's options)\n\n"
	           "verbs:\n",
	        LOOPKIT_VERSION);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].what);
	fprintf(f, "\noptions:\n  --help     this text\n  --version  print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("loopkit %s\n", LOOPKIT_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "loopkit: unknown verb '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
