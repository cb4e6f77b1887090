/* bench.h - loopkit bench: the modes' options and results, and what every mode shares. */
#ifndef LOOPKIT_BENCH_BENCH_H
#define LOOPKIT_BENCH_BENCH_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "core/hist.h"
#include "core/strparse.h"

#define BENCH_MAX_SECS    3600 /* longest -d */
#define BENCH_MAX_SERIES  3600 /* per-second samples kept (one per second of run) */
#define BENCH_SAMPLE_MS   100  /* tcp: throughput is sampled this often for the plot */
#define BENCH_MAX_SAMPLES (BENCH_MAX_SECS * (1000 / BENCH_SAMPLE_MS))
#define BENCH_ERROR_MAX   256 /* bench_status.error */

/* How a run is driven and watched; filled by the verb. */
struct bench_ctl {
	volatile sig_atomic_t *stop; /* set (by a SIGINT handler) to end the run early; may be NULL */
	FILE *progress;              /* live progress line ("\r...") here, or NULL for none */
	int color;                   /* ANSI colour in the progress line */
};

/* How a run ended: the first member of every mode's result. */
struct bench_status {
	double elapsed_s;            /* measured time, the real one also when interrupted */
	int interrupted;             /* ctl->stop ended the run before its time */
	int failed;                  /* the checked thing failed (errors, bad statuses): exit 1 */
	int usage;                   /* the options cannot work (error says why): exit 2 */
	char error[BENCH_ERROR_MAX]; /* what went wrong, "" when nothing did */
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

/* Sleeps until deadline_ns (monotonic), calling tick(arg, now_ns) at start_ns +
 * period_ns, + 2 period_ns, ... (the last one at the deadline when it falls on a whole
 * period); returns early when ctl->stop is set or done(arg) returns true (done may be
 * NULL). Returns 1 when ctl->stop ended the wait, else 0. */
int bench_wait(const struct bench_ctl *ctl, uint64_t start_ns, uint64_t deadline_ns, uint64_t period_ns,
               void (*tick)(void *, uint64_t), int (*done)(void *), void *arg);
/* Writes a progress line (padded, "\r"-led) and, with last, clears it. */
void bench_progress(const struct bench_ctl *ctl, const char *text, int last);

/* CPU seconds (user + system) this process used so far. */
double bench_cpu_s(void);

/* ---- tcp: bulk throughput ---- */
#define BENCH_TCP_MAX_STREAMS 128
#define BENCH_TCP_MAX_LEN     (64u << 20) /* -l */
struct bench_tcp_opts {
	double secs;      /* -d */
	unsigned streams; /* -P */
	size_t len;       /* -l: bytes per send */
	int zerocopy;     /* --zerocopy: sendfile from a memfd */
	int v6;           /* -6 */
};
struct bench_tcp_result {
	struct bench_status st;
	struct bench_tcp_opts o;
	uint64_t bytes;       /* received, all streams */
	double gbps;          /* bytes * 8 / elapsed / 1e9 */
	double cpu_pct;       /* process CPU (both ends) per wall second, % of one CPU */
	uint64_t retransmits; /* TCP_INFO tcpi_total_retrans over the senders */
	unsigned nseries;
	double series_gbps[BENCH_MAX_SERIES]; /* per whole second */
	unsigned nsamples;
	double samples_gbps[BENCH_MAX_SAMPLES]; /* per BENCH_SAMPLE_MS, for the plot */
};
/* Runs the test into r (zeroed first). Returns 0 (r is worth a report), or -1 with
 * r->st.error set and nothing to report. */
int bench_tcp_run(const struct bench_tcp_opts *o, const struct bench_ctl *ctl, struct bench_tcp_result *r);

/* ---- rr: ping-pong latency ---- */
#define BENCH_RR_MAX_LEN (1u << 20) /* -l */
struct bench_rr_opts {
	double secs;
	size_t len; /* -l: message size */
	int udp, v6;
};
struct bench_rr_result {
	struct bench_status st;
	struct bench_rr_opts o;
	uint64_t round_trips;
	uint64_t lost;        /* UDP: replies not back within 1 s */
	double rate;          /* round trips per second */
	double half_p50_us;   /* half the median round trip: sockperf's "latency" */
	struct bench_lat lat; /* round-trip time */
	struct hist *hist;    /* owned; for --svg */
};
/* As bench_tcp_run; a round trip that failed mid-run still leaves a report (with
 * r->st.error and r->st.failed). Free with bench_rr_free. */
int bench_rr_run(const struct bench_rr_opts *o, const struct bench_ctl *ctl, struct bench_rr_result *r);
void bench_rr_free(struct bench_rr_result *r);

/* ---- crr: connect, request, response, close ---- */
#define BENCH_CRR_MAX_CONC 4096 /* -C */
#define BENCH_MAX_SOURCES  64
#define BENCH_MAX_ERRNO    256
#define BENCH_CRR_TW_WARN  10 /* warn when TIME_WAIT to the target holds this % of its ports */
#define BENCH_TIME_WAIT_S  60 /* Linux's TCP_TIMEWAIT_LEN, fixed in the kernel */
struct bench_crr_opts {
	double secs;
	unsigned conc;    /* -C: connections in flight */
	unsigned sources; /* --sources: 127.0.0.1 .. 127.0.0.N as source addresses (0: kernel's) */
	uint64_t max;     /* -n: stop after this many connections (0: none) */
};
struct bench_crr_result {
	struct bench_status st;
	struct bench_crr_opts o;
	char target[64]; /* "127.0.0.1:PORT": the in-process server */
	uint64_t conns;  /* completed connect/request/response/close cycles */
	uint64_t failed;
	double rate;
	uint64_t fail_errno[BENCH_MAX_ERRNO]; /* failures by errno */
	long time_wait;            /* TCP sockets in TIME_WAIT on this machine at the end, -1 unknown */
	long time_wait_target;     /* of those, the ones to the target, -1 unknown */
	unsigned port_lo, port_hi; /* net.ipv4.ip_local_port_range */
	unsigned nsources;         /* source addresses used: --sources, or 1 */
	uint64_t ports_per_source; /* port_hi - port_lo + 1 */
	uint64_t ports;            /* ephemeral ports to the target: ports_per_source x nsources */
	double time_wait_pct;      /* time_wait_target as % of ports */
	int tw_reuse;              /* net.ipv4.tcp_tw_reuse, -1 unknown */
	struct bench_lat lat;      /* connect to response */
	struct hist *hist;
	unsigned nseries;
	double series[BENCH_MAX_SERIES]; /* connections per second, per second */
};
int bench_crr_run(const struct bench_crr_opts *o, const struct bench_ctl *ctl, struct bench_crr_result *r);
void bench_crr_free(struct bench_crr_result *r);

/* ---- http: load generator ---- */
#define BENCH_HTTP_MAX_CONNS    100000
#define BENCH_HTTP_MAX_THREADS  256
#define BENCH_HTTP_MAX_PIPELINE 64
#define BENCH_HTTP_MAX_OK       8         /* ranges in --ok-status */
#define BENCH_HTTP_OK_DEFAULT   "200-299" /* statuses that count as answered well */
#define BENCH_HTTP_MAX_BODY_MIB 64        /* --body FILE */
#define BENCH_HTTP_MAX_BODY     (BENCH_HTTP_MAX_BODY_MIB << 20)
struct bench_http_opts {
	const char *url;
	unsigned conns, threads;
	double secs;
	double rate;  /* -R: requests/s over all connections; 0 = as fast as possible */
	uint64_t max; /* -n: stop after this many requests (ab's -n); 0 = until -d ends */
	int keepalive;
	unsigned pipeline;
	const char *const *headers; /* "K: V" */
	size_t nheaders;
	const char *method;
	const char *body_file; /* --body: read by bench_http_run, or NULL */
	int allow_remote;
	double timeout_s;                            /* a response must arrive within this */
	struct strparse_range ok[BENCH_HTTP_MAX_OK]; /* --ok-status */
	unsigned nok;                                /* 0: BENCH_HTTP_OK_DEFAULT */
	char ok_text[BENCH_HTTP_MAX_OK * 8];         /* --ok-status as given, for the report */
};
/* Parses --ok-status ("200-299", "200,404", "200-399,404") into o. Returns 0, or -1
 * with a reason in err. */
int bench_http_ok_parse(struct bench_http_opts *o, const char *s, char *err, size_t errlen);
/* Whether status counts as a good answer under o's --ok-status. */
int bench_http_ok(const struct bench_http_opts *o, int status);

enum bench_http_err { HERR_CONNECT, HERR_READ, HERR_WRITE, HERR_TIMEOUT, HERR_PARSE, HERR_CLOSED, HERR_N };
extern const char *const bench_http_err_names[HERR_N]; /* "connect", "read", ... */
struct bench_http_result {
	struct bench_status st;
	struct bench_http_opts o;
	char target[128];    /* "127.0.0.1:8080" as connected */
	uint64_t requests;   /* completed responses */
	uint64_t sent;       /* requests written */
	uint64_t unfinished; /* requests sent but not answered when the run ended */
	uint64_t bytes;      /* response bytes read (heads and bodies) */
	double rps, bytes_per_s;
	uint64_t status[600];
	uint64_t unexpected; /* responses whose status --ok-status does not allow */
	uint64_t errors[HERR_N];
	uint64_t nerrors;      /* sum of errors[] */
	const char *parse_why; /* why the first unreadable answer was (static), or NULL */
	double cpu_s;          /* this process's CPU seconds during the run */
	double cpu_pct;        /* cpu_s per elapsed second, % of one core */
	/* -R only */
	uint64_t scheduled; /* requests the schedule asked for before the end */
	double achieved_rate;
	int rate_reached;               /* sent >= 99% of scheduled and 95% of the rate achieved */
	struct bench_lat lat;           /* raw: response time from the write */
	struct bench_lat lat_corrected; /* -R: from the scheduled send time */
	struct bench_lat lat_lag;       /* -R: how late the client itself sent */
	struct hist *hist, *hist_corrected, *hist_lag; /* owned */
};
/* Runs the load into r. Returns 0 (r is worth a report; r->st.failed when requests
 * failed or got statuses --ok-status does not allow), or -1 with r->st.error (and
 * r->st.usage when the options are at fault: a bad URL, header, method, body file,
 * or a target outside loopback). Free with bench_http_free. */
int bench_http_run(const struct bench_http_opts *o, const struct bench_ctl *ctl, struct bench_http_result *r);
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
/* Records a response that was due at `due`, could go (its connection was free) from
 * `ready`, was written at `sent` and was complete at `done`. raw gets done - sent.
 * corrected gets what a user arriving on schedule would have waited (as wrk2
 * reports) had the client never been late: on the connection's ideal timeline
 * (*ideal_done: when its previous request ended there, 0 at first) the request starts
 * at max(due, *ideal_done) and takes done - sent, the server's time. So a server that
 * holds a request delays the ones scheduled behind it, and a client that stalls (a
 * late timer, a paused process, a busy loop) delays none: its requests sent late, and
 * those queued behind them, keep the server's time. lag (may be NULL) gets the
 * client's own lateness: from max(due, ready) to sent. */
void bench_co_record(struct hist *raw, struct hist *corrected, struct hist *lag, uint64_t due, uint64_t ready,
                     uint64_t sent, uint64_t done, uint64_t *ideal_done);

/* ---- svg ---- */
struct bench_svg_series {
	const char *name;
	const struct hist *h;
};
/* Writes a latency-by-percentile plot to path: a "nines" x axis (0% ... 99.999%) and a
 * logarithmic latency axis. Returns 0 or -1 with errno. */
int bench_svg_percentiles(const char *path, const char *title, const struct bench_svg_series *s, size_t n);
/* Writes a value-over-time plot: v[i] is the mean over [i * step_s, (i + 1) * step_s),
 * drawn as steps; fewer than 2 samples draw a note saying why there is no curve.
 * Returns 0 or -1 with errno. */
int bench_svg_series(const char *path, const char *title, const char *unit, const double *v, size_t n,
                     double step_s);

/* ---- modes, as the verb drives them (mode.c) ---- */
struct bench_rep;     /* a report being written (report.c) */
struct bench_render { /* report.h */
	void (*body)(struct bench_rep *w, const void *result);
	int (*svg)(const char *path, const void *result);
};
struct bench_mode {
	const char *name; /* "tcp" */
	size_t size;      /* of the result, which starts with struct bench_status */
	int (*run)(const void *opts, const struct bench_ctl *ctl, void *result); /* 0 or -1 as above */
	void (*free)(void *result); /* what the result owns, or NULL */
	const struct bench_render *render;
};
extern const struct bench_mode bench_mode_tcp, bench_mode_rr, bench_mode_crr, bench_mode_http;

/* Where a mode's report goes. */
struct bench_output {
	int json;        /* one JSON document instead of the human text */
	const char *svg; /* also write the plot here, or NULL */
	FILE *out, *err; /* the report; errors */
};
/* Runs mode m with opts (its bench_*_opts) and renders the result to out. Returns the
 * exit status: 0 ok, 1 the run failed, had errors or could not be written, 2 the
 * options cannot work. */
int bench_mode_main(const struct bench_mode *m, const void *opts, const struct bench_ctl *ctl,
                    const struct bench_output *out);

#endif
