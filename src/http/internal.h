/* internal.h - the HTTP engine's inside: per-thread context, connection state machine,
 * and the functions its files call of each other. Only conn.c, resp.c and route.c see
 * it; handlers use resp.h. It includes no header of theirs (no module cycle). */
#ifndef LOOPKIT_HTTP_INTERNAL_H
#define LOOPKIT_HTTP_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "core/accesslog.h"
#include "core/buf.h"
#include "core/filesend.h"
#include "core/fsroot.h"
#include "core/loop.h"
#include "core/proto.h"
#include "http/filecache.h"
#include "http/http.h"
#include "http/parse.h"
#include "http/types.h"

struct http_route;

#define HTTP_OUT_MAX     (64 * 1024 * 1024) /* largest response head + body held in memory */
#define HTTP_OUT_FLUSH   (64 * 1024)        /* stop pipelining, and fill generators, up to this */
#define HTTP_IN_MAX      (HTTP_MAX_HEAD + 1024)
#define HTTP_LINGER_MS   2000
#define HTTP_TURN_BYTES  (1024 * 1024) /* written per connection per loop turn, then others go */
#define HTTP_GEN_FILL    (16 * 1024)   /* generated per connection per turn (making bytes costs CPU) */
#define HTTP_TURN_ROUNDS 16            /* pipelined requests handled per turn */
#define HTTP_DISCARD_MAX                                                \
	(64 * 1024) /* an unwanted body up to this is read and dropped; \
	               a larger or chunked one closes the connection */

/* One per event-loop thread. */
#define HTTP_LOG_AGENT_MAX 512

struct http_ctx {
	struct loop *loop;
	const struct proto_site *site;
	const struct http_config *cfg;
	struct proto_hooks hooks;
	struct http_conn *conns; /* doubly linked list of open connections */
	unsigned nconns;
	int stopping;
	time_t date_sec;
	char date[32]; /* cached IMF-fixdate of date_sec */
	uint64_t prng;
	struct accesslog log;
	struct filecache *files; /* NULL when there is no root */
	struct http_request req; /* the head being parsed (one at a time per thread) */
	struct buf_pool pool;    /* first blocks of connections' in and out buffers */
	atomic_size_t *mem;      /* the site's count of bodies and answers in memory */
	atomic_size_t mem_own;   /* ...this one when the site has none */
};

enum conn_state {
	CS_HEAD,   /* waiting for (more of) a request head, or idle between requests */
	CS_BODY,   /* reading a request body into the sink */
	CS_SEND,   /* a response is being written; reading paused */
	CS_WAIT,   /* response held back until a deadline (/_/delay), a drip tick, or the
	              request's turn at the login gate (login_wait) */
	CS_LINGER, /* response sent, write side shut, discarding input until close */
};

/* Where a request body goes: nowhere yet, memory (/_/), an upload, or away (a small
 * body nobody wants is read and dropped, so the connection can stay open). */
enum body_sink { SINK_NONE, SINK_MEM, SINK_FILE, SINK_DISCARD };
enum resp_body { RB_NONE, RB_FILE, RB_GEN };

struct http_conn {
	struct loop_io io;
	struct loop_timer timer;
	uint64_t deadline; /* ms; what happens then depends on state */
	struct http_ctx *x;
	struct http_conn *prev, *next;
	enum conn_state state;
	struct buf in;      /* bytes read, not yet consumed */
	int in_batch;       /* the request being read came first, into an empty buffer, in a
	                       read of an event epoll reported: a file changed before it was
	                       sent is in this batch's inotify news (filecache_lookup) */
	struct buf out;     /* bytes to send before (and of) the response body */
	size_t mem_held;    /* counted in x->mem: the body (or its reservation), a /_/ answer */
	size_t mem_reserve; /* the body's announced length, counted before it arrives */
	int mem_out;        /* out holds a /_/ answer: its memory is counted */
	size_t last_len;    /* parser resume point */
	int need_input;     /* the buffered head is incomplete: wait for more bytes */
	int closing;        /* close once the current response is sent */
	int linger;         /* ...and drain input first: the peer may still be sending */
	int linger_outq;    /* lingering: the answer's bytes still unacknowledged at the last check */
	int shut;           /* closed; memory freed after the batch */
	struct proto_peer peer;
	int login_ok;   /* the login was proven on this connection: later requests with
	                   the same credentials skip the gate's budget */
	int login_wait; /* the head in `in` waits for its turn at the login gate */
	int login_turn; /* ...and its turn has come: answer it without asking again */

	/* the request in progress */
	uint64_t t_start; /* µs when the head was complete */
	int status;
	uint64_t body_bytes; /* response body bytes sent */
	int head_only;       /* HEAD: no body */
	int minor;
	char logmethod[16]; /* for the access log */
	char logtarget[256];
	char *log_ref, *log_ua;  /* Referer and User-Agent, kept only for a log that shows them
	                            (combined, JSON), at most HTTP_LOG_AGENT_MAX bytes each */
	const char *user;        /* the authenticated user, for the log */
	const char *cors_origin; /* the request's Origin (in cors_echo) when it is a --cors-origin */
	char cors_echo[256];

	/* request body */
	enum body_sink sink;
	const struct http_route *route; /* the route the body is read for */
	int chunked;
	struct http_chunked chunk;
	uint64_t body_left; /* Content-Length bytes still to read */
	uint64_t body_total;
	char *head; /* copy of the head while a body is read (SINK_MEM, SINK_DISCARD) */
	size_t head_len;
	struct buf body;          /* SINK_MEM */
	struct fsroot_upload *up; /* SINK_FILE (532 bytes: made for an upload only) */

	/* response body after `out` */
	enum resp_body rb;
	struct filesend file; /* RB_FILE */
	const struct resp_gen_ops *gen;
	uint64_t gen_interval; /* ms between fills; 0: as fast as the socket takes */
	uint64_t hold_until;   /* loop_now() before which the response is held (resp_hold) */
	union {
		char bytes[RESP_GEN_STATE_MAX];
		uint64_t align;
	} gen_state;
};

/* conn.c */
/* Moves the connection's deadline to ms from now. */
void conn_deadline(struct http_conn *c, uint64_t ms);
/* The response to the current request is complete (queued or sent): log it, reset,
 * and wait for the next request. */
void conn_request_done(struct http_conn *c);

/* Brings the connection's share of the memory count (HTTP_MEM_MAX) up to date with
 * what it holds: its /_/ body, or the room reserved for it, and its /_/ answer. */
void conn_mem_sync(struct http_conn *c);
/* May n more bytes of /_/ body or answer be held now (within HTTP_MEM_MAX)? */
int conn_mem_room(const struct http_conn *c, size_t n);
/* Answers 503 with Retry-After: HTTP_MEM_MAX is reached. With close, the connection
 * closes after it (a body it will not read is on its way). */
void conn_mem_refuse(struct http_conn *c, int close);

/* route.c */
/* Parses and checks a complete head and dispatches it (or starts reading its body). */
void route_head(struct http_conn *c, const struct http_request *req, size_t headlen);
/* The body has been read (into c->body or c->up): dispatch, commit or answer. */
void route_body_done(struct http_conn *c);
/* Writes the access-log line of the finished request. */
void route_log(struct http_conn *c);

/* resp.c */
/* Ends whatever body source is active (closing its file, ending its generator). */
void resp_body_reset(struct http_conn *c);

#endif
