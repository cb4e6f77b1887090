/* conn.h - internals shared by the HTTP server's files: workers, connections, responses. */
#ifndef LOOPKIT_HTTP_CONN_H
#define LOOPKIT_HTTP_CONN_H

#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/fsroot.h"
#include "core/log.h"
#include "core/loop.h"
#include "diag/peer.h"
#include "http/parse.h"
#include "http/server.h"

#define HTTP_API_MAX_BODY     (1024 * 1024)      /* /_/ endpoints buffer bodies up to this -> 413 */
#define HTTP_OUT_MAX          (64 * 1024 * 1024) /* largest response held in memory (listings) */
#define HTTP_OUT_FLUSH        (64 * 1024)        /* stop pipelining and flush past this */
#define HTTP_IN_MAX           (HTTP_MAX_HEAD + 1024)
#define HTTP_LINGER_MS        2000
#define HTTP_MAX_LISTING      50000       /* directory entries shown in one listing */
#define HTTP_CACHE_SLOTS      1024        /* per thread */
#define HTTP_CACHE_FILE_MAX   (64 * 1024) /* files up to this are kept in memory */
#define HTTP_CACHE_RECHECK_MS 1000        /* re-stat a cached path at least this often */

enum http_method { M_GET, M_HEAD, M_POST, M_PUT, M_DELETE, M_OPTIONS, M_PATCH, M_TRACE, M_CONNECT, M_OTHER };

struct http_worker;

struct http_server {
	struct http_config cfg;
	struct fsroot root;
	int nworkers;
	struct http_worker **workers;
	atomic_uint nconns; /* open connections, all threads */
	struct log_sink log; /* access logs (never blocks a loop) */
	struct proto_site site; /* what FTP shares with HTTP */
	struct dirsnap_cache *dirs;
	atomic_int stopping;
	uint16_t port;
	char host[64]; /* bound address as text, for the Host check */
};

struct http_cache_entry {
	char *path; /* normalised relative path; NULL when the slot is free */
	uint32_t hash;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char *data; /* the whole file */
	const char *mime;
	char etag[64];
	char lastmod[32];
	int wd, dwd;      /* inotify watches on the file and its directory; -1: none */
	uint64_t checked; /* loop_now() of the last stat of the path */
};

struct http_worker {
	struct http_server *srv;
	int id;
	struct loop *loop;
	struct loop_io listen_io;
	int listen_fd;
	int emfile_logged;              /* said once per episode of descriptor exhaustion */
	struct loop_timer accept_timer; /* retries accept after EMFILE */
	struct loop_timer grace_timer;
	struct http_conn *conns; /* doubly linked list of open connections */
	unsigned nconns;
	int stopping;
	pthread_t thread;
	struct buf log; /* access-log lines waiting for one write */
	int log_flush_queued;
	time_t date_sec;
	char date[32]; /* cached IMF-fixdate of date_sec */
	struct http_cache_entry cache[HTTP_CACHE_SLOTS];
	struct loop_io ino_io; /* inotify: invalidates cache entries when files change */
	void *ftp;             /* FTP sessions handed over by the sniffer (ftp_proto_ops) */
	struct diag_browsers browsers; /* who counts as a browser, listed at most once a second */
	uint64_t prng;         /* for /_/status lists, uuid fallback */
	time_t clf_sec;
	char clf[32];            /* cached common-log time of clf_sec */
	struct http_request req; /* the head being parsed (one at a time per thread) */
};

enum conn_state {
	CS_SNIFF,  /* nothing received yet; silence until the sniff window ends means FTP */
	CS_HEAD,   /* waiting for (more of) a request head, or idle between requests */
	CS_BODY,   /* reading a request body into body_sink */
	CS_SEND,   /* a response is being written; reading paused */
	CS_WAIT,   /* response held back until a deadline (/_/delay, /_/drip) */
	CS_LINGER, /* response sent, write side shut, discarding input until close */
};

enum body_sink { SINK_NONE, SINK_MEM, SINK_FILE };
enum resp_body { RB_NONE, RB_FILE, RB_GEN, RB_DRIP };

struct http_conn {
	struct loop_io io;
	struct loop_timer timer;
	uint64_t deadline; /* ms; what happens then depends on state */
	struct http_worker *w;
	struct http_conn *prev, *next;
	enum conn_state state;
	struct buf in;   /* bytes read, not yet consumed */
	struct buf out;  /* bytes to send before the response body */
	size_t last_len; /* parser resume point */
	int need_input;  /* the buffered head is incomplete: wait for more bytes */
	int closing;     /* close once the current response is sent */
	int linger;      /* ...and drain input first: the peer may still be sending */
	int shut;        /* closed; memory freed after the batch */
	struct sockaddr_storage peer;
	char peer_str[48];

	/* the request in progress */
	uint64_t t_start; /* µs when the head was complete */
	int status;
	uint64_t body_bytes; /* response body bytes sent */
	int head_only;       /* HEAD: no body */
	int minor;
	char logreq[256]; /* "GET /path HTTP/1.1" for the access log */

	/* request body */
	enum body_sink sink;
	int chunked;
	struct http_chunked chunk;
	uint64_t body_left; /* Content-Length bytes still to read */
	uint64_t body_total;
	char *head; /* copy of the head while a body is read (SINK_MEM) */
	size_t head_len;
	struct buf body;         /* SINK_MEM */
	struct fsroot_upload up; /* SINK_FILE */

	/* response body after `out` */
	enum resp_body rb;
	int file_fd;
	off_t file_off;
	uint64_t rb_left;   /* bytes (RB_FILE, RB_GEN, RB_DRIP) */
	uint64_t gen_state; /* RB_GEN: PRNG state */
	int gen_chunked;    /* RB_GEN: chunked framing */
	size_t gen_chunk;   /* RB_GEN: chunk size */
	uint64_t drip_interval_ms;
};

/* Facts about the request being dispatched, derived once from the parsed head. */
struct http_reqinfo {
	const struct http_request *req;
	enum http_method method;
	struct http_slice path;  /* raw path of the target, before '?' */
	struct http_slice query; /* after '?', without it; len 0 when none */
	const char *body;        /* SINK_MEM body */
	size_t body_len;
	int accept_json;
};

/* Response writing (server.c). resp_start writes the status line and the headers
 * every response carries; then add headers, then end with one of the resp_end_* or
 * resp_send_* calls. */
void resp_start(struct http_conn *c, int status);
void resp_header(struct http_conn *c, const char *name, const char *value);
void resp_headerf(struct http_conn *c, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Ends the headers with Content-Type and Content-Length and appends the body
 * (omitted for HEAD). */
void resp_send_mem(struct http_conn *c, const char *type, const void *p, size_t len);
/* Ends the headers for a body that follows in c->rb (file, generator, drip). With
 * chunked, Transfer-Encoding: chunked replaces Content-Length. */
void resp_end_headers(struct http_conn *c, const char *type, uint64_t len, int chunked);
/* A complete error response with a one-line text/plain body "STATUS REASON: msg". */
void resp_error(struct http_conn *c, int status, const char *msg);
/* Same, and the connection closes after it. */
void resp_error_close(struct http_conn *c, int status, const char *msg);
/* The body of the response being written goes to the out buffer (for listings). */
struct buf *resp_out(struct http_conn *c);
const char *http_reason(int status);
/* Sets what happens at c->deadline: used by /_/delay and /_/drip. */
void conn_wait(struct http_conn *c, uint64_t ms);

/* files.c */
void files_handle(struct http_conn *c, const struct http_reqinfo *ri);
/* Starts a PUT upload; returns 0 when the body should be read into c->up, or -1
 * after queuing an error response. */
int files_put_begin(struct http_conn *c, const struct http_reqinfo *ri);
void files_put_finish(struct http_conn *c, int err);
/* Sets up the worker's file cache (and its inotify watch); 0 or -1. */
int files_cache_init(struct http_worker *w);
void files_cache_clear(struct http_worker *w);
/* OPTIONS: Allow, and with --cors the preflight answer. */
void files_options(struct http_conn *c, const struct http_reqinfo *ri);

/* api.c */
void api_handle(struct http_conn *c, const struct http_reqinfo *ri);
/* Fills the out buffer with the next piece of a generated body; returns bytes added. */
size_t api_gen_fill(struct http_conn *c, size_t room);
/* One drip byte is due. */
void api_drip(struct http_conn *c);

#endif
