/* bench.c - `loopkit bench tcp|rr|crr|http`: flag tables; the library runs a mode and renders it. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cmd/cmd.h"

#define MAX_MS (BENCH_MAX_SECS * 1000)

static volatile sig_atomic_t interrupted; /* SIGINT: end the run early, still report */

static void on_sigint(int sig)
{
	interrupted = 1;
}

/* What every mode's options end with. */
struct out_args {
	int json;
	const char *svg;
};
struct tcp_args {
	struct bench_tcp_opts o;
	struct out_args out;
};
struct rr_args {
	struct bench_rr_opts o;
	struct out_args out;
};
struct crr_args {
	struct bench_crr_opts o;
	struct out_args out;
};
struct http_args {
	struct bench_http_opts o;
	struct out_args out;
	int no_keepalive;
	struct cmd_list headers;
};

#define OUT_ROWS(T, plot)                                                                            \
	{"json",                                                                                     \
	 0,                                                                                          \
	 NULL,                                                                                       \
	 NULL,                                                                                       \
	 "print one JSON document instead of the human report",                                      \
	 CMD_SWITCH,                                                                                 \
	 CMD_AT(T, out.json)},                                                                       \
	{                                                                                            \
		"svg", 0, "FILE", NULL, "write " plot " as an SVG plot", CMD_STR, CMD_AT(T, out.svg) \
	}

static int set_rate(void *p, const char *val, char *err, size_t errlen)
{
	return strparse_decimal(val, 0.001, 1e8, &((struct http_args *)p)->o.rate, err, errlen);
}

static int set_ok(void *p, const char *val, char *err, size_t errlen)
{
	return bench_http_ok_parse(&((struct http_args *)p)->o, val, err, errlen);
}

/* clang-format off */
static const struct cmd_flag tcp_flags[] = {
	{ "duration", 'd', "SECS", "10", "how long to send", CMD_SECS, CMD_AT(struct tcp_args, o.secs), .min = 1, .max = MAX_MS },
	{ "parallel", 'P', "STREAMS", "1", "parallel connections, each with a sender and a receiver thread", CMD_UINT, CMD_AT(struct tcp_args, o.streams), .min = 1, .max = BENCH_TCP_MAX_STREAMS },
	{ "length", 'l', "BYTES", "128K", "bytes per send call", CMD_SIZE, CMD_AT(struct tcp_args, o.len), .min = 1, .max = BENCH_TCP_MAX_LEN },
	{ "zerocopy", 0, NULL, NULL, "send with sendfile(2) from memory instead of send(2)", CMD_SWITCH, CMD_AT(struct tcp_args, o.zerocopy) },
	{ "ipv6", '6', NULL, NULL, "use ::1 instead of 127.0.0.1", CMD_SWITCH, CMD_AT(struct tcp_args, o.v6) },
	OUT_ROWS(struct tcp_args, "throughput over time"),
	{ 0 },
};

static const struct cmd_flag rr_flags[] = {
	{ "udp", 'u', NULL, NULL, "UDP datagrams instead of a TCP connection", CMD_SWITCH, CMD_AT(struct rr_args, o.udp) },
	{ "duration", 'd', "SECS", "10", "how long to run", CMD_SECS, CMD_AT(struct rr_args, o.secs), .min = 1, .max = MAX_MS },
	{ "length", 'l', "BYTES", "64", "message size each way; with -u 8 to 65507", CMD_SIZE, CMD_AT(struct rr_args, o.len), .min = 1, .max = BENCH_RR_MAX_LEN },
	{ "ipv6", '6', NULL, NULL, "use ::1 instead of 127.0.0.1", CMD_SWITCH, CMD_AT(struct rr_args, o.v6) },
	OUT_ROWS(struct rr_args, "latency by percentile"),
	{ 0 },
};

static const struct cmd_flag crr_flags[] = {
	{ "duration", 'd', "SECS", "10", "how long to run", CMD_SECS, CMD_AT(struct crr_args, o.secs), .min = 1, .max = MAX_MS },
	{ "connections", 'C', "N", "1", "connections in flight at once", CMD_UINT, CMD_AT(struct crr_args, o.conc), .min = 1, .max = BENCH_CRR_MAX_CONC },
	{ "sources", 0, "N", NULL, "spread source addresses over 127.0.0.1..127.0.0.N; the kernel picks when not given", CMD_UINT, CMD_AT(struct crr_args, o.sources), .min = 1, .max = BENCH_MAX_SOURCES },
	{ "total", 'n', "N", NULL, "stop after this many connections; no limit when not given", CMD_UINT, CMD_AT(struct crr_args, o.max), .min = 1, .max = 1ull << 40 },
	OUT_ROWS(struct crr_args, "latency by percentile"),
	{ 0 },
};

static const struct cmd_flag http_flags[] = {
	{ "URL", 0, NULL, NULL, "http://HOST:PORT/PATH on loopback (see --allow-remote)", CMD_STR, CMD_AT(struct http_args, o.url), .attr = CMD_ARG | CMD_NEED },
	{ "connections", 'C', "N", "10", "open connections", CMD_UINT, CMD_AT(struct http_args, o.conns), .min = 1, .max = BENCH_HTTP_MAX_CONNS },
	{ "duration", 'd', "SECS", "10", "how long to send", CMD_SECS, CMD_AT(struct http_args, o.secs), .min = 1, .max = MAX_MS },
	{ "threads", 't', "N", "1", "event-loop threads, connections spread over them", CMD_UINT, CMD_AT(struct http_args, o.threads), .min = 1, .max = BENCH_HTTP_MAX_THREADS },
	{ "total", 'n', "N", NULL, "stop after this many requests (ab's -n), within -d; no limit when not given", CMD_UINT, CMD_AT(struct http_args, o.max), .min = 1, .max = 1ull << 40 },
	{ "rate", 'R', "RATE", NULL, "constant rate in requests/s over all connections, with CO correction; as fast as possible when not given", CMD_CALL, .set = set_rate },
	{ "no-keepalive", 0, NULL, NULL, "a new connection for every request (Connection: close)", CMD_SWITCH, CMD_AT(struct http_args, no_keepalive) },
	{ "pipeline", 0, "N", "1", "send N requests at once on each connection", CMD_UINT, CMD_AT(struct http_args, o.pipeline), .min = 1, .max = BENCH_HTTP_MAX_PIPELINE },
	{ "header", 'H', "HEADER", NULL, "add a request header, 'Name: value' (repeatable)", CMD_LIST, CMD_AT(struct http_args, headers) },
	{ "method", 'm', "METHOD", "GET", "request method", CMD_STR, CMD_AT(struct http_args, o.method) },
	{ "body", 0, "FILE", NULL, "send FILE as the request body (at most " CMD_STR_OF(BENCH_HTTP_MAX_BODY_MIB) " MiB)", CMD_STR, CMD_AT(struct http_args, o.body_file) },
	{ "timeout", 0, "SECS", "5", "a response must arrive within this", CMD_SECS, CMD_AT(struct http_args, o.timeout_s), .min = 1, .max = MAX_MS },
	{ "ok-status", 0, "LIST", BENCH_HTTP_OK_DEFAULT, "statuses that count as answered, e.g. 200-399 or 200,404 (at most " CMD_STR_OF(BENCH_HTTP_MAX_OK) " ranges); any other fails the run", CMD_CALL, .set = set_ok },
	{ "allow-remote", 0, NULL, NULL, "allow a target outside loopback (127.0.0.0/8, ::1)", CMD_SWITCH, CMD_AT(struct http_args, o.allow_remote) },
	OUT_ROWS(struct http_args, "latency by percentile"),
	{ 0 },
};
/* clang-format on */

#define HINT_T                                                                                               \
	{                                                                                                    \
		"-t", "the run time is -d/--duration here (iperf3's -t 10 is -d 10); -t means --threads in " \
		      "loopkit"                                                                              \
	}
#define HINT_C                                                                                             \
	{                                                                                                  \
		"-c", "connections are -C/--connections here (wrk's -c 64 is -C 64); -c means --count in " \
		      "loopkit"                                                                            \
	}
static const struct cmd_hint tcp_hints[] = {
        HINT_T, {"-c", "both ends run in this process: there is no server to name (iperf3's -c)"}, {0}};
static const struct cmd_hint rr_hints[] = {HINT_T, {0}};
static const struct cmd_hint crr_hints[] = {HINT_T, HINT_C, {0}};
static const struct cmd_hint http_hints[] = {HINT_C, {0}};

/* Runs mode m with its options: Ctrl-C ends the run early and still reports. */
static int mode_main(const struct bench_mode *m, const void *opts, const struct out_args *out)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	const char *nc = getenv("NO_COLOR");
	struct bench_ctl ctl = {.stop = &interrupted};
	if (isatty(STDERR_FILENO)) {
		ctl.progress = stderr;
		ctl.color = !(nc && *nc);
	}
	struct bench_output o = {out->json, out->svg, stdout, stderr};
	return bench_mode_main(m, opts, &ctl, &o);
}

static int tcp_main(void *p)
{
	struct tcp_args *a = p;
	return mode_main(&bench_mode_tcp, &a->o, &a->out);
}

static int rr_main(void *p)
{
	struct rr_args *a = p;
	return mode_main(&bench_mode_rr, &a->o, &a->out);
}

static int crr_main(void *p)
{
	struct crr_args *a = p;
	return mode_main(&bench_mode_crr, &a->o, &a->out);
}

static int http_main(void *p)
{
	struct http_args *a = p;
	a->o.keepalive = !a->no_keepalive;
	a->o.headers = a->headers.v;
	a->o.nheaders = a->headers.n;
	return mode_main(&bench_mode_http, &a->o, &a->out);
}

static const struct cmd_verb bench_tcp = {
        .name = "tcp",
        .summary = "bulk TCP throughput, both ends in this process (like iperf3)",
        .about = "Bulk TCP throughput over loopback: a sender and a receiver thread per stream, both in\n"
                 "this process. Gbit/s per second and in total, CPU use and retransmissions.\n",
        .flags = tcp_flags,
        .size = sizeof(struct tcp_args),
        .run = tcp_main,
        .hints = tcp_hints,
        .examples = "$ loopkit bench tcp -P 2\n$ loopkit bench tcp -d 5 --zerocopy --svg tcp.svg\n",
};
static const struct cmd_verb bench_rr = {
        .name = "rr",
        .summary = "request/response round-trip latency, one message in flight (like sockperf pp)",
        .about = "Round-trip latency: one message in flight, echoed back, as fast as it goes.\n",
        .flags = rr_flags,
        .size = sizeof(struct rr_args),
        .run = rr_main,
        .hints = rr_hints,
        .examples = "$ loopkit bench rr -d 5\n$ loopkit bench rr -u -l 1000\n",
};
static const struct cmd_verb bench_crr = {
        .name = "crr",
        .summary = "connect, request, response, close: connection rate (like netperf TCP_CRR)",
        .about = "Connection rate: connect, one request and response, close, again; failures by errno\n"
                 "(EADDRNOTAVAIL: out of ephemeral ports) and the TIME_WAIT sockets left, with a\n"
                 "warning and the ways out when they hold many of the ports.\n",
        .flags = crr_flags,
        .size = sizeof(struct crr_args),
        .run = crr_main,
        .hints = crr_hints,
        .examples = "$ loopkit bench crr -C 8 --sources 4\n$ loopkit bench crr -n 10000 --json\n",
};
static const struct cmd_verb bench_http = {
        .name = "http",
        .summary = "HTTP/1.1 load on a local server, closed-loop or constant-rate (like wrk, wrk2)",
        .about = "HTTP/1.1 load on a local server: closed-loop as fast as it answers, or at a constant\n"
                 "rate (-R) with coordinated-omission-corrected latencies next to the raw ones.\n"
                 "A status --ok-status does not allow (2xx unless given) fails the run.\n",
        .flags = http_flags,
        .size = sizeof(struct http_args),
        .run = http_main,
        .hints = http_hints,
        .examples = "$ loopkit bench http http://127.0.0.1:" CMD_HOME_PORT "/ -C 64 -d 10\n"
                    "$ loopkit bench http http://127.0.0.1:8080/api -R 2000 --svg lat.svg\n",
};

static const struct cmd_verb *const bench_modes[] = {&bench_tcp, &bench_rr, &bench_crr, &bench_http, NULL};

const struct cmd_verb cmd_bench = {
        .name = "bench",
        .summary = "loopback throughput, latency, connection rate and HTTP load",
        .about = "Measures the loopback stack and local servers. Ctrl-C ends a run early and still\n"
                 "reports it, marked as interrupted.\n"
                 "Exit status: 0 ok, 1 the run failed or had errors, 2 usage error.\n",
        .subs = bench_modes,
        .sub_noun = "mode",
};
