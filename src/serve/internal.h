/* internal.h - the serve layer's own structures: server, workers, sniffed connections. */
#ifndef LOOPKIT_SERVE_INTERNAL_H
#define LOOPKIT_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/acceptor.h"
#include "core/fsroot.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/procpeer.h"
#include "core/proto.h"
#include "serve/serve.h"

#define SERVE_MAX_PROTOS      2    /* protocols on one port */
#define SERVE_ACCEPT_BATCH    16   /* connections one wakeup accepts before other threads get theirs */
#define SERVE_PROMPT_US       500  /* a client silent this long (µs) gets its process looked up */
#define SERVE_PROMPT_MAX_US   8000 /* ...at most this long, while lookups keep finding speakers */
#define SERVE_ANSWER_MAX_MS   3000 /* after the window, wait this much more for a pending lookup */
#define SERVE_EARLY_MAX       8    /* bound of the score that decides whether accept reads at once */
#define SERVE_EARLY_PROBE     16   /* ...and when it says no, every this many connections read anyway */
#define SERVE_DEAL_SHARE_PART 4    /* a worker over the others' average by 1/this of a share deals */
#define SERVE_TRIM_PEAK       64   /* a burst this big is followed by a heap trim once it is over */
#define SERVE_TRIM_EVERY_MS   1000 /* how often the end of such a burst is looked for */
#define SERVE_RECHECK_MS      2    /* a client not yet reading is looked at again after this, x4 each time */
#define SERVE_WINDOW_MORE_MAX 4    /* windows added for a client whose process is busy when one ends */

struct serve_worker;

/* A connection not yet given to a protocol: nothing has arrived on it. */
struct sniff_conn {
	struct serve_worker *w;
	struct sniff_conn *prev, *next;
	struct loop_io io;
	struct loop_timer timer;
	struct proto_peer peer;
	struct sockaddr_storage local;
	uint64_t accepted; /* loop_now() at accept */
	int asked;         /* a process lookup was asked */
	int answered;      /* ...and its answer came */
	int inflight;      /* a lookup or a recheck is on the lookup thread: its answer frees sc */
	atomic_int cancel; /* set when sc is detached: the lookup thread skips the work */
	int holder_pid;    /* from the answer: the client's process and descriptor, to recheck */
	int holder_fd;
	uint64_t next_check; /* loop_now() of the next recheck; 0: none */
	unsigned check_gap;  /* ms from this recheck to the next (grows x4) */
	enum procpeer_class cls;
	int detached;     /* handed over or closed: only the pending answer keeps it */
	int became_http;  /* it was handed to HTTP while the lookup was in flight */
	int window_over;  /* the window passed while the lookup was in flight */
	unsigned windows; /* windows added: its process was busy when the last one ended */
	int at_end;       /* the recheck in flight was asked at the end of a window */
};

struct serve_worker {
	struct serve_server *srv;
	int id;
	struct loop *loop;
	struct acceptor acc; /* the shared listener, as this thread's loop sees it */
	struct loop_timer grace_timer;
	struct loop_timer trim_timer; /* after a burst: give the freed heap back (listen.c) */
	int stopping;
	int grace_over; /* its grace time ran out: its connections are closed */
	pthread_t thread;
	void *ctx[SERVE_MAX_PROTOS]; /* each protocol's state for this thread */
	struct sniff_conn *sniffing; /* connections waiting for their first bytes */
	unsigned nsniff;
	int early; /* recent reads at accept: +1 found bytes, -1 found none (sniff.c) */
	unsigned early_skips;
	unsigned prompt_us; /* silence before a lookup: SERVE_PROMPT_US, doubled (up to
	                       SERVE_PROMPT_MAX_US) each time a looked-up client spoke
	                       meanwhile, halved each time one was truly silent */
};

struct serve_server {
	struct serve_config cfg;
	struct fsroot root;
	struct proto_site site;
	atomic_uint nconns;
	atomic_size_t http_mem; /* site.mem: HTTP's bodies and answers in memory */
	atomic_size_t copy_mem; /* site.copy_mem: buffers of files copied to loopback clients */
	atomic_uint conn_peak;  /* most connections at once since the last heap trim */
	struct log_sink log;
	int listen_fd;
	int twin_fd; /* the loopback twin's port, held (net_listen_loopback) */
	uint16_t port;
	char host[64];
	int pasv_locks[SERVE_PASV_MAX_PORTS]; /* abstract sockets that own the passive range */
	int npasv_locks;
	const struct proto_ops *proto[SERVE_MAX_PROTOS];
	const void *proto_cfg[SERVE_MAX_PROTOS];
	int nproto;
	int http_idx, ftp_idx;  /* index in proto[], -1 when not offered */
	struct procpeer *peers; /* process lookups for silent clients; NULL without FTP */
	int nworkers;
	struct serve_worker **workers;
	atomic_int nrunning;      /* workers whose thread runs: workers[0 .. nrunning) */
	atomic_uint next_worker;  /* round-robin dealing of connections over a worker's share */
	atomic_int emfile_logged; /* "out of file descriptors" said, once for every loop */
	struct log_rate log_tls, log_junk, log_late_http; /* messages any client can cause */
	atomic_int stopping;
	atomic_int nlive;      /* threads whose loop still runs; workers[0], which reads the
	                          signals, ends last so that a second Ctrl-C is always heard */
	int signals;           /* SIGINT/SIGTERM received */
	atomic_uint grace_cut; /* connections still in flight when the grace time ran out */
};

/* listen.c */
/* Takes the port alone (no SO_REUSEPORT: another process cannot share it). Returns 0,
 * or -1 with err and errno. */
int serve_listen_open(struct serve_server *s, struct sockaddr_storage *failed, char *err, size_t errlen);
/* Starts accepting on w's loop (EPOLLEXCLUSIVE: one thread wakes per connection). */
int serve_listen_start(struct serve_worker *w);
void serve_listen_stop(struct serve_worker *w);
/* The heap trim after a burst of connections (its timer is armed by the listener). */
void serve_trim_cb(struct loop *l, struct loop_timer *t);
/* Takes the FTP passive range alone (one lock per port). Returns 0 or -1 with err. */
int serve_pasv_lock(struct serve_server *s, char *err, size_t errlen);

/* sniff.c */
/* A new connection (counted): decides its protocol, now or when it speaks, or when
 * its silence says FTP. */
void sniff_accept(struct serve_worker *w, int fd, const struct sockaddr_storage *peer);
/* Gives a connection to protocol i; fd's ownership passes (and watched's, when fd is
 * watched already: see proto_ops.start). */
void sniff_hand(struct serve_worker *w, int i, int fd, const struct proto_peer *peer, const char *first,
                size_t nfirst, struct loop_io *watched);
/* Closes every connection still being sniffed (stopping). */
void sniff_close_all(struct serve_worker *w);
/* What a protocol told about a peer (the note hook). */
void sniff_note(struct serve_server *s, const struct proto_peer *peer, enum proto_note note);

/* server.c */
/* The worker's protocols and sniffing are all idle while stopping: end its loop. */
void serve_worker_check_idle(struct serve_worker *w);

#endif
