/* sniff.c - gives each new connection to a protocol: by its first bytes, or, when it is
 * silent, by who is calling.
 *
 * HTTP clients speak first; FTP clients wait for the server's 220. A connection with
 * bytes is classified by the probe table (probe.c). A silent one is not greeted on a
 * clock alone: on loopback its socket belongs to a process on this machine, which the
 * lookup thread (core/procpeer.c) finds off the loop:
 *   - known FTP clients, and processes that logged in over FTP here and sent no HTTP,
 *     are greeted as soon as the answer comes (a few ms after accept);
 *   - browsers, which open connections ahead of need and leave them silent, are never
 *     greeted: they go to HTTP;
 *   - a client with a thread reading this very socket (recv, poll, select) waits for
 *     the server to speak: greeted at once. One not reading yet is looked at again
 *     (its threads only) at 2, 8, 32, ... ms: a loaded machine may hold its thread
 *     between connect() and recv();
 *   - anyone else (or a peer that cannot be looked up) is greeted when the window
 *     (--sniff-ms) has passed in silence, long enough for a starved HTTP client; if a
 *     thread of its process is on the CPU then, it gets up to SERVE_WINDOW_MORE_MAX
 *     more windows (it may be about to send).
 * A connection that sends bytes promptly costs no lookup at all. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "core/net.h"
#include "serve/internal.h"
#include "serve/probe.h"

static void sniff_free_cb(struct loop *l, void *data)
{
	free(data);
}

/* Takes sc off the worker's list; it is freed after the batch, or when the lookup it
 * waits for answers. */
static void sniff_detach(struct sniff_conn *sc)
{
	struct serve_worker *w = sc->w;
	loop_timer_stop(w->loop, &sc->timer);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		w->sniffing = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	w->nsniff--;
	sc->detached = 1;
	atomic_store_explicit(&sc->cancel, 1, memory_order_relaxed);
	if (!sc->inflight) {
		if (loop_defer(w->loop, sniff_free_cb, sc) < 0)
			log_msg("out of memory: leaking one connection record");
	}
	serve_worker_check_idle(w);
}

static void sniff_close(struct sniff_conn *sc)
{
	loop_io_close(sc->w->loop, &sc->io);
	atomic_fetch_sub(&sc->w->srv->nconns, 1);
	sniff_detach(sc);
}

void sniff_hand(struct serve_worker *w, int i, int fd, const struct proto_peer *peer, const char *first,
                size_t nfirst, struct loop_io *watched)
{
	w->srv->proto[i]->start(w->ctx[i], fd, peer, first, nfirst, watched);
}

/* Gives a sniffed connection to protocol i, with the bytes read from it; the protocol
 * takes the sniffer's watch over. */
static void sniff_give(struct sniff_conn *sc, int i, const char *first, size_t nfirst)
{
	struct serve_worker *w = sc->w;
	int fd = sc->io.fd;
	struct proto_peer peer = sc->peer;
	if (i == w->srv->http_idx && sc->inflight && !sc->answered)
		sc->became_http = 1; /* the answer, when it comes, tells the lookup thread */
	sniff_detach(sc);            /* sc stays in memory until the batch ends: its io can be taken over */
	sniff_hand(w, i, fd, &peer, first, nfirst, &sc->io);
}

/* Reads the first bytes into b (PROTO_FIRST_MAX) and says what they are: a protocol
 * index, with *n bytes read, or -1 to close (or, with no bytes yet, to wait for more:
 * then *wait is set). The bytes are read, not peeked: the protocol is handed them, and
 * a request costs one read, as it would without sniffing. */
static int classify_bytes(struct serve_server *s, int fd, const char *who, int *wait, char *buf, size_t *got)
{
	const unsigned char *b = (const unsigned char *)buf;
	ssize_t n = recv(fd, buf, PROTO_FIRST_MAX, MSG_DONTWAIT);
	*wait = 0;
	*got = 0;
	if (n < 0) {
		*wait = errno == EAGAIN || errno == EINTR;
		return -1;
	}
	if (n == 0)
		return -1; /* closed before a word */
	*got = (size_t)n;
	int r = sniff_classify(b, (size_t)n);
	if (r == SNIFF_NEED_MORE) {
		*wait = 1;
		return -1;
	}
	if (r >= 0 && sniff_probes[r].proto == SNIFF_HTTP && s->http_idx >= 0)
		return s->http_idx;
	if (r >= 0 && sniff_probes[r].proto == SNIFF_TLS)
		log_rate_msg(&s->log_tls,
		             "%s sent a TLS ClientHello: TLS is not offered (yet); use http:// or ftp://",
		             who);
	else
		log_rate_msg(&s->log_junk,
		             "%s sent bytes that are neither HTTP nor FTP (first byte 0x%02x); closed", who,
		             b[0]);
	return -1;
}

static void greet(struct sniff_conn *sc)
{
	sniff_give(sc, sc->w->srv->ftp_idx, NULL, 0);
}

/* Has sc spoken (or closed)? Then it is handed over (or closed): returns 1. Returns 0
 * while it is silent. */
static int sniff_spoke(struct sniff_conn *sc)
{
	char buf[PROTO_FIRST_MAX];
	size_t got;
	int wait;
	int i = classify_bytes(sc->w->srv, sc->io.fd, sc->peer.addr_str, &wait, buf, &got);
	if (i >= 0)
		sniff_give(sc, i, buf, got);
	else if (!wait)
		sniff_close(sc);
	return i >= 0 || !wait;
}

static void sniff_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct sniff_conn *sc = io->data;
	if (!sniff_spoke(sc) && (events & LOOP_ERROR))
		sniff_close(sc);
}

/* Logs, once per client process, which way its silent connections go and why. */
static void log_class(const struct serve_server *s, const struct procpeer_result *r)
{
	char ms[32];
	if (!r->first || r->pid <= 0 || s->cfg.log == ACCESSLOG_NONE) /* -q: the access log's kin */
		return;
	switch (r->cls) {
	case PROCPEER_FTP_CLIENT:
	case PROCPEER_FTP_PEER:
	case PROCPEER_WAITING:
		log_msg("peer %s (pid %d): FTP, since %s: greeted at once", r->name, r->pid, r->rule);
		break;
	case PROCPEER_BROWSER:
		log_msg("peer %s (pid %d): a browser (%s): its silent connections stay HTTP", r->name, r->pid,
		        r->rule);
		break;
	default:
		log_msg("peer %s (pid %d): %s: its silent connections are greeted as FTP after %s "
		        "(--sniff-ms; --proto http turns FTP off)",
		        r->name, r->pid, r->rule, lk_ms_text(s->cfg.sniff_ms, ms, sizeof(ms)));
		break;
	}
}

/* When sc's window ends: --sniff-ms after accept, and one more for each added while
 * its process was busy. */
static uint64_t window_end(const struct sniff_conn *sc)
{
	return sc->accepted + (uint64_t)sc->w->srv->cfg.sniff_ms * (1 + sc->windows);
}

/* The latest a silent client is greeted, however busy its process and however slow the
 * lookups: --sniff-ms, and SERVE_WINDOW_MORE_MAX more (a loaded lookup thread answered
 * the last rechecks seconds late, and 206 of 500 clients waited 9 s). */
static uint64_t final_end(const struct sniff_conn *sc)
{
	return sc->accepted + (uint64_t)sc->w->srv->cfg.sniff_ms * (1 + SERVE_WINDOW_MORE_MAX);
}

/* Arms sc's timer for its next event: the next recheck or the end of the window. */
static void sniff_arm(struct loop *l, struct sniff_conn *sc)
{
	uint64_t now = loop_now(l), due = window_end(sc);
	if (sc->next_check && sc->next_check < due)
		due = sc->next_check;
	loop_timer_start(l, &sc->timer, due > now ? due - now : 0);
}

/* A client that is not yet reading its socket may be on its way to it (a loaded
 * machine delays its thread between connect() and recv()): look again, at 2, 8, 32,
 * ... ms, within the window. Only its threads are read, not /proc. */
static void sniff_plan_recheck(struct loop *l, struct sniff_conn *sc)
{
	uint64_t now = loop_now(l);
	sc->next_check = 0;
	if (sc->holder_pid <= 0 || sc->holder_fd < 0 || sc->window_over)
		return;
	sc->check_gap = sc->check_gap ? sc->check_gap * 4 : SERVE_RECHECK_MS;
	if (now + sc->check_gap < window_end(sc))
		sc->next_check = now + sc->check_gap;
	sniff_arm(l, sc);
}

static void sniff_answer_cb(struct loop *l, void *arg, const struct procpeer_result *r)
{
	struct sniff_conn *sc = arg;
	struct serve_server *s = sc->w->srv;
	int first = !sc->answered;
	sc->inflight = 0;
	if (first) {
		sc->answered = 1;
		sc->cls = r->cls;
		if (r->pid > 0) {
			sc->peer.pid = r->pid;
			snprintf(sc->peer.name, sizeof(sc->peer.name), "%s", r->name);
			sc->holder_pid = r->pid;
			sc->holder_fd = r->fd;
		}
		if (r->uid != (uint32_t)-1)
			sc->peer.uid = r->uid;
		log_class(s, r);
	} else if (r->cls == PROCPEER_WAITING) {
		sc->cls = r->cls;
	}
	if (first) {
		/* A looked-up client that spoke meanwhile was a slow HTTP client (a loaded
		 * machine): wait longer before the next lookups; a truly silent one brings the
		 * prompt back down. FTP clients are greeted a few ms later under such a load,
		 * HTTP clients cost no /proc work. */
		struct serve_worker *w = sc->w;
		if (sc->detached)
			w->prompt_us = w->prompt_us * 2 > SERVE_PROMPT_MAX_US ? SERVE_PROMPT_MAX_US
			                                                      : w->prompt_us * 2;
		else
			w->prompt_us =
			        w->prompt_us / 2 < SERVE_PROMPT_US ? SERVE_PROMPT_US : w->prompt_us / 2;
	}
	if (sc->detached) {
		/* It spoke (HTTP) or closed meanwhile; what it did teaches the lookup thread. */
		if (first && sc->became_http && r->pid > 0 && s->peers)
			procpeer_note(s->peers, r->pid, 0);
		free(sc);
		return;
	}
	/* The client may have spoken while it was looked up (and then wait for the
	 * answer, reading: that is why it looked like a waiting FTP client): bytes win. */
	if (sniff_spoke(sc))
		return;
	if (sc->at_end) {
		sc->at_end = 0;
		if (r->cls != PROCPEER_WAITING && r->busy && loop_now(l) < final_end(sc)) {
			sc->windows++;
			sc->check_gap = 0; /* looked at again at 2, 8, 32, ... ms into the new window */
			sniff_plan_recheck(l, sc);
			sniff_arm(l, sc);
			return;
		}
		greet(sc);
		return;
	}
	switch (r->cls) {
	case PROCPEER_FTP_CLIENT:
	case PROCPEER_FTP_PEER:
	case PROCPEER_WAITING:
		sc->peer.greeted_for = r->rule;
		greet(sc);
		return;
	case PROCPEER_BROWSER: sniff_give(sc, s->http_idx, NULL, 0); return;
	default:
		if (sc->window_over)
			greet(sc);
		else /* the window timer greets it, unless it speaks or reads first */
			sniff_plan_recheck(l, sc);
		return;
	}
}

static void sniff_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct sniff_conn *sc = t->data;
	struct serve_server *s = sc->w->srv;
	uint64_t now = loop_now(l), end = window_end(sc);
	/* Bytes may have come after this turn's epoll_wait: then it is not silence. */
	if (sniff_spoke(sc))
		return;
	if (!sc->asked && now < end) {
		/* Silent past the prompt: ask who it is (one lookup per silent connection). */
		socklen_t ll = sizeof(sc->local);
		if (s->peers && net_is_loopback((struct sockaddr *)&sc->peer.addr) &&
		    getsockname(sc->io.fd, (struct sockaddr *)&sc->local, &ll) == 0 &&
		    procpeer_ask(s->peers, l, &sc->local, &sc->peer.addr, sniff_answer_cb, sc, &sc->cancel) ==
		            0)
			sc->asked = sc->inflight = 1;
		loop_timer_start(l, t, end - now);
		return;
	}
	if (now < end) {
		if (sc->next_check && now >= sc->next_check && !sc->inflight) {
			sc->next_check = 0;
			if (procpeer_recheck(s->peers, l, sc->holder_pid, sc->holder_fd, sniff_answer_cb,
			                     sc) == 0)
				sc->inflight = 1;
		}
		sniff_arm(l, sc);
		return;
	}
	if (sc->asked && !sc->answered) {
		/* The window is over but the lookup is not: a browser must not be greeted
		 * just because its lookup is slow; wait for the answer, within bounds. */
		if (!sc->window_over) {
			sc->window_over = 1;
			loop_timer_start(l, t, SERVE_ANSWER_MAX_MS);
			return;
		}
	}
	if (sc->answered && sc->cls == PROCPEER_BROWSER) {
		sniff_give(sc, s->http_idx, NULL, 0);
		return;
	}
	/* A client whose process is busy at the end of the window may be a thread that has
	 * not had the CPU since connect() (a loaded machine, threads queued for a lock):
	 * ask whether it is busy, and give it another window if so, up to
	 * SERVE_WINDOW_MORE_MAX. A truly silent client of an idle process is greeted now. */
	uint64_t last = final_end(sc);
	if (!sc->at_end && sc->answered && sc->cls == PROCPEER_OTHER && sc->windows < SERVE_WINDOW_MORE_MAX &&
	    now < last &&
	    (sc->inflight || /* a recheck's answer says it too */
	     procpeer_recheck(s->peers, l, sc->holder_pid, sc->holder_fd, sniff_answer_cb, sc) == 0)) {
		sc->inflight = sc->at_end = 1;
		/* Greeted if the answer does not come in time. */
		loop_timer_start(l, t, last - now < SERVE_ANSWER_MAX_MS ? last - now : SERVE_ANSWER_MAX_MS);
		return;
	}
	greet(sc);
}

void sniff_accept(struct serve_worker *w, int fd, const struct sockaddr_storage *peer)
{
	struct serve_server *s = w->srv;
	struct proto_peer pp;
	memset(&pp, 0, sizeof(pp));
	pp.addr = *peer;
	pp.pid = -1;
	pp.uid = -1;
	net_addr_str((const struct sockaddr *)peer, pp.addr_str, sizeof(pp.addr_str));
	if (s->http_idx < 0 || s->ftp_idx < 0) {
		/* One protocol has the port: no sniffing. */
		sniff_hand(w, s->http_idx >= 0 ? s->http_idx : s->ftp_idx, fd, &pp, NULL, 0, NULL);
		return;
	}
	/* A client that has written its request by the time we accept (curl, a browser,
	 * on a quiet machine) goes straight to HTTP: no record, no lookup, no wait. A load
	 * generator that connects ahead of writing (ab, wrk) has not: a read at accept
	 * would find nothing, one wasted syscall per connection. Recent reads decide, and
	 * when they say no, every SERVE_EARLY_PROBE-th connection reads anyway to notice
	 * a change. */
	char buf[PROTO_FIRST_MAX];
	size_t got = 0;
	int wait = 1, i = -1;
	if (w->early >= 0 || ++w->early_skips % SERVE_EARLY_PROBE == 0) {
		i = classify_bytes(s, fd, pp.addr_str, &wait, buf, &got);
		if (got && w->early < SERVE_EARLY_MAX)
			w->early++;
		else if (!got && wait && w->early > -SERVE_EARLY_MAX)
			w->early--;
	}
	if (i >= 0) {
		sniff_hand(w, i, fd, &pp, buf, got, NULL);
		return;
	}
	if (!wait) {
		close(fd);
		atomic_fetch_sub(&s->nconns, 1);
		return;
	}
	struct sniff_conn *sc = calloc(1, sizeof(*sc));
	if (!sc || loop_io_start(w->loop, &sc->io, fd, LOOP_READ, sniff_io_cb, sc) < 0) {
		free(sc);
		close(fd);
		atomic_fetch_sub(&s->nconns, 1);
		return;
	}
	sc->w = w;
	sc->peer = pp;
	sc->accepted = loop_now(w->loop);
	loop_timer_init(&sc->timer, sniff_timer_cb, sc);
	loop_timer_start_us(w->loop, &sc->timer, w->prompt_us);
	sc->next = w->sniffing;
	if (w->sniffing)
		w->sniffing->prev = sc;
	w->sniffing = sc;
	w->nsniff++;
}

void sniff_close_all(struct serve_worker *w)
{
	while (w->sniffing)
		sniff_close(w->sniffing);
}

void sniff_note(struct serve_server *s, const struct proto_peer *peer, enum proto_note note)
{
	if (note == PROTO_NOTE_FTP_LOGIN) {
		if (s->peers && peer->pid > 0)
			procpeer_note(s->peers, peer->pid, 1);
		return;
	}
	/* HTTP from a peer: undo an FTP mark. From an FTP session, it means an HTTP client
	 * got the greeting: say why, and what helps. */
	if (s->peers && peer->pid > 0)
		procpeer_note(s->peers, peer->pid, 0);
	if (note == PROTO_NOTE_HTTP_AFTER_GREETING) {
		if (s->http_idx < 0) {
			log_rate_msg(&s->log_late_http,
			             "%s sent an HTTP request to an FTP-only server (--proto ftp)",
			             peer->addr_str);
		} else if (peer->greeted_for) {
			/* greeted for who it is: a longer window changes nothing */
			log_rate_msg(
			        &s->log_late_http,
			        "%s%s%s sent an HTTP request after the FTP greeting, which it got at once "
			        "since %s; start with --proto http to serve it",
			        peer->name[0] ? peer->name : peer->addr_str, peer->name[0] ? " at " : "",
			        peer->name[0] ? peer->addr_str : "", peer->greeted_for);
		} else {
			char ms[32];
			log_rate_msg(
			        &s->log_late_http,
			        "%s%s%s sent an HTTP request after the FTP greeting: it stayed silent "
			        "longer than %s (--sniff-ms); raise --sniff-ms or start with --proto http",
			        peer->name[0] ? peer->name : peer->addr_str, peer->name[0] ? " at " : "",
			        peer->name[0] ? peer->addr_str : "",
			        lk_ms_text(s->cfg.sniff_ms, ms, sizeof(ms)));
		}
	}
}
