/* bench.h - loopkit bench: what every mode shares (control, clocks, percentiles, output). */
#ifndef LOOPKIT_BENCH_BENCH_H
#define LOOPKIT_BENCH_BENCH_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "core/hist.h"
#include "core/json.h"

#define BENCH_MAX_SECS   3600     /* longest -t/-d */
#define BENCH_MAX_SERIES 3600     /* per-second samples kept (one per second of run) */

/* How a run is driven and watched; filled by the verb. */
struct bench_ctl {
	volatile sig_atomic_t *stop; /* set (by a SIGINT handler) to end the run early; may be NULL */
	FILE *progress;              /* live progress line ("\r...") here, or NULL for none */
	int color;                   /* ANSI colour in the progress line */
};

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* The percentiles of a histogram of nanoseconds, as reported everywhere. */
struct bench_lat {
	uint64_t count;
	double min_us, mean_us, stddev_us;
	double pct_us[HIST_NPCT]; /* hist_pcts order: p50 p90 p99 p99.9 p99.99 max */
};
void bench_lat_from(struct bench_lat *l, const struct hist *h);
/* "latency_us": {"count":..,"min":..,"mean":..,"stddev":..,"p50":..,...,"max":..} as the
 * value of key. */
void bench_lat_json(struct json *j, const char *key, const struct bench_lat *l);
/* Two-line human table of l: "  latency   p50 ... max" with units. */
void bench_lat_print(FILE *f, const char *label, const struct bench_lat *l);
/* Formats microseconds with a unit ("812 us", "1.25 ms", "2.01 s") into out. */
char *bench_fmt_us(double us, char *out, size_t len);
/* A number rounded to `decimals` places, written as a JSON number (null if not finite). */
void bench_json_num(struct json *j, double v, int decimals);

/* Sleeps until deadline_ns (monotonic) in steps of at most 100 ms, calling
 * tick(arg, now_ns) at start_ns + 1 s, + 2 s, ... (the last one at the deadline when
 * it falls on a whole second); returns early when ctl->stop is set or done(arg)
 * returns true (done may be NULL). */
void bench_wait(const struct bench_ctl *ctl, uint64_t start_ns, uint64_t deadline_ns,
                void (*tick)(void *, uint64_t), int (*done)(void *), void *arg);
/* Writes a progress line (padded, "\r"-led) and, with last, clears it. */
void bench_progress(const struct bench_ctl *ctl, const char *text, int last);

/* CPU seconds (user + system) this process used so far. */
double bench_cpu_s(void);

/* Counts TCP sockets in TIME_WAIT on this machine (this network namespace); -1 if unknown. */
long bench_time_wait_count(void);

/* ---- tcp: bulk throughput ---- */
struct bench_tcp_opts {
	double secs;      /* -t */
	unsigned streams; /* -P */
	size_t len;       /* -l: bytes per send */
	int zerocopy;     /* --zerocopy: sendfile from a memfd */
	int v6;           /* -6 */
};
struct bench_tcp_result {
	struct bench_tcp_opts o;
	double elapsed_s;
	uint64_t bytes;       /* received, all streams */
	double gbps;          /* bytes * 8 / elapsed / 1e9 */
	double cpu_pct;       /* process CPU (both ends) per wall second, % of one CPU */
	uint64_t retransmits; /* TCP_INFO tcpi_total_retrans over the senders */
	unsigned nseries;
	double series_gbps[BENCH_MAX_SERIES]; /* per second */
	char error[256];      /* why it failed, "" when it did not */
};
/* Runs the test. Returns 0, or -1 with r->error set. */
int bench_tcp_run(const struct bench_tcp_opts *o, const struct bench_ctl *ctl, struct bench_tcp_result *r);
void bench_tcp_print(FILE *f, const struct bench_tcp_result *r);
void bench_tcp_json(struct json *j, const struct bench_tcp_result *r);

/* ---- rr: ping-pong latency ---- */
struct bench_rr_opts {
	double secs;
	size_t len; /* -l: message size */
	int udp, v6;
};
struct bench_rr_result {
	struct bench_rr_opts o;
	double elapsed_s;
	uint64_t round_trips;
	uint64_t lost;       /* UDP: replies not back within 1 s */
	double rate;         /* round trips per second */
	struct bench_lat lat; /* round-trip time */
	struct hist *hist;   /* owned; for --svg */
	char error[256];
};
int bench_rr_run(const struct bench_rr_opts *o, const struct bench_ctl *ctl, struct bench_rr_result *r);
void bench_rr_print(FILE *f, const struct bench_rr_result *r);
void bench_rr_json(struct json *j, const struct bench_rr_result *r);
void bench_rr_free(struct bench_rr_result *r);

/* ---- crr: connect, request, response, close ---- */
#define BENCH_MAX_SOURCES 64
#define BENCH_MAX_ERRNO   256
struct bench_crr_opts {
	double secs;
	unsigned conc;    /* -c: connections in flight */
	unsigned sources; /* --sources: 127.0.0.1 .. 127.0.0.N as source addresses (0: kernel's) */
	uint64_t max;     /* -n: stop after this many connections (0: none) */
};
struct bench_crr_result {
	struct bench_crr_opts o;
	double elapsed_s;
	uint64_t conns;  /* completed connect/request/response/close cycles */
	uint64_t failed;
	double rate;
	uint64_t fail_errno[BENCH_MAX_ERRNO]; /* failures by errno */
	long time_wait;  /* TIME_WAIT sockets at the end, -1 unknown */
	struct bench_lat lat; /* connect to response */
	struct hist *hist;
	unsigned nseries;
	double series[BENCH_MAX_SERIES]; /* connections per second, per second */
	char error[256];
};
int bench_crr_run(const struct bench_crr_opts *o, const struct bench_ctl *ctl, struct bench_crr_result *r);
void bench_crr_print(FILE *f, const struct bench_crr_result *r);
void bench_crr_json(struct json *j, const struct bench_crr_result *r);
void bench_crr_free(struct bench_crr_result *r);

/* ---- http: load generator ---- */
#define BENCH_HTTP_MAX_PIPELINE 64
struct bench_http_opts {
	const char *url;
	unsigned conns, threads;
	double secs;
	double rate;       /* -R: requests/s over all connections; 0 = as fast as possible */
	int keepalive;
	unsigned pipeline;
	const char *const *headers; /* "K: V" */
	size_t nheaders;
	const char *method;
	const char *body;  /* request body bytes, or NULL */
	size_t body_len;
	int allow_remote;
	double timeout_s;  /* a response must arrive within this */
};
enum bench_http_err { HERR_CONNECT, HERR_READ, HERR_WRITE, HERR_TIMEOUT, HERR_PARSE, HERR_CLOSED, HERR_N };
extern const char *const bench_http_err_names[HERR_N]; /* "connect", "read", ... */
struct bench_http_result {
	struct bench_http_opts o;
	char target[128];    /* "127.0.0.1:8080" as connected */
	double elapsed_s;    /* start to the last response */
	uint64_t requests;   /* completed responses */
	uint64_t sent;       /* requests written */
	uint64_t unfinished; /* requests sent but not answered when the run ended */
	uint64_t bytes;      /* response bytes read (heads and bodies) */
	double rps, bytes_per_s;
	uint64_t status[600];
	uint64_t errors[HERR_N];
	double cpu_s;        /* this process's CPU seconds during the run */
	/* -R only */
	uint64_t scheduled;  /* requests the schedule asked for before the end */
	double achieved_rate;
	int rate_reached;    /* sent >= 99% of scheduled */
	struct bench_lat lat;           /* raw: response time from the write */
	struct bench_lat lat_corrected; /* -R: from the scheduled send time */
	struct hist *hist, *hist_corrected; /* owned */
	char error[256];
};
/* Validates o (URL, loopback rule, limits). Returns 0, or -1 with a usage message in
 * err; *usage is 1 when the fault is the caller's (exit 2), 0 otherwise. */
int bench_http_run(const struct bench_http_opts *o, const struct bench_ctl *ctl,
                   struct bench_http_result *r, int *usage);
void bench_http_print(FILE *f, const struct bench_http_result *r);
void bench_http_json(struct json *j, const struct bench_http_result *r);
void bench_http_free(struct bench_http_result *r);

/* ---- constant-rate schedule and coordinated-omission correction ---- */
/* One connection's schedule: request k is due at start + k * interval. */
struct bench_sched {
	uint64_t start_ns, interval_ns, k;
};
static inline uint64_t bench_sched_due(const struct bench_sched *s)
{
	return s->start_ns + s->k * s->interval_ns;
}
/* Records a response that was due at `due`, written at `sent` and complete at
 * `done`: raw gets done - sent, corrected gets done - due (what a user arriving on
 * schedule would have waited, as wrk2 reports). */
void bench_co_record(struct hist *raw, struct hist *corrected, uint64_t due, uint64_t sent, uint64_t done);

/* ---- svg ---- */
struct bench_svg_series {
	const char *name;
	const struct hist *h;
};
/* Writes a latency-by-percentile plot (log-scaled "nines" axis) of the series to path.
 * Returns 0 or -1 with errno. */
int bench_svg_percentiles(const char *path, const char *title, const struct bench_svg_series *s, size_t n);
/* Writes a value-over-time line plot (one point per second). Returns 0 or -1. */
int bench_svg_series(const char *path, const char *title, const char *unit, const double *v, size_t n);

#endif
