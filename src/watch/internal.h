/* internal.h - the watcher's insides, shared by the files of src/watch/. */
#ifndef LOOPKIT_WATCH_INTERNAL_H
#define LOOPKIT_WATCH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/resp.h"
#include "core/acceptor.h"
#include "core/buf.h"
#include "core/hist.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proto.h"
#include "http/http.h"
#include "watch/watch.h"

/* ---- statistics (stats.c, pure) ---- */
#define WATCH_MINUTES  WATCH_SPARK_POINTS /* minute buckets: the last hour */
#define WATCH_HOURS    (7 * 24)           /* hour buckets: the last 7 days */
#define WATCH_LAT_RING 256                /* latencies kept for p50/p95 */

struct watch_minute {
	uint32_t idx;        /* minutes since the epoch; 0: empty */
	uint16_t n, ok;      /* probes, successful ones */
	uint64_t lat_sum_us; /* over the successful ones */
};
struct watch_hour {
	uint32_t idx; /* hours since the epoch; 0: empty */
	uint32_t n, ok;
};
struct watch_lat {
	uint32_t t_s; /* wall clock seconds of the probe */
	uint32_t us;  /* its duration, saturated */
};
struct watch_stats {
	struct watch_minute min[WATCH_MINUTES];
	struct watch_hour hour[WATCH_HOURS];
	struct watch_lat lat[WATCH_LAT_RING];
	unsigned lat_next, nlat;
};

/* Counts one probe that ran at wall_ms. */
void watch_stats_add(struct watch_stats *s, uint64_t wall_ms, int ok, uint64_t lat_us);
/* Adds n probes (ok of them good) to the hour bucket idx (loading history). */
void watch_stats_add_hour(struct watch_stats *s, uint32_t idx, uint32_t n, uint32_t ok);
/* Adds n probes (ok good, lat_sum_us over the good ones) to the minute bucket idx. */
void watch_stats_add_minute(struct watch_stats *s, uint32_t idx, uint32_t n, uint32_t ok,
                            uint64_t lat_sum_us);
/* Remembers one latency (loading history). */
void watch_stats_add_latency(struct watch_stats *s, uint64_t wall_ms, uint64_t lat_us);
/* The share of good probes in window w (0: last 60 minutes, 1: the last 24 whole
 * hours, 2: the last 168) at wall_ms; -1 when the window holds none. */
double watch_stats_uptime(const struct watch_stats *s, uint64_t wall_ms, int w);
/* p50 and p95 of the latencies of the last hour, through the scratch histogram h
 * (left empty again). Returns how many samples there were. */
unsigned watch_stats_pcts(const struct watch_stats *s, uint64_t wall_ms, struct hist *h, uint64_t *p50,
                          uint64_t *p95);
/* One point per minute of the last hour, oldest first: mean latency of good probes
 * (us, -1 when none), and the failed share (-1 when no probe). */
void watch_stats_spark(const struct watch_stats *s, uint64_t wall_ms, double lat[WATCH_SPARK_POINTS],
                       double fail[WATCH_SPARK_POINTS]);

/* ---- checks (check.c, pure) ---- */
/* An FTP reply in b[0..n): 1 when whole (single or multi-line) with its code in *code
 * and *len bytes; 0 when more is needed; -1 when it is not an FTP reply. */
int watch_ftp_reply(const char *b, size_t n, int *code, size_t *len);
/* Does the JSON body hold path equal to want (JSON text; NULL: exists)? Returns 1, or
 * 0 with the reason in why. */
int watch_json_check(const char *body, size_t len, const char *path, const char *want, char *why,
                     size_t whylen);
/* Is status accepted by t's ranges (default 200-299)? */
int watch_status_ok(const struct watch_target *t, int status);
/* Finds needle in hay (binary-safe). */
const char *watch_memmem(const char *hay, size_t n, const char *needle, size_t k);

/* ---- one probe in flight (probe.c, spawn.c) ---- */
struct watch_target_rt;

struct watch_result {
	int ok;
	uint64_t latency_us;
	int status;          /* HTTP status or FTP reply; 0 */
	uint64_t body_bytes; /* http */
	uint64_t wall_ms;    /* when the probe started */
	char detail[WATCH_DETAIL_MAX];
};

struct watch_probe {
	struct watch *w;
	struct watch_target_rt *t;
	struct loop_io io;
	struct loop_timer timer; /* the probe's deadline */
	uint64_t t0_us;          /* monotonic start */
	int phase;               /* kind-specific step */
	struct buf in;           /* bytes read, not yet consumed */
	struct buf body;         /* http: body kept for contains/json */
	size_t sent;             /* bytes of the request written */
	const char *tx;          /* what to send: req, or the target's own bytes */
	size_t tx_len;
	char req[WATCH_URL_MAX + 512]; /* an HTTP request or an FTP command */
	int eof;                       /* the peer closed */
	int body_over;                 /* http: the body passed WATCH_BODY_MAX */
	struct watch_result res;
	/* http framing (bench/resp.h) */
	struct bench_resp resp;
	size_t line_from; /* bytes already searched for a line end */
	/* cmd */
	pid_t pid;
	struct loop_io out; /* the command's output pipe */
	char outtext[WATCH_DETAIL_MAX];
	size_t outlen;
	int killed;
};

/* Starts the probe of p->t (p zeroed apart from w and t). The result comes back
 * through watch_probe_done, maybe before this returns. */
void watch_probe_start(struct watch_probe *p);
/* Frees what a finished probe holds. */
void watch_probe_release(struct watch_probe *p);
/* Ends a probe: its duration, the latency budget, descriptors closed; then
 * watch_probe_done. p->res.detail holds the reason when !ok. p may be reused after. */
void watch_probe_end(struct watch_probe *p, int ok);
/* The watcher takes the result in p->res (run.c). */
void watch_probe_done(struct watch_probe *p);

/* Spawns argv (envp may be NULL: ours) in a process group of its own with output into a
 * pipe (*out_fd, non-blocking; -1 to discard it) and returns its pidfd (or -1 with err). */
int watch_spawn(char *const argv[], char *const envp[], pid_t *pid, int *out_fd, char *err, size_t errlen);
/* Reaps the exited child behind pidfd: returns its wait status text ("exit status 3",
 * "killed by signal 9") in why, and 1 when it exited 0. */
int watch_reap(int pidfd, pid_t pid, char *why, size_t whylen);
/* The cmd probe (spawn.c). */
void watch_probe_cmd(struct watch_probe *p);

/* ---- history (store.c) ---- */
struct watch_store;
/* A result or a state change on its way to the database. */
struct watch_rec {
	int64_t target; /* its row id */
	int64_t ts_ms;  /* wall clock */
	int kind;       /* 0 result, 1 state change */
	int ok;         /* result: ok; change: the new state */
	int64_t latency_us;
	int status;
	char detail[WATCH_DETAIL_MAX];
};

/* Opens (creating) the history at path: WAL, synchronous=NORMAL, schema, a first write.
 * Returns NULL with the reason and the fix in err (read-only, corrupt, full disk...). */
struct watch_store *watch_store_open(const char *path, uint64_t retention_ms, uint64_t retention_count,
                                     char *err, size_t errlen);
/* The target's row id for name (created when new), and its last known state and since
 * (ms); loads its history into s. Before watch_store_start only. Returns 0 or -1. */
int watch_store_target(struct watch_store *s, const struct watch_target *t, int64_t *id, int *state,
                       uint64_t *since_ms, struct watch_stats *stats, uint64_t now_ms, char *err,
                       size_t errlen);
/* Starts the writer thread (batches every WATCH_FLUSH_MS, retention every
 * WATCH_PRUNE_MS). Returns 0 or -1 with err. */
int watch_store_start(struct watch_store *s, char *err, size_t errlen);
/* Queues a record (any thread; never blocks on the disk). */
void watch_store_put(struct watch_store *s, const struct watch_rec *r);
/* Figures for /metrics. */
struct watch_store_stats {
	uint64_t written, dropped, failed_batches, batches;
	double last_batch_s; /* duration of the last batch (s) */
	int failing;         /* the last batch failed */
};
void watch_store_stats(struct watch_store *s, struct watch_store_stats *out);
/* Writes what is queued, stops the thread, closes the database. */
void watch_store_close(struct watch_store *s);

#define WATCH_FLUSH_MS    1000   /* a batch (one transaction) at least this often */
#define WATCH_PRUNE_MS    10000  /* retention runs this often */
#define WATCH_PENDING_MAX 200000 /* records queued for the disk; more are dropped */

/* ---- the watcher (run.c) ---- */
struct watch_target_rt {
	const struct watch_target *spec;
	size_t id; /* index */
	struct watch *w;
	struct loop_timer timer;            /* the next probe */
	uint64_t due_ms;                    /* loop time of the next probe */
	struct watch_target_rt *next_ready; /* waiting for a free probe slot */
	int queued, running;
	enum watch_state state;
	unsigned fails;
	int done; /* --once/--until-up: its answer is in */
	struct watch_result last;
	int has_result;
	uint64_t cut_us; /* a probe the end of the run cut short: how long it had run; 0 */
	uint64_t since_ms;
	uint64_t probes, failures, changes;
	uint64_t seq;       /* bumped with every result (the page's updates) */
	uint64_t state_seq; /* bumped with every state change */
	int64_t db_id;
	struct watch_stats stats;
};

struct watch {
	const struct watch_config *cfg;
	struct watch_hooks hooks;
	struct loop *loop;
	struct watch_target_rt *t;
	size_t n;
	/* probes */
	struct watch_probe *slots;
	unsigned nslots, inflight, *free, nfree;
	struct watch_target_rt *ready_head, *ready_tail;
	int filling, refill; /* fill() is running; a slot came free meanwhile */
	uint64_t seq, state_seq;
	uint16_t eph_lo, eph_hi; /* net.ipv4.ip_local_port_range */
	uint64_t started_ms;     /* loop time at the start */
	int stopping;
	/* history */
	struct watch_store *store;
	char db_path[4096];
	/* page */
	int listen_fd;
	int listen_twin; /* its loopback twin's port, held (net_listen_loopback), or -1 */
	struct acceptor acc;
	void *http_ctx;
	struct http_config hc;
	struct proto_site site;
	atomic_uint nconns;
	unsigned nstreams; /* /events streams open (WATCH_SSE_MAX) */
	struct log_sink sink;
	char url[96];
	struct hist *scratch; /* percentiles */
	/* --on-change */
	struct watch_job *jobs;
	unsigned njobs;
	struct watch_jobq *jobq;
	uint64_t jobs_dropped;
	/* --until-up */
	struct loop_timer start_timer, until_timer, progress_timer;
	int timed_out;
	uint64_t scrape_count;
};

/* Fills r with every target's row now (rows point into w). Returns 0 or -1 (memory). */
int watch_report_fill(struct watch *w, struct watch_report *r);
/* The wall clock in ms. */
uint64_t watch_wall_ms(void);
/* Fills row with t's facts at wall_ms (scratch: a histogram for the percentiles). */
void watch_row_fill(struct watch *w, const struct watch_target_rt *t, uint64_t wall_ms,
                    struct watch_row *row);

/* ---- renderings (render.c) ---- */
/* One <tr> of the status page (with its sparkline). */
int watch_row_html(struct buf *b, const struct watch_row *r, const struct watch_stats *s, uint64_t wall_ms);
/* A row as JSON (the --json documents, /api/status); core/json.h (not with jansson.h:
 * both name json_null). */
struct json;
void watch_row_json(struct json *j, const struct watch_row *r);
/* /metrics: every target's samples, in Prometheus's text format. */
int watch_metrics(struct buf *b, struct watch *w);
/* The whole status page. */
int watch_page_html(struct buf *b, struct watch *w);

/* ---- the page (page.c) ---- */
#define WATCH_PAGE_CONNS 64 /* connections to the page at once */
#define WATCH_SSE_MAX                                                                         \
	(WATCH_PAGE_CONNS / 2)         /* /events streams at once: the other connections stay \
	                                  for /metrics, /api/status and the page */
#define WATCH_SSE_TICK_MS 500          /* the page's updates go out this often */
#define WATCH_SSE_BACKLOG (256u << 10) /* a page that falls this far behind is cut off */
#define WATCH_PAGE_SNDBUF (64 << 10)   /* kernel send buffer of a page connection */
#define WATCH_OUT_MAX     (64u << 20)  /* the largest page or /metrics */
/* Listens on 127.0.0.1:cfg->port and serves the page on w's loop through the HTTP
 * engine. Returns 0, or -1 with the reason (who holds the port) in err. */
int watch_page_start(struct watch *w, char *err, size_t errlen);
/* Closes the listener and every page connection; safe when not started. */
void watch_page_stop(struct watch *w);

/* ---- --on-change (spawn.c) ---- */
#define WATCH_JOBS_MAX       8     /* --on-change commands running at once */
#define WATCH_JOBQ_MAX       256   /* waiting; more are dropped (and counted) */
#define WATCH_JOB_TIMEOUT_MS 30000 /* an --on-change command is killed after this */
void watch_on_change(struct watch *w, const struct watch_row *row, enum watch_state from);
/* Kills and reaps what still runs (at exit). */
void watch_jobs_stop(struct watch *w);

#endif
