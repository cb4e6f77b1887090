/* watch.h - `loopkit watch`: health checks of local services, history, status page, metrics. */
#ifndef LOOPKIT_WATCH_WATCH_H
#define LOOPKIT_WATCH_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/buf.h"

/* ---- limits and defaults (one place; the flag table and docs read them) ---- */
#define WATCH_PORT_DEFAULT       62894 /* the status page: next to loopkit's home port */
#define WATCH_INTERVAL_S_DEFAULT 10
#define WATCH_TIMEOUT_S_DEFAULT  3
#define WATCH_RETRIES_DEFAULT    1
#define WATCH_UNTIL_S_DEFAULT    30 /* --until-up: the whole wait, unless --timeout */
#define WATCH_INTERVAL_MIN_MS    100
#define WATCH_INTERVAL_MAX_MS    (24u * 3600 * 1000)
#define WATCH_TIMEOUT_MIN_MS     10
#define WATCH_TIMEOUT_MAX_MS     (3600u * 1000)
#define WATCH_RETRIES_MAX        100
#define WATCH_TARGETS_MAX        10000        /* targets one watcher takes */
#define WATCH_CONFIG_MAX         (16u << 20)  /* bytes of a --config file */
#define WATCH_NAME_MAX           200          /* bytes of a target's name */
#define WATCH_URL_MAX            2048         /* bytes of a target's URL or command */
#define WATCH_SEND_MAX           4096         /* bytes a udp/tcp target sends */
#define WATCH_BODY_MAX           (256u << 10) /* HTTP body bytes kept for contains/json */
#define WATCH_STATUS_RANGES      8            /* accepted status ranges per HTTP target */
#define WATCH_INFLIGHT_DEFAULT   128          /* probes in flight at once */
#define WATCH_INFLIGHT_MAX       4096
#define WATCH_POLL_MS            250    /* --until-up: a target not yet up is probed again after this */
#define WATCH_RETENTION_DEFAULT  "720h" /* history kept by age: 30 days */
#define WATCH_KEEP_DEFAULT       100000 /* results kept per target */
#define WATCH_DETAIL_MAX         160    /* bytes of a probe's failure text */

enum watch_kind { WATCH_TCP, WATCH_HTTP, WATCH_FTP, WATCH_UDP, WATCH_CMD, WATCH_KIND_COUNT };
enum watch_state { WATCH_UNKNOWN, WATCH_UP, WATCH_DOWN };
enum watch_mode { WATCH_RUN, WATCH_ONCE, WATCH_UNTIL_UP };

/* An accepted range of HTTP statuses. */
struct watch_range {
	uint16_t lo, hi;
};

/* One target as the operator gave it. Strings are owned by the target. */
struct watch_target {
	char *name; /* shown, labelled and the key of its history; defaults to url */
	char *url;  /* as given: tcp://, http://, ftp://, udp://, cmd:... */
	enum watch_kind kind;
	char *host; /* as written, without brackets ("127.0.0.1", "::1", "localhost") */
	uint16_t port;
	struct sockaddr_storage addr; /* resolved once, at start */
	socklen_t addrlen;            /* 0 until resolved */
	char *host_header;            /* http: Host */
	char *path;                   /* http: request target ("/health?x=1") */
	char *user, *pass;            /* ftp: login (anonymous by default) */
	int login;                    /* ftp: log in after the greeting (default 1) */
	char *send;                   /* tcp/udp: bytes to send, or NULL */
	size_t send_len;
	char *expect; /* tcp/udp: a substring the answer must hold, or NULL */
	size_t expect_len;
	char *contains;    /* http: a substring the body must hold, or NULL */
	char *json_path;   /* http: a field of the JSON body ("data.items[0].id"), or NULL */
	char *json_equals; /* ... and the JSON value it must equal; NULL: it must exist */
	struct watch_range status[WATCH_STATUS_RANGES]; /* http: accepted statuses */
	unsigned nstatus;                               /* 0: 200-299 */
	uint32_t max_latency_ms;                        /* slower counts as a failure; 0: no budget */
	char **argv;                      /* cmd: argv, NULL-terminated ("/bin/sh -c TEXT" for text) */
	uint32_t interval_ms, timeout_ms; /* 0 until the flags' defaults fill them */
	int retries;                      /* -1 until filled */
};

/* Everything the watcher is told: targets, defaults, where history and page go. */
struct watch_config {
	struct watch_target *targets;
	size_t ntargets, cap;
	uint32_t interval_ms, timeout_ms; /* defaults for targets without their own */
	unsigned retries;
	int allow_remote; /* targets beyond loopback allowed */
	enum watch_mode mode;
	uint64_t until_ms;     /* --until-up: the whole wait */
	const char *db_path;   /* history; NULL: the default under the state directory */
	uint16_t port;         /* page and /metrics; 0: any free port */
	const char *on_change; /* shell command run on every state change, or NULL */
	unsigned max_inflight;
	uint64_t retention_ms;    /* history older than this is deleted */
	uint64_t retention_count; /* results kept per target */
};

/* Fills c with the defaults and no targets. */
void watch_config_init(struct watch_config *c);
/* Frees the targets (and everything they own); c may be initialised again. */
void watch_config_free(struct watch_config *c);
/* Adds a target from its URL ("tcp://127.0.0.1:5432", "http://localhost:3000/health",
 * "ftp://user:pw@127.0.0.1:21/", "udp://127.0.0.1:53", "cmd:pg_isready -q", or
 * "HOST:PORT" for tcp). Returns 0, or -1 with the reason and the fix in err. */
int watch_config_add_url(struct watch_config *c, const char *url, char *err, size_t errlen);
/* Adds the targets of a JSON config file (docs/watch.md). Malformed JSON is reported
 * with its line and column. Returns 0 or -1 with err. */
int watch_config_load(struct watch_config *c, const char *path, char *err, size_t errlen);
/* Loads the JSON library that the config file needs: 0, or -1 with why it cannot be (not
 * the file's fault, unlike watch_config_load's errors). */
int watch_config_need(char *err, size_t errlen);
/* Adds the targets of JSON text (name is what messages call it). Same as above. */
int watch_config_parse(struct watch_config *c, const char *text, size_t len, const char *name, char *err,
                       size_t errlen);
/* Fills per-target defaults from c, checks names are distinct and every address is
 * loopback (unless allow_remote), resolving host names once. Returns 0 or -1 with err. */
int watch_config_finish(struct watch_config *c, char *err, size_t errlen);

/* The default history file: $XDG_STATE_HOME/loopkit/watch.db, else
 * ~/.local/state/loopkit/watch.db. Returns 0, or -1 with err (no HOME). */
int watch_db_default(char *out, size_t len, char *err, size_t errlen);

/* The names people read and scripts match: "tcp", "http", ...; "pending", "up", "down".
 * Static strings. */
const char *watch_kind_name(enum watch_kind k);
const char *watch_state_name(enum watch_state s);

/* ---- one target's facts, as every rendering shows them ---- */
#define WATCH_SPARK_POINTS 60 /* the sparkline: one point a minute over the last hour */
#define WATCH_WINDOWS      3  /* uptime windows: 1 h, 24 h, 7 d */
extern const char *const watch_window_names[WATCH_WINDOWS]; /* "1h", "24h", "7d" */

struct watch_row {
	size_t id; /* index in the config */
	const char *name, *url, *kind;
	enum watch_state state;
	unsigned fails;               /* consecutive failed probes */
	unsigned retries;             /* failures allowed before DOWN, minus one */
	int has_result;               /* a probe has finished (this run or, from history, an earlier one) */
	int ok;                       /* the last probe succeeded */
	uint64_t latency_us;          /* the last probe's duration */
	int status;                   /* HTTP status or FTP reply of the last probe; 0 */
	uint64_t body_bytes;          /* http: body bytes of the last answer */
	const char *detail;           /* why the last probe failed; "" */
	uint64_t last_ms;             /* wall clock ms of the last probe; 0 */
	uint64_t since_ms;            /* wall clock ms of the last state change; 0 */
	double uptime[WATCH_WINDOWS]; /* ratio 0..1; < 0 when the window has no probe */
	uint64_t p50_us, p95_us;      /* successful probes of the last hour */
	unsigned npct;                /* how many samples they come from */
	uint64_t probes, failures, changes; /* since this process started */
	int family;                         /* AF_INET or AF_INET6; 0 for cmd */
	uint64_t cut_us; /* --once/--until-up: a probe still unanswered when the run ended had run this long;
	                    0 */
};

/* A run's result for --once and --until-up: every row, and the tally. */
struct watch_report {
	struct watch_row *rows;
	size_t n, up, down, pending;
	uint64_t elapsed_ms;
	int timed_out; /* --until-up gave up */
};

/* Frees the rows (they point into the watcher: render before watch_free). */
void watch_report_free(struct watch_report *r);
/* The table people read (one line per target, then the tally). color: ANSI colours. */
void watch_report_print(FILE *f, const struct watch_report *r, int color);
/* The same facts as one JSON document. Returns 0, or -1 when b's limit is hit. */
int watch_report_json(struct buf *b, const struct watch_report *r);

/* A state change, as the run reports it while running. */
struct watch_event {
	const struct watch_row *row;
	enum watch_state from;
};
/* One line per change, appended to b with its newline: "2026-05-01T10:00:00Z  down
 * api [http://...]  connection refused: ... (2 failed probes in a row)". color: ANSI
 * colours. Returns 0, or -1 when b's limit is hit. */
int watch_event_text(struct buf *b, const struct watch_event *e, int color);
/* The same as one JSON line (with its newline). Returns 0 or -1. */
int watch_event_json(struct buf *b, const struct watch_event *e);

/* ---- the run ---- */
struct watch;

/* What the run tells its caller (all optional; called on the loop thread). */
struct watch_hooks {
	void (*change)(void *arg, const struct watch_event *e);
	/* --until-up on a terminal: the progress line, redrawn (NULL when not a TTY). */
	void (*progress)(void *arg, const struct watch_report *r, uint64_t until_ms);
	void *arg;
};

/* Sets up a watcher for cfg (finished; borrowed until watch_free): for WATCH_RUN it
 * opens the history (clear errors for a read-only, corrupt or full database) and the
 * page's listener. Returns NULL with the reason and the fix in err. */
struct watch *watch_new(const struct watch_config *cfg, const struct watch_hooks *hooks, char *err,
                        size_t errlen);
/* The page's URL ("http://127.0.0.1:62894/"); "" without a page. */
const char *watch_url(const struct watch *w);
/* The history file in use; "" without one. */
const char *watch_db_path(const struct watch *w);
/* Probes until SIGINT/SIGTERM (WATCH_RUN), once (WATCH_ONCE) or until everything is up
 * or the wait ends (WATCH_UNTIL_UP), then fills r (may be NULL for WATCH_RUN).
 * Returns 0, or -1 with err when the loop failed. */
int watch_run(struct watch *w, struct watch_report *r, char *err, size_t errlen);
void watch_free(struct watch *w);

#endif
