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

static volatile sig_atomic_t interrupted; /* SIGINT: end the run early, still report */

static void on_sigint(int sig) { interrupted = 1; }

static const struct cmd_old_flag tcp_flags[] = {
	{ "-t", "SECS", "how long to send (default 10)" },
	{ "-P", "STREAMS", "parallel connections, each with a sender and a receiver thread (default 1)" },
	{ "-l", "BYTES", "bytes per send call, with K or M suffix (default 128K)" },
	{ "--zerocopy", NULL, "send with sendfile(2) from memory instead of send(2)" },
	{ "-6", NULL, "use ::1 instead of 127.0.0.1" },
	{ "--json", NULL, "print one JSON document instead of the human report" },
	{ "--svg", "FILE", "write throughput over time as an SVG plot" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static const struct cmd_old_flag rr_flags[] = {
	{ "--udp", NULL, "UDP datagrams instead of a TCP connection" },
	{ "-t", "SECS", "how long to run (default 10)" },
	{ "-l", "BYTES", "message size each way (default 64; UDP at least 8)" },
	{ "-6", NULL, "use ::1 instead of 127.0.0.1" },
	{ "--json", NULL, "print one JSON document instead of the human report" },
	{ "--svg", "FILE", "write the latency-by-percentile plot as SVG" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static const struct cmd_old_flag crr_flags[] = {
	{ "-t", "SECS", "how long to run (default 10)" },
	{ "-c", "CONC", "connections in flight at once (default 1)" },
	{ "--sources", "N", "spread source addresses over 127.0.0.1..127.0.0.N (1-64; default: kernel's)" },
	{ "-n", "CONNS", "stop after this many connections (default: no limit)" },
	{ "--json", NULL, "print one JSON document instead of the human report" },
	{ "--svg", "FILE", "write the latency-by-percentile plot as SVG" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static const struct cmd_old_flag http_flags[] = {
	{ "-c", "CONNS", "open connections (default 10)" },
	{ "-d", "SECS", "how long to send (default 10)" },
	{ "-t", "THREADS", "event-loop threads, connections spread over them (default 1)" },
	{ "-R", "RATE", "constant rate in requests/s over all connections, with CO correction" },
	{ "--no-keepalive", NULL, "a new connection for every request (Connection: close)" },
	{ "--pipeline", "N", "send N requests at once on each connection (default 1)" },
	{ "-H", "'K: V'", "add a request header (repeatable)" },
	{ "-m", "METHOD", "request method (default GET)" },
	{ "--body", "FILE", "send FILE as the request body" },
	{ "--timeout", "SECS", "a response must arrive within this (default 5)" },
	{ "--allow-remote", NULL, "allow a target outside loopback (127.0.0.0/8, ::1)" },
	{ "--json", NULL, "print one JSON document instead of the human report" },
	{ "--svg", "FILE", "write the latency-by-percentile plot as SVG" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static const struct {
	const char *name, *args, *what;
	const struct cmd_old_flag *flags;
} modes[] = {
	{ "tcp", "", "bulk TCP throughput, both ends in this process (like iperf3)", tcp_flags },
	{ "rr", "", "request/response round-trip latency, one message in flight (like sockperf pp)", rr_flags },
	{ "crr", "", "connect, request, response, close: connection rate (like netperf TCP_CRR)", crr_flags },
	{ "http", " URL", "HTTP/1.1 load on a local server, closed-loop or constant-rate (like wrk, wrk2)",
	  http_flags },
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: loopkit bench MODE [OPTIONS]   (loopkit bench MODE --help for its options)\n\n"
	           "Measures the loopback stack and local servers; see docs/bench.md.\n\nmodes:\n");
	for (size_t i = 0; i < NMODES; i++)
		fprintf(f, "  %-6s %s\n", modes[i].name, modes[i].what);
	fprintf(f, "\nExit status: 0 ok, 1 the run failed or had errors, 2 usage error.\n");
}

static void mode_usage(FILE *f, size_t m)
{
	fprintf(f, "usage: loopkit bench %s%s [OPTIONS]\n\n%s.\n\noptions:\n", modes[m].name, modes[m].args,
	        modes[m].what);
	cmd_old_print_flags(f, modes[m].flags);
}

static int bad(const char *mode, const char *flag, const char *val, const char *want)
{
	fprintf(stderr, "loopkit bench %s: %s %s: %s\n", mode, flag, val, want);
	return 2;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > BENCH_MAX_SECS)
		return -1;
	*out = v;
	return 0;
}

static int parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mult = 1;
	if (*end == 'k' || *end == 'K')
		mult = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024, end++;
	if (errno || *end || v > max / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static int parse_rate(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e8)
		return -1;
	*out = v;
	return 0;
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

int cmd_old_bench(int argc, char **argv)
{
	if (argc < 2) {
		bench_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		bench_usage(stdout);
		return 0;
	}
	size_t m = 0;
	while (m < NMODES && strcmp(argv[1], modes[m].name))
		m++;
	if (m == NMODES) {
		fprintf(stderr, "loopkit bench: unknown mode '%s'\n\n", argv[1]);
		bench_usage(stderr);
		return 2;
	}
	const char *mode = modes[m].name;
	argc--;
	argv++;

	struct bench_tcp_opts to = { .secs = 10, .streams = 1, .len = 128 * 1024 };
	struct bench_rr_opts ro = { .secs = 10, .len = 64 };
	struct bench_crr_opts co = { .secs = 10, .conc = 1 };
	struct bench_http_opts ho = { .conns = 10, .threads = 1, .secs = 10, .keepalive = 1, .pipeline = 1,
		                      .method = "GET", .timeout_s = 5 };
	int json = 0;
	const char *svg = NULL, *bodyfile = NULL;
	const char **headers = calloc((size_t)argc + 1, sizeof(*headers));
	if (!headers)
		return 1;
	size_t nheaders = 0;
	int rc = 2;
	unsigned long long v;
	for (int i = 1; i < argc; i++) {
		const char *val;
		if (argv[i][0] != '-') {
			if (m == 3 && !ho.url) {
				ho.url = argv[i];
				continue;
			}
			fprintf(stderr, "loopkit bench %s: unexpected argument '%s'\n", mode, argv[i]);
			mode_usage(stderr, m);
			goto out;
		}
		if (!strcmp(argv[i], "-h")) {
			mode_usage(stdout, m);
			rc = 0;
			goto out;
		}
		const struct cmd_old_flag *f = cmd_old_match(modes[m].flags, argc, argv, &i, &val, "bench");
		if (!f) {
			mode_usage(stderr, m);
			goto out;
		}
		const char *n = f->name;
		if (!strcmp(n, "--help")) {
			mode_usage(stdout, m);
			rc = 0;
			goto out;
		} else if (!strcmp(n, "--json")) {
			json = 1;
		} else if (!strcmp(n, "--svg")) {
			svg = val;
		} else if (!strcmp(n, "-6")) {
			to.v6 = ro.v6 = 1;
		} else if (!strcmp(n, "--zerocopy")) {
			to.zerocopy = 1;
		} else if (!strcmp(n, "--udp")) {
			ro.udp = 1;
		} else if (!strcmp(n, "-t") && m == 3) {
			if (parse_count(val, 256, &v) < 0 || !v) {
				rc = bad(mode, n, val, "threads are 1-256");
				goto out;
			}
			ho.threads = (unsigned)v;
		} else if (!strcmp(n, "-t") || !strcmp(n, "-d")) {
			if (parse_secs(val, &to.secs) < 0) {
				rc = bad(mode, n, val, "seconds, more than 0 and at most 3600");
				goto out;
			}
			ro.secs = co.secs = ho.secs = to.secs;
		} else if (!strcmp(n, "-P")) {
			if (parse_count(val, 128, &v) < 0 || !v) {
				rc = bad(mode, n, val, "streams are 1-128");
				goto out;
			}
			to.streams = (unsigned)v;
		} else if (!strcmp(n, "-l")) {
			if (parse_count(val, 64u << 20, &v) < 0 || !v) {
				rc = bad(mode, n, val, "a size from 1 byte to 64M");
				goto out;
			}
			to.len = ro.len = (size_t)v;
		} else if (!strcmp(n, "-c")) {
			if (parse_count(val, m == 3 ? 100000 : 4096, &v) < 0 || !v) {
				rc = bad(mode, n, val, m == 3 ? "connections are 1-100000" : "1-4096");
				goto out;
			}
			co.conc = ho.conns = (unsigned)v;
		} else if (!strcmp(n, "--sources")) {
			if (parse_count(val, BENCH_MAX_SOURCES, &v) < 0 || !v) {
				rc = bad(mode, n, val, "1-64 source addresses");
				goto out;
			}
			co.sources = (unsigned)v;
		} else if (!strcmp(n, "-n")) {
			if (parse_count(val, 1ull << 40, &v) < 0 || !v) {
				rc = bad(mode, n, val, "a count from 1");
				goto out;
			}
			co.max = v;
		} else if (!strcmp(n, "-R")) {
			if (parse_rate(val, &ho.rate) < 0) {
				rc = bad(mode, n, val, "requests per second, more than 0");
				goto out;
			}
		} else if (!strcmp(n, "--no-keepalive")) {
			ho.keepalive = 0;
		} else if (!strcmp(n, "--pipeline")) {
			if (parse_count(val, BENCH_HTTP_MAX_PIPELINE, &v) < 0 || !v) {
				rc = bad(mode, n, val, "1-64 requests");
				goto out;
			}
			ho.pipeline = (unsigned)v;
		} else if (!strcmp(n, "-H")) {
			if (!strchr(val, ':') || strpbrk(val, "\r\n")) {
				rc = bad(mode, n, val, "a header is 'Name: value' on one line");
				goto out;
			}
			headers[nheaders++] = val;
		} else if (!strcmp(n, "-m")) {
			if (!*val || strpbrk(val, " \t\r\n")) {
				rc = bad(mode, n, val, "a method is one token, like GET or POST");
				goto out;
			}
			ho.method = val;
		} else if (!strcmp(n, "--body")) {
			bodyfile = val;
		} else if (!strcmp(n, "--timeout")) {
			if (parse_secs(val, &ho.timeout_s) < 0) {
				rc = bad(mode, n, val, "seconds, more than 0");
				goto out;
			}
		} else if (!strcmp(n, "--allow-remote")) {
			ho.allow_remote = 1;
		}
	}
	if (m == 3 && !ho.url) {
		fprintf(stderr, "loopkit bench http: which URL? e.g. loopkit bench http http://127.0.0.1:62893/\n");
		mode_usage(stderr, m);
		goto out;
	}
	char *body = NULL;
	if (bodyfile) {
		if (read_file(bodyfile, &body, &ho.body_len) < 0) {
			fprintf(stderr, "loopkit bench http: --body %s: %s\n", bodyfile, strerror(errno));
			goto out;
		}
		ho.body = body;
	}
	ho.headers = headers;
	ho.nheaders = nheaders;

	struct sigaction sa = { .sa_handler = on_sigint };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	const char *nc = getenv("NO_COLOR");
	struct bench_ctl ctl = { .stop = &interrupted };
	if (isatty(STDERR_FILENO)) {
		ctl.progress = stderr;
		ctl.color = !(nc && *nc);
	}
	struct buf jb;
	struct json j;
	buf_init(&jb, 16u << 20);
	json_init(&j, &jb, 1);
	int failed = 0, usage = 0;
	const char *err = NULL;
	rc = 0;
	if (m == 0) {
		struct bench_tcp_result *r = calloc(1, sizeof(*r));
		if (!r)
			return 1;
		failed = bench_tcp_run(&to, &ctl, r) < 0;
		if (!failed) {
			if (json)
				rc = emit_json((bench_tcp_json(&j, r), &j), &jb);
			else
				bench_tcp_print(stdout, r);
			if (svg && bench_svg_series(svg, "loopkit bench tcp: throughput", "Gbit/s", r->series_gbps,
			                            r->nseries) < 0)
				rc = svg_failed(svg);
		} else {
			fprintf(stderr, "loopkit bench tcp: %s\n", r->error);
		}
		free(r);
	} else if (m == 1) {
		struct bench_rr_result r;
		failed = bench_rr_run(&ro, &ctl, &r) < 0;
		if (failed)
			err = r.error;
		if (r.hist && r.round_trips) {
			if (json)
				rc = emit_json((bench_rr_json(&j, &r), &j), &jb);
			else
				bench_rr_print(stdout, &r);
			struct bench_svg_series s = { "round-trip time", r.hist };
			if (svg && bench_svg_percentiles(svg, "loopkit bench rr: latency by percentile", &s, 1) < 0)
				rc = svg_failed(svg);
		}
		if (err)
			fprintf(stderr, "loopkit bench rr: %s\n", err);
		bench_rr_free(&r);
	} else if (m == 2) {
		struct bench_crr_result *r = calloc(1, sizeof(*r));
		if (!r)
			return 1;
		failed = bench_crr_run(&co, &ctl, r) < 0;
		if (!failed) {
			if (json)
				rc = emit_json((bench_crr_json(&j, r), &j), &jb);
			else
				bench_crr_print(stdout, r);
			struct bench_svg_series s = { "connect to answer", r->hist };
			if (svg && bench_svg_percentiles(svg, "loopkit bench crr: latency by percentile", &s, 1) < 0)
				rc = svg_failed(svg);
			failed = r->failed > 0 || !r->conns;
		} else {
			fprintf(stderr, "loopkit bench crr: %s\n", r->error);
		}
		bench_crr_free(r);
		free(r);
	} else {
		struct bench_http_result *r = calloc(1, sizeof(*r));
		if (!r)
			return 1;
		failed = bench_http_run(&ho, &ctl, r, &usage) < 0;
		if (failed && usage) {
			fprintf(stderr, "loopkit bench http: %s\n", r->error);
		} else if (failed && !r->hist) {
			fprintf(stderr, "loopkit bench http: %s\n", r->error);
		} else {
			if (json)
				rc = emit_json((bench_http_json(&j, r), &j), &jb);
			else
				bench_http_print(stdout, r);
			struct bench_svg_series s[2] = { { "corrected (from the scheduled time)", r->hist_corrected },
				                         { "raw (from the write)", r->hist } };
			if (!ho.rate)
				s[0] = (struct bench_svg_series){ "response time", r->hist };
			if (svg && bench_svg_percentiles(svg, "loopkit bench http: latency by percentile", s,
			                                 ho.rate ? 2 : 1) < 0)
				rc = svg_failed(svg);
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
		bench_http_free(r);
		free(r);
	}
	buf_free(&jb);
	free(body);
	free(headers);
	fflush(stdout);
	if (usage)
		return 2;
	return failed ? 1 : rc;
out:
	free(headers);
	return rc;
}

const struct cmd_verb cmd_bench = { .name = "bench", .summary = "loopback throughput, latency, connection rate and HTTP load", .legacy = cmd_old_bench };
