/* bench.c - `loopkit bench tcp|rr|crr|http`: flags in, a run, a human or JSON report out. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"

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
	const char *body;
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

/* clang-format off */
static const struct cmd_flag tcp_flags[] = {
	{ "duration", 'd', "SECS", "10", "how long to send", CMD_SECS, CMD_AT(struct tcp_args, o.secs), .min = 1, .max = MAX_MS },
	{ "parallel", 'P', "STREAMS", "1", "parallel connections, each with a sender and a receiver thread", CMD_UINT, CMD_AT(struct tcp_args, o.streams), .min = 1, .max = 128 },
	{ "length", 'l', "BYTES", "128K", "bytes per send call", CMD_SIZE, CMD_AT(struct tcp_args, o.len), .min = 1, .max = 64 << 20 },
	{ "zerocopy", 0, NULL, NULL, "send with sendfile(2) from memory instead of send(2)", CMD_SWITCH, CMD_AT(struct tcp_args, o.zerocopy) },
	{ "ipv6", '6', NULL, NULL, "use ::1 instead of 127.0.0.1", CMD_SWITCH, CMD_AT(struct tcp_args, o.v6) },
	OUT_ROWS(struct tcp_args, "throughput over time"),
	{ 0 },
};

static const struct cmd_flag rr_flags[] = {
	{ "udp", 'u', NULL, NULL, "UDP datagrams instead of a TCP connection", CMD_SWITCH, CMD_AT(struct rr_args, o.udp) },
	{ "duration", 'd', "SECS", "10", "how long to run", CMD_SECS, CMD_AT(struct rr_args, o.secs), .min = 1, .max = MAX_MS },
	{ "length", 'l', "BYTES", "64", "message size each way; UDP needs at least 8", CMD_SIZE, CMD_AT(struct rr_args, o.len), .min = 1, .max = 64 << 20 },
	{ "ipv6", '6', NULL, NULL, "use ::1 instead of 127.0.0.1", CMD_SWITCH, CMD_AT(struct rr_args, o.v6) },
	OUT_ROWS(struct rr_args, "latency by percentile"),
	{ 0 },
};

static const struct cmd_flag crr_flags[] = {
	{ "duration", 'd', "SECS", "10", "how long to run", CMD_SECS, CMD_AT(struct crr_args, o.secs), .min = 1, .max = MAX_MS },
	{ "connections", 'C', "N", "1", "connections in flight at once", CMD_UINT, CMD_AT(struct crr_args, o.conc), .min = 1, .max = 4096 },
	{ "sources", 0, "N", NULL, "spread source addresses over 127.0.0.1..127.0.0.N; the kernel picks when not given", CMD_UINT, CMD_AT(struct crr_args, o.sources), .min = 1, .max = BENCH_MAX_SOURCES },
	{ "total", 'n', "N", NULL, "stop after this many connections; no limit when not given", CMD_UINT, CMD_AT(struct crr_args, o.max), .min = 1, .max = 1ull << 40 },
	OUT_ROWS(struct crr_args, "latency by percentile"),
	{ 0 },
};

static const struct cmd_flag http_flags[] = {
	{ "URL", 0, NULL, NULL, "http://HOST:PORT/PATH on loopback (see --allow-remote)", CMD_STR, CMD_AT(struct http_args, o.url), .attr = CMD_ARG | CMD_NEED },
	{ "connections", 'C', "N", "10", "open connections", CMD_UINT, CMD_AT(struct http_args, o.conns), .min = 1, .max = 100000 },
	{ "duration", 'd', "SECS", "10", "how long to send", CMD_SECS, CMD_AT(struct http_args, o.secs), .min = 1, .max = MAX_MS },
	{ "threads", 't', "N", "1", "event-loop threads, connections spread over them", CMD_UINT, CMD_AT(struct http_args, o.threads), .min = 1, .max = 256 },
	{ "rate", 'R', "RATE", NULL, "constant rate in requests/s over all connections, with CO correction; as fast as possible when not given", CMD_CALL, .set = set_rate },
	{ "no-keepalive", 0, NULL, NULL, "a new connection for every request (Connection: close)", CMD_SWITCH, CMD_AT(struct http_args, no_keepalive) },
	{ "pipeline", 0, "N", "1", "send N requests at once on each connection", CMD_UINT, CMD_AT(struct http_args, o.pipeline), .min = 1, .max = BENCH_HTTP_MAX_PIPELINE },
	{ "header", 'H', "HEADER", NULL, "add a request header, 'Name: value' (repeatable)", CMD_LIST, CMD_AT(struct http_args, headers) },
	{ "method", 'm', "METHOD", "GET", "request method", CMD_STR, CMD_AT(struct http_args, o.method) },
	{ "body", 0, "FILE", NULL, "send FILE as the request body", CMD_STR, CMD_AT(struct http_args, body) },
	{ "timeout", 0, "SECS", "5", "a response must arrive within this", CMD_SECS, CMD_AT(struct http_args, o.timeout_s), .min = 1, .max = MAX_MS },
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

/* Prints the JSON document in b (when it was written whole) and frees b. */
static int emit_json(struct json *j, struct buf *b)
{
	int ok = !j->err;
	if (ok) {
		buf_puts(b, "\n");
		fwrite(buf_start(b), 1, buf_used(b), stdout);
	} else {
		fprintf(stderr, "loopkit bench: JSON output too large\n");
	}
	buf_free(b);
	return ok ? 0 : 1;
}

static int svg_failed(const char *path)
{
	fprintf(stderr, "loopkit bench: cannot write %s: %s\n", path, strerror(errno));
	return 1;
}

/* Signals, progress on a terminal, and a JSON writer: what every mode sets up. */
static struct bench_ctl setup(struct buf *jb, struct json *j)
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
	buf_init(jb, 16u << 20);
	json_init(j, jb, 1);
	return ctl;
}

static int tcp_main(void *p)
{
	const struct tcp_args *a = p;
	struct buf jb;
	struct json j;
	struct bench_ctl ctl = setup(&jb, &j);
	struct bench_tcp_result *r = calloc(1, sizeof(*r));
	int rc = 0, failed = !r || bench_tcp_run(&a->o, &ctl, r) < 0;
	if (!failed) {
		if (a->out.json)
			rc = emit_json((bench_tcp_json(&j, r), &j), &jb);
		else
			bench_tcp_print(stdout, r);
		if (a->out.svg && bench_svg_series(a->out.svg, "loopkit bench tcp: throughput", "Gbit/s",
		                                   r->series_gbps, r->nseries) < 0)
			rc = svg_failed(a->out.svg);
	} else {
		fprintf(stderr, "loopkit bench tcp: %s\n", r ? r->error : "out of memory");
	}
	free(r);
	buf_free(&jb);
	fflush(stdout);
	return failed ? 1 : rc;
}

static int rr_main(void *p)
{
	const struct rr_args *a = p;
	struct buf jb;
	struct json j;
	struct bench_ctl ctl = setup(&jb, &j);
	struct bench_rr_result r;
	int rc = 0, failed = bench_rr_run(&a->o, &ctl, &r) < 0;
	if (r.hist && r.round_trips) {
		if (a->out.json)
			rc = emit_json((bench_rr_json(&j, &r), &j), &jb);
		else
			bench_rr_print(stdout, &r);
		struct bench_svg_series s = {"round-trip time", r.hist};
		if (a->out.svg &&
		    bench_svg_percentiles(a->out.svg, "loopkit bench rr: latency by percentile", &s, 1) < 0)
			rc = svg_failed(a->out.svg);
	}
	if (failed)
		fprintf(stderr, "loopkit bench rr: %s\n", r.error);
	bench_rr_free(&r);
	buf_free(&jb);
	fflush(stdout);
	return failed ? 1 : rc;
}

static int crr_main(void *p)
{
	const struct crr_args *a = p;
	struct buf jb;
	struct json j;
	struct bench_ctl ctl = setup(&jb, &j);
	struct bench_crr_result *r = calloc(1, sizeof(*r));
	int rc = 0, failed = !r || bench_crr_run(&a->o, &ctl, r) < 0;
	if (!failed) {
		if (a->out.json)
			rc = emit_json((bench_crr_json(&j, r), &j), &jb);
		else
			bench_crr_print(stdout, r);
		struct bench_svg_series s = {"connect to answer", r->hist};
		if (a->out.svg &&
		    bench_svg_percentiles(a->out.svg, "loopkit bench crr: latency by percentile", &s, 1) < 0)
			rc = svg_failed(a->out.svg);
		failed = r->failed > 0 || !r->conns;
	} else {
		fprintf(stderr, "loopkit bench crr: %s\n", r ? r->error : "out of memory");
	}
	if (r)
		bench_crr_free(r);
	free(r);
	buf_free(&jb);
	fflush(stdout);
	return failed ? 1 : rc;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	struct buf b;
	buf_init(&b, 64u << 20);
	char tmp[65536];
	size_t n;
	int rc = 0;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(&b, tmp, n) < 0) {
			rc = -1;
			errno = EFBIG;
			break;
		}
	if (ferror(f))
		rc = -1;
	fclose(f);
	if (rc < 0) {
		buf_free(&b);
		return -1;
	}
	*out = b.data ? b.data : calloc(1, 1);
	*len = buf_used(&b);
	return *out ? 0 : -1;
}

static int http_main(void *p)
{
	struct http_args *a = p;
	struct bench_http_opts *o = &a->o;
	char *body = NULL;
	for (size_t i = 0; i < a->headers.n; i++)
		if (!strchr(a->headers.v[i], ':') || strpbrk(a->headers.v[i], "\r\n")) {
			fprintf(stderr, "loopkit bench http: -H %s: a header is 'Name: value' on one line\n",
			        a->headers.v[i]);
			return 2;
		}
	if (!*o->method || strpbrk(o->method, " \t\r\n")) {
		fprintf(stderr, "loopkit bench http: -m %s: a method is one token, like GET or POST\n",
		        o->method);
		return 2;
	}
	if (a->body && read_file(a->body, &body, &o->body_len) < 0) {
		fprintf(stderr, "loopkit bench http: --body %s: %s\n", a->body, strerror(errno));
		return 2;
	}
	o->body = body;
	o->keepalive = !a->no_keepalive;
	o->headers = a->headers.v;
	o->nheaders = a->headers.n;
	struct buf jb;
	struct json j;
	struct bench_ctl ctl = setup(&jb, &j);
	struct bench_http_result *r = calloc(1, sizeof(*r));
	int rc = 0, usage = 0, failed = !r || bench_http_run(o, &ctl, r, &usage) < 0;
	if (!r) {
		fprintf(stderr, "loopkit bench http: out of memory\n");
	} else if (failed && (usage || !r->hist)) {
		fprintf(stderr, "loopkit bench http: %s\n", r->error);
	} else {
		if (a->out.json)
			rc = emit_json((bench_http_json(&j, r), &j), &jb);
		else
			bench_http_print(stdout, r);
		struct bench_svg_series s[2] = {{"corrected (from the scheduled time)", r->hist_corrected},
		                                {"raw (from the write)", r->hist}};
		if (!o->rate)
			s[0] = (struct bench_svg_series){"response time", r->hist};
		if (a->out.svg &&
		    bench_svg_percentiles(a->out.svg, "loopkit bench http: latency by percentile", s,
		                          o->rate ? 2 : 1) < 0)
			rc = svg_failed(a->out.svg);
		if (failed)
			fprintf(stderr, "loopkit bench http: %s\n", r->error);
		uint64_t errs = 0;
		for (int k = 0; k < HERR_N; k++)
			errs += r->errors[k];
		if (errs || !r->requests)
			failed = 1;
		if (!r->requests)
			fprintf(stderr, "loopkit bench http: no request completed%s\n",
			        r->errors[HERR_CONNECT] ? " (is a server listening there?)" : "");
	}
	if (r)
		bench_http_free(r);
	free(r);
	buf_free(&jb);
	free(body);
	fflush(stdout);
	return usage ? 2 : failed ? 1 : rc;
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
                 "(EADDRNOTAVAIL: out of ephemeral ports) and the TIME_WAIT sockets left.\n",
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
                 "rate (-R) with coordinated-omission-corrected latencies next to the raw ones.\n",
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
        .about = "Measures the loopback stack and local servers; see docs/bench.md.\n"
                 "Exit status: 0 ok, 1 the run failed or had errors, 2 usage error.\n",
        .subs = bench_modes,
        .sub_noun = "mode",
};
