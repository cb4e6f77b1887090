/* ping.h - TCP, UDP and ICMP round trips on loopback (or to a target), and their statistics. */
#ifndef LOOPKIT_DIAG_PING_H
#define LOOPKIT_DIAG_PING_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define PING_TIMEOUT_MS 1000  /* a probe without an answer within this is lost */
#define PING_MAX_SIZE   65507 /* largest payload (a UDP datagram's) */
#define PING_MAX_COUNT  100000

enum ping_mode { PING_TCP, PING_UDP, PING_ICMP };

/* What the probes do. Without a target (has_target 0) TCP and UDP start their own
 * echo responder on the loopback address of `family`, and ICMP asks the kernel on it. */
struct ping_cfg {
	enum ping_mode mode;
	int has_target;
	struct sockaddr_storage target; /* with port for TCP and UDP */
	socklen_t target_len;
	int family;          /* AF_INET or AF_INET6 when there is no target */
	size_t size;         /* payload bytes (TCP/UDP echo, ICMP data) */
	unsigned timeout_ms; /* 0: PING_TIMEOUT_MS */
};

/* A running session: sockets and, without a target, the responder thread. */
struct ping {
	struct ping_cfg cfg;
	struct sockaddr_storage dst; /* where probes go */
	socklen_t dst_len;
	int icmp_fd;  /* ICMP: the socket; -1 otherwise */
	int icmp_raw; /* 1: raw socket, 0: datagram ("ping") socket */
	uint16_t echo_id;
	int lfd;    /* own responder: TCP listener or UDP socket; -1 */
	int stopfd; /* eventfd that stops the responder; -1 */
	int have_thread;
	pthread_t thread;
	unsigned char *buf; /* size bytes out, and room for the answer */
	size_t buflen;
	const char *method; /* "raw socket", "datagram socket", "own responder", ... */
};

/* The outcome of ping_open when ICMP is not allowed: the caller should SKIP. */
#define PING_ENOPERM (-2)

/* Opens a session. Returns 0; -1 with err filled on failure; PING_ENOPERM for ICMP
 * when neither a raw socket nor a datagram ICMP socket is allowed (err names
 * net.ipv4.ping_group_range). On failure nothing stays open. */
int ping_open(struct ping *p, const struct ping_cfg *cfg, char *err, size_t errlen);

/* One probe with sequence number seq. Returns 1 with *rtt_us set when answered, 0 when
 * lost (why says why: "timeout", "connection refused", ...), -1 on a local failure
 * (why filled). Never waits longer than the timeout. */
int ping_probe(struct ping *p, uint16_t seq, double *rtt_us, char *why, size_t whylen);

/* Stops the responder, closes everything; safe on a closed session. */
void ping_close(struct ping *p);

/* Statistics over the answered probes. */
struct ping_summary {
	size_t sent, received;
	double loss_pct;
	double min, avg, max, mdev; /* same unit as the input; mdev as ping(8) */
	double p50, p90, p99;       /* nearest-rank percentiles */
};

/* Computes the summary of rtt[0..n) (n answered of sent). Sorts rtt in place. With
 * n 0 every figure is 0. */
void ping_summarize(double *rtt, size_t n, size_t sent, struct ping_summary *s);

/* The nearest-rank q-th percentile (0 < q <= 100) of sorted[0..n); 0 when n is 0. */
double ping_percentile(const double *sorted, size_t n, double q);

/* Parses "HOST:PORT", "[V6]:PORT", "PORT" (127.0.0.1:PORT) (TCP/UDP) or "HOST" (ICMP,
 * need_port 0) into *ss. HOST is numeric or a name (resolved, first address). Returns
 * 0 or -1. */
int ping_parse_target(const char *s, int need_port, struct sockaddr_storage *ss, socklen_t *len);

/* ---- a run: count probes, interval apart, and its two renderings (pingrun.c) ---- */

struct ping_probe_rec {
	int ok;       /* answered */
	double ms;    /* round trip when ok */
	char why[40]; /* why not, when !ok */
};

/* What `loopkit ping` reports: printed like ping(8), or as one JSON document. */
struct ping_run {
	char dst[80];                  /* where the probes went ("127.0.0.1:41234", "::1") */
	const char *mode;              /* "tcp", "udp" or "icmp" */
	const char *method;            /* the session's method */
	size_t size;                   /* bytes each probe carries */
	struct ping_probe_rec *probes; /* [0, sent), owned */
	size_t count;                  /* probes asked for */
	double total_ms;               /* first probe to the end */
	struct ping_summary s;
	char error[80]; /* a local failure that ended the run early, or "" */
};

/* Prepares a run of count probes on the open session p. Returns 0, or -1 (out of
 * memory). */
int ping_run_begin(struct ping_run *r, const struct ping *p, size_t count);
/* Sends the probes, interval_s apart (sequence numbers 1, 2, ...), calling
 * each(arg, r, k) after probe k (each may be NULL); ends early when *stop becomes
 * nonzero (a Ctrl-C) or on a local failure (r->error). Fills the summary. */
void ping_run_probes(struct ping *p, struct ping_run *r, double interval_s, const volatile sig_atomic_t *stop,
                     void (*each)(void *arg, const struct ping_run *r, size_t k), void *arg);
void ping_run_free(struct ping_run *r);

/* "PING dst (mode, method): N data bytes". */
void ping_print_head(FILE *f, const struct ping_run *r);
/* "N bytes from dst: seq=K time=T ms", or "no answer from dst: seq=K why". */
void ping_print_probe(FILE *f, const struct ping_run *r, size_t k);
/* The statistics block of ping(8), with p50/p90/p99. */
void ping_print_summary(FILE *f, const struct ping_run *r);
/* {"mode","target","method","size","probes":[...],"summary":{...}}. Returns 0, or -1
 * when b is full. */
struct buf;
int ping_json(struct buf *b, const struct ping_run *r);

#endif
