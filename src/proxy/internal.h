/* internal.h - the proxy's insides: proxies, toxics, connection pairs, shared by src/proxy/. */
#ifndef LOOPKIT_PROXY_INTERNAL_H
#define LOOPKIT_PROXY_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/acceptor.h"
#include "core/buf.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proto.h"
#include "http/http.h"
#include "proxy/proxy.h"

struct json;
struct record;

enum proxy_dir { PROXY_UP = 0, PROXY_DOWN = 1 }; /* client -> upstream; upstream -> client */
const char *proxy_stream_name(enum proxy_dir d); /* toxiproxy's "upstream", "downstream" */

/* ---- toxics (toxic.c) ---- */

enum toxic_kind {
	TK_LATENCY,
	TK_BANDWIDTH,
	TK_SLOW_CLOSE,
	TK_TIMEOUT,
	TK_RESET_PEER,
	TK_SLICER,
	TK_LIMIT_DATA,
	TK_LOSS,
	TK_CORRUPT,
	TK_HTTP_FAIL,
	TK_HTTP_DELAY,
	TK_HTTP_HEADER,
	TK_HTTP_CUT,
	TK_COUNT
};

#define TOXIC_MAX_ATTRS 4
#define TOXIC_STR_MAX   512       /* a string attribute (a header name or value), bytes */
#define TOXIC_TIME_MAX  3600000.0 /* ms: an hour is the longest delay any toxic takes */

enum toxic_attr_kind { TA_INT, TA_NUM, TA_STR, TA_ENUM };

struct toxic_attr_def {
	const char *name;
	enum toxic_attr_kind kind;
	double def, min, max;       /* TA_INT, TA_NUM (TA_ENUM: def is the index) */
	const char *const *choices; /* TA_ENUM */
	const char *unit;           /* for docs and errors: "ms", "KB/s", "bytes", ... */
};

struct toxic_type {
	const char *name;
	enum toxic_kind kind;
	int http;  /* acts on HTTP messages: needs the stream to be HTTP/1.x */
	int bytes; /* needs the bytes (the toxic chain while it is active) */
	size_t nattrs;
	struct toxic_attr_def attrs[TOXIC_MAX_ATTRS];
};

/* One toxic of a proxy. */
struct toxic {
	char name[PROXY_NAME_MAX];
	const struct toxic_type *type;
	enum proxy_dir dir;
	double toxicity;             /* chance, per connection, that it acts (0..1) */
	double num[TOXIC_MAX_ATTRS]; /* numeric and enum attributes, in type order */
	char str[2][TOXIC_STR_MAX];  /* string attributes, in type order */
	uint32_t id;                 /* server-wide; keys each connection's state */
	uint64_t seen;               /* http_fail: requests seen so far (first N) */
	uint64_t applied;            /* how many times it acted (summary) */
};

/* A proxy's or a toxic's name (what: "proxy", "toxic"): 1 to PROXY_NAME_MAX - 1 bytes,
 * no '/' (it is a path segment of the API) and no control characters. Returns 0, or -1
 * with the rule in why. */
int proxy_name_check(const char *what, const char *name, char *why, size_t whylen);
const struct toxic_type *toxic_type_find(const char *name);
const struct toxic_type *toxic_type_at(size_t i); /* NULL past the end */
/* Sets t to the defaults of type (name "TYPE_STREAM" unless given). */
void toxic_defaults(struct toxic *t, const struct toxic_type *type, enum proxy_dir dir);
/* Parses toxiproxy's JSON for a new toxic (obj is a json_t object) into t. update:
 * only attributes and toxicity change, absent ones keep their values. Returns LK_E_OK
 * or the error, with the detail in why. */
enum lk_err toxic_from_json(struct toxic *t, const void *obj, int update, char *why, size_t whylen);
/* Parses a --toxic SPEC: TYPE[,ATTR=VALUE]... with stream=, toxicity= and name=.
 * Returns 0, or -1 with the reason in why. */
int toxic_from_spec(struct toxic *t, const char *spec, char *why, size_t whylen);
/* Writes the toxic as toxiproxy does: name, type, stream, toxicity, attributes. */
void toxic_json(struct json *j, const struct toxic *t);
/* The value of the attribute called name (must exist in the type). */
double toxic_num(const struct toxic *t, const char *name);
const char *toxic_str(const struct toxic *t, const char *name);

/* A preset: latency, bandwidth and loss of a measured link. */
struct proxy_preset {
	const char *name;
	unsigned latency_ms; /* round-trip latency added, split over both directions */
	unsigned kbit;       /* bandwidth each way, kbit/s (0: not limited) */
	double loss;         /* chance a chunk is lost (and retransmitted after an RTO) */
	const char *source;
};
const struct proxy_preset *proxy_preset_find(const char *name);
#define PROXY_PRESET_TOXICS 6 /* the most toxics a preset makes: latency, bandwidth, loss each way */
/* Fills out[] with the toxics of a preset; returns how many (at most PROXY_PRESET_TOXICS). */
size_t proxy_preset_toxics(const struct proxy_preset *p, struct toxic *out);

/* ---- proxies, connections (server.c, relay.c) ---- */

struct proxy_server;
struct pconn;

/* What a removed toxic did, kept for the summary at exit. Toxics of one name, type and
 * stream add up in one tally; past PROXY_TALLY_NAMES names, the rest add up per type and
 * stream (name ""), so the tallies stay bounded whatever an API client does. */
#define PROXY_TALLY_NAMES PROXY_MAX_TOXICS
struct toxic_tally {
	char name[PROXY_NAME_MAX];
	const struct toxic_type *type;
	enum proxy_dir dir;
	uint64_t applied;
};

struct proxy {
	struct proxy_server *srv;
	char name[PROXY_NAME_MAX];
	char listen[PROXY_ADDR_MAX];   /* as bound: "127.0.0.1:15023" */
	char upstream[PROXY_ADDR_MAX]; /* as given */
	struct sockaddr_storage up_addr;
	socklen_t up_len;
	int enabled;
	int lfd;  /* the listener, -1 when disabled */
	int twin; /* its loopback twin's port, held (net_listen_loopback), or -1 */
	struct acceptor acc;
	struct toxic *toxics[PROXY_MAX_TOXICS];
	size_t ntoxics;
	struct pconn *conns; /* doubly linked list */
	unsigned nconns;
	uint64_t conns_total, bytes[2], refused;
	uint64_t rbytes[2];       /* read from each direction's source (bytes[]: written to its
	                             destination); a timeout or limit_data toxic swallows the difference */
	struct toxic_tally *gone; /* toxics removed so far */
	size_t ngone;
};

/* A pipe for what a destination did not take yet (spliced out), kept in a pool between uses. */
struct ppipe {
	int fd[2];
	uint32_t cap; /* bytes it holds */
};
#define PROXY_PIPE_POOL 64
/* A plain read takes this much at most, and a pipe is grown to hold it (what the
 * destination did not take of one read waits there). 256 KiB: a send this big leaves
 * as full segments (loopback's MSS is 65,483 bytes) but for one short tail; 64 KiB
 * sends ended in a short segment each, which the receiver woke for and acknowledged. */
#define PROXY_BULK (256 * 1024)
_Static_assert(PROXY_BULK <= PROXY_CHAIN_MAX, "what one read leaves unsent fits in a chain");

struct proxy_server {
	struct loop *loop;
	struct proxy_opts o;
	struct proxy *proxies[PROXY_MAX_PROXIES];
	size_t nproxies;
	/* proxies deleted (or replaced by /populate) while it ran, for the summary: one per
	 * name, totals added up; past PROXY_MAX_PROXIES names, only counted */
	struct proxy *deleted[PROXY_MAX_PROXIES];
	size_t ndeleted;
	uint64_t deleted_unlisted;
	uint32_t next_toxic_id, next_conn_id;
	uint64_t rng;
	struct ppipe pipes[PROXY_PIPE_POOL];
	size_t npipes;
	char *bulk; /* PROXY_BULK bytes: every plain read lands here */
	unsigned nconns;
	int emfile_logged;
	/* the control API */
	struct http_config hc; /* a handler finds the server from its config (offsetof) */
	int api_fd;
	int api_twin; /* its loopback twin's port, held (net_listen_loopback), or -1 */
	struct acceptor api_acc;
	void *http_ctx;
	struct proto_site site;
	atomic_uint api_nconns;
	struct log_sink sink;
	char api_addr[PROXY_ADDR_MAX];
	struct record *rec; /* HAR, pcap and hexdump writers; NULL when none */
};

/* server.c */
struct proxy *proxy_find(struct proxy_server *s, const char *name);
/* Creates a proxy (listening when enabled). Returns LK_E_OK or the error with why. */
enum lk_err proxy_create(struct proxy_server *s, const char *name, const char *listen, const char *upstream,
                         int enabled, struct proxy **out, char *why, size_t whylen);
/* Changes listen, upstream and enabled (NULL: unchanged). Connections survive an
 * upstream change (new ones go to the new upstream) and a listen change (the listener
 * moves); disabling closes them, as toxiproxy does. */
enum lk_err proxy_update(struct proxy *p, const char *listen, const char *upstream, int enabled, char *why,
                         size_t whylen);
void proxy_delete(struct proxy *p);
/* Adds t (copied) to p's chain; live connections start using it. */
enum lk_err proxy_toxic_add(struct proxy *p, const struct toxic *t, struct toxic **out);
void proxy_toxic_remove(struct proxy *p, struct toxic *t);
struct toxic *proxy_toxic_find(struct proxy *p, const char *name);
/* The toxic's settings changed: live connections take the new ones now. */
void proxy_toxic_changed(struct proxy *p, struct toxic *t);
/* Writes p as toxiproxy does: name, listen, upstream, enabled, toxics. */
void proxy_json(struct json *j, const struct proxy *p);
/* POST /populate and --config: creates or replaces the proxies of a JSON array.
 * Returns LK_E_OK or the error; the proxies made so far are in made[]. */
enum lk_err proxy_populate(struct proxy_server *s, const void *arr, struct proxy **made, size_t *nmade,
                           char *why, size_t whylen);
/* A pipe from the pool (or a new one); 0 or -1 with errno. */
int proxy_pipe_get(struct proxy_server *s, struct ppipe *p);
/* Closes every pooled pipe (descriptors ran short). */
void proxy_pipe_drain(struct proxy_server *s);
/* Returns an empty pipe to the pool (or closes it). */
void proxy_pipe_put(struct proxy_server *s, struct ppipe *p);
uint64_t proxy_rand(struct proxy_server *s);
double proxy_rand01(struct proxy_server *s);

/* ---- connection pairs (relay.c, http.c) ---- */

/* What the HTTP framer tells the sender to do at a byte offset of a direction's stream. */
enum pins_kind {
	PI_DROP,   /* discard len bytes (a failed request, an original head that was rewritten) */
	PI_INSERT, /* send data first (a rewritten head, an injected response) */
	PI_HOLD,   /* send nothing before until (http_delay) */
	PI_CLOSE,  /* close the connection here (http_cut); reset: with RST */
};

struct pins {
	uint64_t at; /* offset in the bytes read from the source */
	uint8_t kind;
	uint8_t open;   /* PI_DROP: the framer still grows len */
	uint8_t reset;  /* PI_CLOSE: RST instead of FIN */
	uint64_t len;   /* PI_DROP: bytes; PI_INSERT: bytes of data already sent */
	uint64_t until; /* PI_HOLD: µs */
	char *data;     /* PI_INSERT: owned */
	size_t dlen;
};
#define PROXY_INS_MAX 64 /* pending instructions per direction (pipelined messages) */

struct pchunk {
	uint32_t len;
	uint64_t at; /* µs when read */
};
#define PROXY_CHUNKS 64 /* chunks queued per direction */

/* One toxic's state on one connection. */
struct tstate {
	const struct toxic *t;
	uint32_t id;
	uint8_t active; /* won the toxicity roll */
	uint64_t n;     /* limit_data: bytes passed */
	uint64_t tm;    /* µs: bandwidth: when the link is free again; slicer: last piece */
};

struct phttp_dir;
struct phttp;

/* A direction that needs its bytes: queued chunks, the piece being sent, toxic state. */
struct pchain {
	struct pconn *c;
	int d;
	struct buf b; /* queued bytes, from offset tx_off of the stream */
	struct pchunk ch[PROXY_CHUNKS];
	unsigned head, count;
	size_t front_off;        /* bytes of the front chunk already consumed */
	uint64_t rd_off, tx_off; /* bytes read from the source; consumed (sent or dropped) */
	int have_piece;
	int piece_ins; /* the piece comes from the front instruction's data */
	size_t piece_len, piece_done;
	uint64_t release; /* µs: the piece goes out then */
	unsigned pflags;
	struct tstate ts[PROXY_MAX_TOXICS];
	size_t nts;
	struct loop_timer timer;
	uint64_t reset_at, timeout_at,
	        close_at;    /* µs deadlines of reset_peer, timeout, slow_close; 0: none */
	uint64_t hold_until; /* µs: a PI_HOLD passed; pieces wait until then */
	struct pins ins[PROXY_INS_MAX];
	unsigned ins_head, ins_count;
	uint64_t scan_limit; /* bytes from this offset on are not framed yet: not sent */
};

/* One direction of a pair: bytes from side src to side dst. */
struct pdir {
	struct pchain *chain; /* NULL: the plain path */
	struct ppipe pipe;    /* fd -1 when none */
	uint32_t inpipe;      /* bytes in the pipe */
	uint8_t eof;          /* the source said EOF */
	uint8_t src_hup;      /* epoll said the source shut down writing: EOF follows its data */
	uint8_t reset;        /* with eof: the source reset (passed on once its bytes are) */
	uint8_t done;         /* the EOF was passed on (shutdown) */
	uint8_t want_read, want_write;
	uint8_t need_chain; /* a toxic, the recorder or HTTP needs the bytes */
	uint64_t bytes;     /* delivered */
};

enum pconn_state { PC_CONNECTING, PC_RELAY, PC_LINGER, PC_DEAD };

struct pconn {
	struct proxy *p;
	struct pconn *prev, *next;
	struct loop_io io[2]; /* 0: the client, 1: the upstream */
	struct pdir d[2];     /* PROXY_UP, PROXY_DOWN */
	uint32_t id;
	int cfd; /* the client's socket until the upstream answers (then io[0]'s) */
	uint8_t state;
	uint8_t http;        /* 0 unknown, 1 HTTP/1.x, 2 not HTTP (raw) */
	uint8_t eof_seen[2]; /* PC_LINGER: side closed */
	uint8_t want_http;   /* the framer watches this pair */
	uint8_t recording;   /* pcap or hexdump wants its bytes */
	struct loop_timer linger;
	struct phttp *hx; /* HTTP state shared by both directions; NULL */
	void *rec;        /* the recorder's state for this pair; NULL */
};

/* http.c: the HTTP/1.x framer. */
/* Does this proxy's traffic need the framer (an HTTP toxic, --http, a HAR file)? */
int phttp_wanted(const struct proxy *p);
/* New bytes were read into ch (from offset ch->rd_off - n): frame them, adding
 * instructions. Returns 0, or -1 when the stream is not (or no longer) HTTP. */
int phttp_scan(struct pconn *c, struct pchain *ch);
/* The source of ch said EOF: a body framed by the close ends there. */
void phttp_eof(struct pconn *c, struct pchain *ch);
/* Frees the framer state of c. */
void phttp_free(struct pconn *c);
/* Adds an instruction to ch; its data (PI_INSERT) is owned by ch from here. Returns
 * the instruction or NULL when the queue is full. */
struct pins *pchain_ins_add(struct pchain *ch, enum pins_kind kind, uint64_t at);
/* Makes c's direction d send what it can now (after an instruction was added). */
void relay_kick(struct pconn *c, int d);
/* The state of toxic kind in ch, when active; NULL otherwise (the first such). */
struct tstate *pchain_toxic(struct pchain *ch, enum toxic_kind kind);
uint64_t relay_now_us(void);

/* relay.c */
/* A new client on p's listener (fd owned). */
void relay_accept(struct proxy *p, int fd, const struct sockaddr_storage *peer);
/* p's toxics changed: every connection re-rolls toxicity for new or changed toxics
 * and switches between the plain path and the toxic chain when it must. */
void relay_toxics_changed(struct proxy *p, const struct toxic *changed);
/* Closes every connection of p. */
void relay_close_all(struct proxy *p);

/* record.c: the traffic log (HAR, pcap, hexdump). */
struct har_entry {
	uint64_t start_us, wait_us, receive_us; /* wall-clock start (µs since 1970); durations */
	const char *req_head;                   /* the request head as sent by the client */
	size_t req_head_len;
	const char *req_body;
	size_t req_body_len;
	uint64_t req_body_size; /* the whole body's size (req_body may be cut) */
	const char *resp_head;  /* NULL when no response came */
	size_t resp_head_len;
	const char *resp_body;
	size_t resp_body_len;
	uint64_t resp_body_size;
	const char *host;    /* the proxy's listen address, for URLs */
	const char *comment; /* "injected by http_fail", ...; NULL */
};
struct record *record_open(const struct proxy_opts *o, char *err, size_t errlen);
void record_close(struct record *r);
int record_wants_bytes(const struct record *r);
int record_wants_http(const struct record *r);
void record_conn_open(struct record *r, struct pconn *c, const struct sockaddr_storage *client,
                      const struct sockaddr_storage *server);
/* n bytes delivered in direction d of c. */
void record_bytes(struct record *r, struct pconn *c, int d, const char *p, size_t n);
void record_conn_close(struct record *r, struct pconn *c, int rst);
void record_har(struct record *r, const struct har_entry *e);

/* api.c */
/* Starts the control API (s->o.api) on s->api_fd. Returns 0, -2 with err when the
 * address is wrong (a usage error), or -1 with err when it cannot be bound. */
int proxy_api_start(struct proxy_server *s, char *err, size_t errlen);
void proxy_api_stop(struct proxy_server *s);

#endif
