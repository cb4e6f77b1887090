/* relay.c - proxied connection pairs: a plain read and send when nothing needs the bytes, a toxic chain
 * when something does. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/net.h"
#include "core/sockdiag.h"
#include "proxy/internal.h"

#define TURN_BYTES (1024 * 1024) /* moved per direction per wakeup, then others go */

#define BW_SLACK_US 20000 /* bandwidth: timer lateness forgiven, and the most an idle link saves */
#define PF_DROP     1u    /* the piece is discarded, not sent */
#define PF_CORRUPT  2u    /* flip bits before sending */
#define PF_LIMIT    4u    /* limit_data reached once it is sent: close */

static void io_cb(struct loop *l, struct loop_io *io, unsigned events);
static int pump(struct pconn *c, int d);
static int dst_failed(struct pconn *c, int d, int err);
static void update_masks(struct pconn *c);

uint64_t relay_now_us(void)
{
	return loop_clock_us();
}

static struct proxy_server *srv(const struct pconn *c)
{
	return c->p->srv;
}

/* The direction a toxic acts on: HTTP request toxics on requests, cuts on responses. */
static int toxic_acts_on(const struct toxic *t)
{
	switch (t->type->kind) {
	case TK_HTTP_FAIL:
	case TK_HTTP_DELAY: return PROXY_UP;
	case TK_HTTP_CUT: return PROXY_DOWN;
	default: return (int)t->dir;
	}
}

/* Toxics that count what they did (requests failed, stalls, bits flipped, responses
 * cut) rather than the connections they were active on. */
static int toxic_counts_events(const struct toxic *t)
{
	enum toxic_kind k = t->type->kind;
	return k == TK_HTTP_FAIL || k == TK_HTTP_CUT || k == TK_LOSS || k == TK_CORRUPT;
}

struct tstate *pchain_toxic(struct pchain *ch, enum toxic_kind kind)
{
	for (size_t i = 0; ch && i < ch->nts; i++)
		if (ch->ts[i].active && ch->ts[i].t->type->kind == kind)
			return &ch->ts[i];
	return NULL;
}

/* ---- closing ---- */

static void free_chain(struct pconn *c, struct pchain *ch)
{
	if (!ch)
		return;
	loop_timer_stop(srv(c)->loop, &ch->timer);
	for (unsigned i = 0; i < ch->ins_count; i++)
		free(ch->ins[(ch->ins_head + i) % PROXY_INS_MAX].data);
	buf_free(&ch->b);
	free(ch);
}

static void free_pconn(struct loop *l, void *data)
{
	free(data);
}

/* Ends the pair now: rst sends a reset to both peers (SO_LINGER 0). */
static void pconn_close(struct pconn *c, int rst)
{
	if (c->state == PC_DEAD)
		return;
	struct proxy_server *s = srv(c);
	struct proxy *p = c->p;
	if (c->rec)
		record_conn_close(s->rec, c, rst);
	if (c->cfd >= 0) {
		if (rst) /* the client's socket before the upstream answered */
			net_reset_on_close(c->cfd);
		close(c->cfd);
	}
	for (int i = 0; i < 2; i++) {
		if (c->io[i].fd < 0)
			continue;
		if (rst)
			net_reset_on_close(c->io[i].fd);
		loop_io_close(s->loop, &c->io[i]);
	}
	for (int d = 0; d < 2; d++) {
		struct pdir *pd = &c->d[d];
		if (pd->pipe.fd[0] >= 0) {
			if (pd->inpipe) {
				close(pd->pipe.fd[0]);
				close(pd->pipe.fd[1]);
			} else {
				proxy_pipe_put(s, &pd->pipe);
			}
			pd->pipe.fd[0] = pd->pipe.fd[1] = -1;
		}
		free_chain(c, pd->chain);
		pd->chain = NULL;
	}
	phttp_free(c);
	loop_timer_stop(s->loop, &c->linger);
	if (c->prev)
		c->prev->next = c->next;
	else
		p->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	p->nconns--;
	s->nconns--;
	c->state = PC_DEAD;
	if (loop_defer(s->loop, free_pconn, c) < 0)
		free(c); /* no callback of this batch can reach it: its ios are closed */
}

/* The upstream refused (or could not be reached, err): the client gets a reset, as the
 * proxy's connect got one, whether or not it has sent anything yet (a plain close
 * would give a FIN, or the kernel's RST when the client's bytes lie unread: what the
 * client saw would depend on timing). */
static void record_pair(struct pconn *c);

static void upstream_refused(struct pconn *c, int err)
{
	if (!srv(c)->o.quiet)
		log_msg("proxy %s: upstream %s: %s; the client's connection is reset", c->p->name,
		        c->p->upstream, strerror(err));
	c->p->refused++;
	record_pair(c); /* the client's connection was made, then reset: the log shows both */
	pconn_close(c, 1);
}

static void linger_cb(struct loop *l, struct loop_timer *t)
{
	struct pconn *c = t->data;
	if (c->state == PC_RELAY) {
		/* Half-closed and quiet for PROXY_HALF_CLOSE_MS: a side that only shut its
		 * sending side may still wait for an answer, however late, and the pair stays;
		 * one that closed its socket can get nothing more, and the pair ends. */
		for (int d = 0; d < 2; d++) {
			if (c->d[d].done && sockdiag_peer_held(c->io[d == PROXY_UP ? 0 : 1].fd)) {
				loop_timer_start(l, t, PROXY_HALF_CLOSE_MS);
				return;
			}
		}
	}
	if (c->state == PC_CONNECTING) {
		/* unreachable as a refused upstream is: a reset, never what reads as an empty answer */
		if (!c->p->srv->o.quiet)
			log_msg("proxy %s: upstream %s did not answer within %d ms; the client's connection "
			        "is reset",
			        c->p->name, c->p->upstream, PROXY_CONNECT_MS);
		c->p->refused++;
		record_pair(c);
		pconn_close(c, 1);
		return;
	}
	pconn_close(c, 0);
}

/* A toxic ends the pair gracefully: FIN to both peers after what was sent, then what
 * they still send is read and dropped for a while, so nobody sees a reset instead. */
static void pconn_linger(struct pconn *c)
{
	if (c->state != PC_RELAY)
		return;
	struct proxy_server *s = srv(c);
	c->state = PC_LINGER;
	for (int i = 0; i < 2; i++) {
		shutdown(c->io[i].fd, SHUT_WR);
		loop_io_set(s->loop, &c->io[i], LOOP_READ);
	}
	for (int d = 0; d < 2; d++)
		if (c->d[d].chain)
			loop_timer_stop(s->loop, &c->d[d].chain->timer);
	loop_timer_start(s->loop, &c->linger, PROXY_LINGER_MS);
}

static void linger_read(struct pconn *c, int side)
{
	char tmp[16384];
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(c->io[side].fd, tmp, sizeof tmp);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->eof_seen[side] = 1;
		loop_io_set(srv(c)->loop, &c->io[side], 0);
		if (c->eof_seen[0] && c->eof_seen[1])
			pconn_close(c, 0);
		return;
	}
}

/* The source of direction d said EOF and everything was delivered: pass it on. */
static int dir_finish(struct pconn *c, int d)
{
	struct pdir *pd = &c->d[d];
	if (pd->done)
		return 0;
	struct pchain *ch = pd->chain;
	struct tstate *sc = pchain_toxic(ch, TK_SLOW_CLOSE);
	if (sc) {
		uint64_t now = relay_now_us();
		if (!ch->close_at)
			ch->close_at = now + (uint64_t)sc->t->num[0] * 1000;
		if (now < ch->close_at)
			return 0; /* the chain's timer comes back */
	}
	pd->done = 1;
	pd->want_read = pd->want_write = 0;
	int dst = d == PROXY_UP ? 1 : 0;
	if (c->d[!d].done) {
		pconn_close(c, 0); /* both ways ended: the close sends the FIN */
		return -1;
	}
	/* Half-closed: the other way may still carry an answer, however late, as on a
	 * direct connection, while the side that sent the FIN holds its socket (linger_cb
	 * asks after PROXY_HALF_CLOSE_MS without traffic; a plain 10 s limit once cut a
	 * slow server's answer to a client that had half-closed into an empty one). */
	shutdown(c->io[dst].fd, SHUT_WR);
	loop_timer_start(srv(c)->loop, &c->linger, PROXY_HALF_CLOSE_MS);
	return 0;
}

/* ---- toxic state ---- */

static struct pchain *chain_new(struct pconn *c, int d);
static void chain_took(struct pchain *ch, size_t n);
static void chain_arm(struct pconn *c, struct pchain *ch, uint64_t when_us);

/* Rebuilds the toxic states of direction d from the proxy's chain: states of toxics
 * that stay are kept (limit_data keeps its count), new or changed ones roll toxicity. */
static void sync_toxics(struct pconn *c, int d, const struct toxic *changed)
{
	struct proxy *p = c->p;
	struct pdir *pd = &c->d[d];
	struct tstate old[PROXY_MAX_TOXICS], nw[PROXY_MAX_TOXICS];
	size_t nold = 0, n = 0;
	if (pd->chain) {
		nold = pd->chain->nts;
		memcpy(old, pd->chain->ts, nold * sizeof(old[0]));
	}
	int need = 0;
	for (size_t i = 0; i < p->ntoxics; i++) {
		struct toxic *t = p->toxics[i];
		if (toxic_acts_on(t) != d)
			continue;
		struct tstate *st = &nw[n++];
		memset(st, 0, sizeof(*st));
		size_t k = 0;
		while (k < nold && old[k].id != t->id)
			k++;
		if (k < nold)
			*st = old[k];
		if (k == nold || t == changed) {
			st->active = proxy_rand01(srv(c)) < t->toxicity;
			if (st->active && !toxic_counts_events(t))
				t->applied++;
		}
		st->t = t;
		st->id = t->id;
		need |= st->active && t->type->bytes;
	}
	pd->need_chain = (uint8_t)(need || c->want_http || c->recording);
	if (pd->need_chain && !pd->chain)
		pd->chain = chain_new(c, d); /* NULL without memory: the bytes flow untouched */
	if (pd->chain) {
		struct pchain *ch = pd->chain;
		memcpy(ch->ts, nw, n * sizeof(nw[0]));
		ch->nts = n;
		/* Deadlines of toxics that went are dropped; a timeout that came starts now. */
		struct tstate *to = pchain_toxic(ch, TK_TIMEOUT);
		if (!to || to->t->num[0] <= 0)
			ch->timeout_at = 0;
		else if (!ch->timeout_at || to->t == changed)
			ch->timeout_at = relay_now_us() + (uint64_t)to->t->num[0] * 1000;
		if (!pchain_toxic(ch, TK_RESET_PEER))
			ch->reset_at = 0;
		if (!pchain_toxic(ch, TK_SLOW_CLOSE))
			ch->close_at = 0;
		if (ch->timeout_at && c->state == PC_RELAY)
			chain_arm(c, ch, ch->timeout_at);
		/* A piece not yet started is weighed again with the new chain. */
		if (pd->chain->have_piece && !pd->chain->piece_done)
			pd->chain->have_piece = 0;
	}
}

static void chain_timer_cb(struct loop *l, struct loop_timer *t);

static struct pchain *chain_new(struct pconn *c, int d)
{
	struct pchain *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->c = c;
	ch->d = d;
	ch->scan_limit = c->want_http ? 0 : UINT64_MAX;
	buf_init(&ch->b, PROXY_CHAIN_MAX);
	loop_timer_init(&ch->timer, chain_timer_cb, ch);
	return ch;
}

/* A chain that nothing needs any more and that holds nothing goes: the plain path again. */
static void maybe_drop_chain(struct pconn *c, int d)
{
	struct pchain *ch = c->d[d].chain;
	if (!ch || c->d[d].need_chain || ch->count || ch->ins_count || ch->have_piece || ch->reset_at ||
	    ch->timeout_at || ch->close_at)
		return;
	free_chain(c, ch);
	c->d[d].chain = NULL;
}

void relay_toxics_changed(struct proxy *p, const struct toxic *changed)
{
	for (struct pconn *c = p->conns, *next; c; c = next) {
		next = c->next;
		if (c->state != PC_RELAY && c->state != PC_CONNECTING)
			continue;
		for (int d = 0; d < 2; d++) {
			sync_toxics(c, d, changed);
			maybe_drop_chain(c, d);
		}
		if (c->state != PC_RELAY)
			continue;
		if (pump(c, PROXY_UP) < 0 || pump(c, PROXY_DOWN) < 0)
			continue;
		update_masks(c);
	}
}

/* ---- the plain path ---- */

/* The socket of side (0 the client, 1 the upstream); the client's is c->cfd until
 * it is watched. */
static int side_fd(const struct pconn *c, int side)
{
	return side == 0 && c->io[0].fd < 0 ? c->cfd : c->io[side].fd;
}

static int sock_error_is_reset(int e)
{
	return e == ECONNRESET || e == EPIPE || e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH;
}

/* Moves what the pipe of direction d holds to dst. Returns 1 when it is empty, 0 when
 * dst is full (want_write is set) or was reset while the other way still delivers
 * (dst_failed), -1 when the pair was closed. */
static int drain_pipe(struct pconn *c, int d, int dst)
{
	struct pdir *pd = &c->d[d];
	while (pd->inpipe) {
		ssize_t n = splice(pd->pipe.fd[0], NULL, dst, NULL, pd->inpipe,
		                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EAGAIN) {
				pd->want_write = 1;
				return 0;
			}
			if (errno == EINTR)
				continue;
			return dst_failed(c, d, errno) < 0 ? -1 : 0;
		}
		pd->inpipe -= (uint32_t)n;
		pd->bytes += (uint64_t)n;
		c->p->bytes[d] += (uint64_t)n;
	}
	return 1;
}

/* Everything the source of direction d sent was delivered: pass on its FIN, or its
 * reset (the pair ends with one to both peers). */
static int src_ended(struct pconn *c, int d)
{
	if (!c->d[d].reset)
		return dir_finish(c, d);
	pconn_close(c, 1);
	return -1;
}

/* A write of direction d failed (err): its destination's peer reset, or is gone. What
 * that peer sent before, which the other way may still hold (a toxic's delay, a pipe,
 * the kernel's queue), goes on first, then its reset, as a direct connection would
 * deliver it; nothing more goes its way. Returns -1 when the pair was closed. */
static int dst_failed(struct pconn *c, int d, int err)
{
	struct pdir *back = &c->d[!d];
	if (!sock_error_is_reset(err) || back->done) {
		pconn_close(c, sock_error_is_reset(err));
		return -1;
	}
	c->d[d].done = 1;
	c->d[d].want_read = c->d[d].want_write = 0;
	back->reset = 1;
	return pump(c, !d) < 0 ? -1 : 0;
}

/* n bytes read from direction d's source that its destination did not take, and no
 * pipe to hold them: they start a chain (the copy through memory), which sends what the
 * pipe holds first, then them, and goes on; it is dropped again once empty. Returns -1
 * without memory. */
static int stash_in_chain(struct pconn *c, int d, const char *p, size_t n)
{
	struct pdir *pd = &c->d[d];
	struct pchain *ch = chain_new(c, d);
	size_t avail;
	char *q = ch ? buf_space(&ch->b, n, &avail) : NULL;
	if (!q || avail < n) {
		if (ch)
			free_chain(c, ch);
		return -1;
	}
	memcpy(q, p, n);
	chain_took(ch, n);
	pd->chain = ch;
	sync_toxics(c, d, NULL);
	return 0;
}

/* The pipe of direction d goes back to the pool once empty: idle pairs hold none. */
static void put_pipe(struct pconn *c, int d)
{
	struct pdir *pd = &c->d[d];
	if (pd->inpipe || pd->pipe.fd[0] < 0)
		return;
	proxy_pipe_put(srv(c), &pd->pipe);
	pd->pipe.fd[0] = pd->pipe.fd[1] = -1;
}

/* Moves bytes src -> dst with a read into the server's bulk buffer and a send; what dst
 * does not take waits in a pipe (spliced out as dst drains) or, when no pipe can hold
 * it, in a chain. The source is read only while nothing waits, so a slow destination
 * stops the reading. Why a copy and not splice(2) all the way: docs/proxy.md, "How
 * bytes move". Returns -1 when the pair was closed. */
static int pump_plain(struct pconn *c, int d)
{
	struct proxy_server *s = srv(c);
	struct pdir *pd = &c->d[d];
	int src = side_fd(c, d == PROXY_UP ? 0 : 1), dst = side_fd(c, d == PROXY_UP ? 1 : 0);
	char *buf = s->bulk;
	size_t cap = PROXY_BULK, moved = 0;
	pd->want_read = pd->want_write = 0;
	while (moved < TURN_BYTES) {
		if (pd->inpipe) {
			moved += pd->inpipe;
			int r = drain_pipe(c, d, dst);
			if (r <= 0)
				return r;
		}
		if (pd->eof)
			return src_ended(c, d);
		ssize_t n = read(src, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			put_pipe(c, d);
			pd->want_read = 1;
			return 0;
		}
		if (n < 0) {
			pconn_close(c, 1); /* the source reset: so does the destination */
			return -1;
		}
		if (n == 0) {
			pd->eof = 1;
			continue;
		}
		/* epoll said the source shut down writing and a short read took what was
		 * queued: a read that now returns 0 confirms the EOF, and the bytes wait for
		 * the shutdown (MSG_MORE), so both leave in one segment and the reader wakes
		 * once, not for the data and again for the FIN. Urgent data ends a read
		 * short with more queued (then the second read returns it); a reset shows
		 * as EPOLLRDHUP too (then the second read fails, and the reset is passed on
		 * after the bytes). */
		int last = 0;
		if ((size_t)n < cap && pd->src_hup) {
			ssize_t m = read(src, buf + n, cap - (size_t)n);
			if (m > 0) {
				n += m;
			} else if (m == 0 || (errno != EAGAIN && errno != EINTR)) {
				last = 1;
				pd->reset = (uint8_t)(pd->reset || m < 0);
			}
		}
		c->p->rbytes[d] += (uint64_t)n;
		ssize_t w = send(dst, buf, (size_t)n, MSG_NOSIGNAL | (last && !pd->reset ? MSG_MORE : 0));
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return dst_failed(c, d, errno);
		if (w < 0)
			w = 0;
		pd->bytes += (uint64_t)w;
		c->p->bytes[d] += (uint64_t)w;
		pd->eof = (uint8_t)last;
		if (w < n) {
			/* The rest waits in a pipe, and what the pipe cannot hold in a chain
			 * (past fs.pipe-user-pages-soft a user's new pipes hold 8 KiB; without
			 * descriptors there are none). */
			size_t rest = (size_t)(n - w);
			ssize_t k = -1;
			if (pd->pipe.fd[0] >= 0 || proxy_pipe_get(s, &pd->pipe) == 0)
				k = write(pd->pipe.fd[1], buf + w, rest);
			else
				pd->pipe.fd[0] = pd->pipe.fd[1] = -1;
			if (k < 0)
				k = 0;
			pd->inpipe = (uint32_t)k;
			if ((size_t)k == rest) {
				pd->want_write = 1;
				return 0;
			}
			if (stash_in_chain(c, d, buf + w + k, rest - (size_t)k) < 0) {
				pconn_close(c, 1);
				return -1;
			}
			return pump(c, d);
		}
		if (last)
			return src_ended(c, d);
		if ((size_t)n < cap) {
			put_pipe(c, d);
			pd->want_read = 1; /* drained: epoll says when more comes */
			return 0;
		}
		moved += (size_t)n;
	}
	if (pd->inpipe)
		pd->want_write = 1;
	else
		pd->want_read = 1;
	return 0;
}

/* ---- the toxic chain ---- */

/* n bytes were put at the end of the queue: they are its newest chunk, arrived now. */
static void chain_took(struct pchain *ch, size_t n)
{
	ch->b.len += n;
	if (ch->count == PROXY_CHUNKS) {
		/* Many small reads: the newest chunk grows (keeping its time) rather than
		 * reading stopping before a whole HTTP head is in. */
		ch->ch[(ch->head + ch->count - 1) % PROXY_CHUNKS].len += (uint32_t)n;
	} else {
		struct pchunk *k = &ch->ch[(ch->head + ch->count++) % PROXY_CHUNKS];
		k->len = (uint32_t)n;
		k->at = relay_now_us();
	}
	ch->rd_off += (uint64_t)n;
}

static int read_chunk(struct pconn *c, struct pchain *ch, int src)
{
	size_t avail;
	if (buf_used(&ch->b) >= ch->b.max)
		return 0;
	size_t want = ch->b.max - buf_used(&ch->b);
	if (want > PROXY_READ_MAX)
		want = PROXY_READ_MAX;
	char *p = buf_space(&ch->b, want, &avail);
	if (!p)
		return 0;
	ssize_t n = read(src, p, want);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -2;
	c->p->rbytes[ch->d] += (uint64_t)n;
	chain_took(ch, (size_t)n);
	/* The log shows the client's connection as it is on the wire: what the client
	 * sent (before any toxic) and what it was sent (after them). */
	if (c->rec && ch->d == PROXY_UP)
		record_bytes(srv(c)->rec, c, PROXY_UP, p, (size_t)n);
	return (int)n;
}

struct pins *pchain_ins_add(struct pchain *ch, enum pins_kind kind, uint64_t at)
{
	if (ch->ins_count == PROXY_INS_MAX)
		return NULL;
	struct pins *in = &ch->ins[(ch->ins_head + ch->ins_count++) % PROXY_INS_MAX];
	memset(in, 0, sizeof(*in));
	in->kind = (uint8_t)kind;
	in->at = at;
	return in;
}

static struct pins *ins_front(struct pchain *ch)
{
	return ch->ins_count ? &ch->ins[ch->ins_head] : NULL;
}

static void ins_pop(struct pchain *ch)
{
	free(ch->ins[ch->ins_head].data);
	ch->ins[ch->ins_head].data = NULL;
	ch->ins_head = (ch->ins_head + 1) % PROXY_INS_MAX;
	ch->ins_count--;
}

static uint64_t rand_below(struct proxy_server *s, uint64_t n)
{
	return n ? proxy_rand(s) % n : 0;
}

/* Decides the next piece: where its bytes come from, how many, when it goes, and what
 * happens to it. Returns 1 with a piece, 0 when there is none yet, -1 when the pair
 * was closed. */
static int next_piece(struct pconn *c, struct pchain *ch, uint64_t now)
{
	struct proxy_server *s = srv(c);
	struct pins *in;
	ch->pflags = 0;
	ch->piece_ins = 0;
	uint64_t at = now;
	size_t size = 0;
	uint64_t drop = 0;
	for (;;) {
		in = ins_front(ch);
		if (!in || in->at != ch->tx_off)
			break;
		if (in->kind == PI_HOLD) {
			if (in->until > ch->hold_until)
				ch->hold_until = in->until;
			ins_pop(ch);
			continue;
		}
		if (in->kind == PI_CLOSE) {
			int rst = in->reset;
			ins_pop(ch);
			if (rst)
				pconn_close(c, 1);
			else
				pconn_linger(c);
			return -1;
		}
		if (in->kind == PI_INSERT) {
			ch->piece_ins = 1;
			size = in->dlen - (size_t)in->len;
			break;
		}
		/* PI_DROP */
		if (in->len == 0 && !in->open) {
			ins_pop(ch);
			continue;
		}
		drop = in->len;
		break;
	}
	if (!ch->piece_ins) {
		if (!ch->count)
			return 0;
		struct pchunk *k = &ch->ch[ch->head];
		at = k->at;
		size = k->len - ch->front_off;
		if (in && in->at > ch->tx_off && in->at - ch->tx_off < size)
			size = (size_t)(in->at - ch->tx_off);
		if (c->want_http && ch->scan_limit - ch->tx_off < size)
			size = (size_t)(ch->scan_limit - ch->tx_off);
		if (!size)
			return 0; /* the framer waits for the rest of a head */
		if (in && in->kind == PI_DROP && in->at == ch->tx_off) {
			if (!drop)
				return 0; /* the framer has not found the end yet */
			if (drop < size)
				size = (size_t)drop;
			ch->pflags = PF_DROP;
			ch->have_piece = 1;
			ch->piece_len = size;
			ch->piece_done = 0;
			ch->release = now;
			return 1;
		}
	}
	/* Times count from the chunk's arrival, not from now: a timer that fired a little
	 * late must not make every later piece late too (bandwidth would drift below its
	 * rate). The piece goes at max(rel, now). */
	uint64_t rel = at > ch->hold_until ? at : ch->hold_until;
	/* First the sizes: every toxic may cut the piece shorter. */
	for (size_t i = 0; i < ch->nts; i++) {
		struct tstate *st = &ch->ts[i];
		const struct toxic *t = st->t;
		if (!st->active)
			continue;
		switch (t->type->kind) {
		case TK_SLICER: {
			uint64_t avg = (uint64_t)t->num[0], var = (uint64_t)t->num[1];
			uint64_t sz = avg - var + rand_below(s, 2 * var + 1);
			if (sz < size)
				size = (size_t)sz;
			break;
		}
		case TK_BANDWIDTH:
			if (t->num[0] > 0 && (uint64_t)t->num[0] * 100 < size)
				size = (size_t)((uint64_t)t->num[0] * 100); /* 100 ms worth, as toxiproxy */
			break;
		case TK_LIMIT_DATA: {
			uint64_t lim = (uint64_t)t->num[0];
			if (ch->pflags & PF_DROP)
				break;
			if (st->n >= lim) {
				pconn_linger(c);
				return -1;
			}
			if (lim - st->n <= size) {
				size = (size_t)(lim - st->n);
				ch->pflags |= PF_LIMIT;
			}
			break;
		}
		default: break;
		}
	}
	/* Then the time it goes out, toxic after toxic in chain order. Latency counts from
	 * the chunk's stamp: its read time, moved on by each latency toxic before, as
	 * toxiproxy's chunk timestamps are. So two latency toxics add up (a preset plus an
	 * extra latency is both), while a latency after a bandwidth toxic delays each chunk
	 * once, not each of the pieces the bandwidth cuts it into one after another. */
	uint64_t stamp = at;
	for (size_t i = 0; i < ch->nts; i++) {
		struct tstate *st = &ch->ts[i];
		const struct toxic *t = st->t;
		if (!st->active)
			continue;
		switch (t->type->kind) {
		case TK_LATENCY: {
			uint64_t lat = (uint64_t)t->num[0] * 1000, jit = (uint64_t)t->num[1] * 1000;
			uint64_t d = lat;
			if (jit) {
				uint64_t r = rand_below(s, 2 * jit);
				d = lat + r >= jit ? lat + r - jit : 0;
			}
			stamp += d;
			if (stamp > rel)
				rel = stamp;
			break;
		}
		case TK_BANDWIDTH: {
			double rate = t->num[0]; /* KB/s = bytes per ms */
			if (rate <= 0)
				break;
			uint64_t start = rel > st->tm ? rel : st->tm;
			if (start + BW_SLACK_US < now)
				start = now - BW_SLACK_US; /* an idle link saves up at most this much */
			st->tm = start + (uint64_t)((double)size * 1000.0 / rate);
			rel = st->tm;
			break;
		}
		case TK_SLICER:
			if (st->tm && st->tm + (uint64_t)t->num[2] > rel)
				rel = st->tm + (uint64_t)t->num[2];
			break;
		case TK_LOSS:
			if (proxy_rand01(s) < t->num[0]) {
				rel = (rel > now ? rel : now) + (uint64_t)t->num[1] * 1000;
				((struct toxic *)t)->applied++;
			}
			break;
		case TK_CORRUPT:
			if (t->num[0] > 0)
				ch->pflags |= PF_CORRUPT;
			break;
		case TK_TIMEOUT: ch->pflags |= PF_DROP; break;
		case TK_RESET_PEER:
			ch->pflags |= PF_DROP;
			if (!ch->reset_at)
				ch->reset_at = now + (uint64_t)t->num[0] * 1000;
			break;
		default: break;
		}
	}
	ch->have_piece = 1;
	ch->piece_len = size;
	ch->piece_done = 0;
	ch->release = rel;
	return 1;
}

/* Flips bits of p[0..n): each byte with the corrupt toxic's probability. */
static void corrupt(struct pconn *c, struct pchain *ch, char *p, size_t n)
{
	struct tstate *st = pchain_toxic(ch, TK_CORRUPT);
	if (!st)
		return;
	double prob = st->t->num[0];
	for (size_t i = 0; i < n; i++) {
		if (proxy_rand01(srv(c)) < prob) {
			p[i] ^= (char)(1u << (proxy_rand(srv(c)) & 7));
			((struct toxic *)st->t)->applied++;
		}
	}
}

static void piece_done(struct pconn *c, struct pchain *ch, uint64_t now)
{
	if (ch->piece_ins) {
		struct pins *in = ins_front(ch);
		in->len += ch->piece_len;
		if (in->len >= in->dlen)
			ins_pop(ch);
	} else {
		ch->tx_off += ch->piece_len;
		ch->front_off += ch->piece_len;
		struct pchunk *k = &ch->ch[ch->head];
		if (ch->front_off >= k->len) {
			ch->front_off = 0;
			ch->head = (ch->head + 1) % PROXY_CHUNKS;
			ch->count--;
		}
		struct pins *in = ins_front(ch);
		if ((ch->pflags & PF_DROP) && in && in->kind == PI_DROP &&
		    in->at + ch->piece_len == ch->tx_off) {
			in->at += ch->piece_len;
			in->len -= ch->piece_len;
			if (!in->len && !in->open)
				ins_pop(ch);
		}
	}
	for (size_t i = 0; i < ch->nts; i++) {
		struct tstate *st = &ch->ts[i];
		if (!st->active)
			continue;
		if (st->t->type->kind == TK_LIMIT_DATA && !(ch->pflags & PF_DROP))
			st->n += ch->piece_len;
		if (st->t->type->kind == TK_SLICER)
			st->tm = now;
	}
	ch->have_piece = 0;
}

static void chain_arm(struct pconn *c, struct pchain *ch, uint64_t when_us)
{
	struct loop *l = srv(c)->loop;
	uint64_t now = loop_now_us(l); /* at most the real now: the timer is never early */
	loop_timer_start_us(l, &ch->timer, when_us > now ? when_us - now : 0);
}

/* Moves bytes src -> queue -> toxics -> dst. Returns -1 when the pair was closed. */
static int pump_chain(struct pconn *c, int d)
{
	struct pdir *pd = &c->d[d];
	struct pchain *ch = pd->chain;
	int src = side_fd(c, d == PROXY_UP ? 0 : 1), dst = side_fd(c, d == PROXY_UP ? 1 : 0);
	size_t moved = 0;
	pd->want_read = pd->want_write = 0;
	/* Bytes still in the pipe from before the chain came go first. */
	int r = drain_pipe(c, d, dst);
	if (r <= 0)
		return r;
	if (pd->pipe.fd[0] >= 0) {
		proxy_pipe_put(srv(c), &pd->pipe);
		pd->pipe.fd[0] = pd->pipe.fd[1] = -1;
	}
	uint64_t now = relay_now_us();
	if (ch->reset_at && now >= ch->reset_at) {
		pconn_close(c, 1);
		return -1;
	}
	if (ch->timeout_at && now >= ch->timeout_at) {
		pconn_linger(c);
		return -1;
	}
	while (moved < TURN_BYTES) {
		/* Read while there is room. */
		while (!pd->eof) {
			int n = read_chunk(c, ch, src);
			if (n == -2) {
				pd->eof = 1;
				if (c->want_http)
					phttp_eof(c, ch);
				break;
			}
			if (n < 0) {
				/* The source reset: what it sent before still goes through the
				 * toxics (a link delivers it before the reset), then the reset. */
				pd->eof = pd->reset = 1;
				break;
			}
			if (n == 0)
				break;
			struct tstate *to = pchain_toxic(ch, TK_TIMEOUT);
			if (to && to->t->num[0] > 0)
				ch->timeout_at = relay_now_us() + (uint64_t)to->t->num[0] * 1000;
			if (c->want_http)
				phttp_scan(c, ch);
		}
		if (c->state != PC_RELAY)
			return -1;
		if (!ch->have_piece) {
			int pr = next_piece(c, ch, now);
			if (pr < 0)
				return -1;
			if (pr == 0)
				break;
		}
		if (ch->release > now) {
			chain_arm(c, ch, ch->release);
			pd->want_read = !pd->eof && buf_used(&ch->b) < ch->b.max;
			return 0;
		}
		if (ch->pflags & PF_DROP) {
			buf_consume(&ch->b, ch->piece_len);
			moved += ch->piece_len; /* dropped bytes count too: a flood must yield */
			piece_done(c, ch, now);
			continue;
		}
		/* The unsent rest of the piece. The queue's front stays at tx_off until the
		 * piece is whole (the HTTP framer counts from there); an inserted text's
		 * len is its part already sent. */
		char *p = (ch->piece_ins ? ins_front(ch)->data + ins_front(ch)->len : buf_start(&ch->b)) +
		          ch->piece_done;
		if (ch->pflags & PF_CORRUPT) {
			corrupt(c, ch, p, ch->piece_len - ch->piece_done);
			ch->pflags &= ~PF_CORRUPT;
		}
		size_t left = ch->piece_len - ch->piece_done;
		ssize_t n = left ? write(dst, p, left) : 0;
		if (n < 0) {
			if (errno == EAGAIN) {
				pd->want_write = 1;
				break;
			}
			if (errno == EINTR)
				continue;
			return dst_failed(c, d, errno);
		}
		if (c->rec && n > 0 && d == PROXY_DOWN)
			record_bytes(srv(c)->rec, c, d, p, (size_t)n);
		ch->piece_done += (size_t)n;
		pd->bytes += (uint64_t)n;
		c->p->bytes[d] += (uint64_t)n;
		moved += (size_t)n;
		if (ch->piece_done < ch->piece_len) {
			pd->want_write = 1;
			break;
		}
		if (!ch->piece_ins)
			buf_consume(&ch->b, ch->piece_len);
		unsigned fl = ch->pflags;
		piece_done(c, ch, relay_now_us());
		if (fl & PF_LIMIT) {
			pconn_linger(c);
			return -1;
		}
	}
	if (!pd->eof)
		pd->want_read = buf_used(&ch->b) < ch->b.max;
	uint64_t next = 0;
	if (ch->reset_at)
		next = ch->reset_at;
	if (ch->timeout_at && (!next || ch->timeout_at < next))
		next = ch->timeout_at;
	if (pd->eof && !ch->have_piece && !ch->count && !ch->ins_count) {
		if (src_ended(c, d) < 0)
			return -1;
		if (ch->close_at && !pd->done && (!next || ch->close_at < next))
			next = ch->close_at;
	}
	if (next)
		chain_arm(c, ch, next);
	else if (!ch->have_piece || ch->release <= now)
		loop_timer_stop(srv(c)->loop, &ch->timer);
	if (moved >= TURN_BYTES && !pd->want_write)
		pd->want_write = 1; /* come back next turn */
	return 0;
}

static int pump(struct pconn *c, int d)
{
	if (c->state != PC_RELAY)
		return c->state == PC_DEAD ? -1 : 0;
	if (c->d[d].done)
		return 0;
	int r = c->d[d].chain ? pump_chain(c, d) : pump_plain(c, d);
	if (r == 0 && c->state == PC_RELAY)
		maybe_drop_chain(c, d);
	return r;
}

static void chain_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct pchain *ch = t->data;
	struct pconn *c = ch->c;
	if (pump(c, ch->d) < 0)
		return;
	update_masks(c);
}

void relay_kick(struct pconn *c, int d)
{
	if (c->state != PC_RELAY || !c->d[d].chain)
		return;
	chain_arm(c, c->d[d].chain, relay_now_us());
}

static void update_masks(struct pconn *c)
{
	if (c->state != PC_RELAY)
		return;
	struct loop *l = srv(c)->loop;
	for (int side = 0; side < 2; side++) {
		int rd = side == 0 ? PROXY_UP : PROXY_DOWN; /* the side is the source of rd */
		unsigned m = (c->d[rd].want_read && !c->d[rd].eof ? LOOP_READ : 0) |
		             (c->d[!rd].want_write ? LOOP_WRITE : 0);
		loop_io_set(l, &c->io[side], m);
	}
}

/* ---- connecting ---- */

/* Starts the pcap and hexdump record of the client's connection, once. */
static void record_pair(struct pconn *c)
{
	if (!c->recording || c->rec || c->cfd < 0)
		return;
	struct sockaddr_storage a, b;
	socklen_t al = sizeof a, bl = sizeof b;
	if (getpeername(c->cfd, (struct sockaddr *)&a, &al) == 0 &&
	    getsockname(c->cfd, (struct sockaddr *)&b, &bl) == 0)
		record_conn_open(srv(c)->rec, c, &a, &b);
}

static void connected(struct pconn *c)
{
	int cfd = c->cfd;
	c->state = PC_RELAY;
	loop_timer_stop(srv(c)->loop, &c->linger);
	record_pair(c);
	c->d[0].want_read = c->d[1].want_read = 1;
	for (int d = 0; d < 2; d++) {
		struct pchain *ch = c->d[d].chain;
		struct tstate *to = pchain_toxic(ch, TK_TIMEOUT);
		if (to && to->t->num[0] > 0) {
			ch->timeout_at = relay_now_us() + (uint64_t)to->t->num[0] * 1000;
			chain_arm(c, ch, ch->timeout_at);
		}
	}
	/* The client's first bytes are likely there already (they waited in the kernel);
	 * the upstream has said nothing yet (a server that speaks first is heard through
	 * epoll). Spliced, they go up before the client is watched: the upstream has the
	 * request as soon as it has the connection, as haproxy sends what it read at
	 * accept, instead of an epoll_ctl later (the server woke for a connection with
	 * nothing to read yet, and again for the request). A chain may answer the client
	 * itself (HTTP toxics): it starts with the client watched. */
	int early = !c->d[PROXY_UP].chain;
	if (c->d[PROXY_DOWN].reset && pump(c, PROXY_DOWN) < 0)
		return; /* the upstream reset already: what it sent goes first, then its reset */
	if (early && pump(c, PROXY_UP) < 0)
		return;
	if (loop_io_start(srv(c)->loop, &c->io[0], cfd, LOOP_READ, io_cb, c) < 0) {
		pconn_close(c, 0);
		return;
	}
	c->cfd = -1;
	if (!early && pump(c, PROXY_UP) < 0)
		return;
	update_masks(c);
}

static void io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct pconn *c = io->data;
	int side = io == &c->io[0] ? 0 : 1;
	if (c->state == PC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		/* Writable without an error event: connected (no getsockopt needed). */
		if ((events & LOOP_ERROR) && getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if ((events & LOOP_ERROR) && !err)
			err = ECONNREFUSED;
		if (err == ECONNRESET) {
			/* It accepted, sent and reset before this event: a connection that was
			 * made, whose bytes the client gets before the reset, as it would from
			 * the upstream itself (read before the error, they are still queued).
			 * The reset is noted here: SO_ERROR has taken it, and the reads that
			 * follow the bytes will say EOF. */
			c->d[PROXY_DOWN].reset = 1;
			connected(c);
			return;
		}
		if (err) {
			upstream_refused(c, err);
			return;
		}
		connected(c);
		return;
	}
	if (c->state == PC_LINGER) {
		linger_read(c, side);
		return;
	}
	if (c->state != PC_RELAY)
		return;
	int rd = side == 0 ? PROXY_UP : PROXY_DOWN;
	if (events & LOOP_RDHUP)
		c->d[rd].src_hup = 1;
	if (c->d[0].done || c->d[1].done)
		loop_timer_start(l, &c->linger, PROXY_HALF_CLOSE_MS); /* traffic: ask again later */
	if ((events & (LOOP_READ | LOOP_ERROR)) && pump(c, rd) < 0)
		return;
	if ((events & (LOOP_WRITE | LOOP_ERROR)) && pump(c, !rd) < 0)
		return;
	update_masks(c);
}

/* On loopback the whole handshake runs inside connect (the kernel hands each segment
 * to the peer socket at once), though a non-blocking connect still says EINPROGRESS.
 * Asking the state (one byte of TCP_INFO) spares a wait for epoll's writable event:
 * the request goes up with the connection, and the upstream wakes once for both, not
 * for the connection and again for the request. haproxy sends at once too. */
static int handshake_done(int fd)
{
	uint8_t state = 0;
	socklen_t len = sizeof state;
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &state, &len) == 0 && len == 1 &&
	       state == TCP_ESTABLISHED;
}

void relay_accept(struct proxy *p, int fd, const struct sockaddr_storage *peer)
{
	struct proxy_server *s = p->srv;
	int one = 1;
	if (s->nconns >= PROXY_MAX_CONNS) {
		close(fd);
		return;
	}
	struct pconn *c = calloc(1, sizeof(*c));
	int ufd = -1;
	if (c)
		ufd = socket(p->up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!c || ufd < 0) {
		proxy_pipe_drain(s); /* pooled pipes hold descriptors the next pairs need */
		if (!s->emfile_logged)
			log_msg("proxy %s: no %s for a new connection (%s); it is reset; raise the limit "
			        "with ulimit -n",
			        p->name, c ? "socket" : "memory", strerror(errno));
		s->emfile_logged = 1;
		free(c);
		net_reset_on_close(fd); /* a reset: a FIN would look like an answer */
		close(fd);
		p->refused++;
		return;
	}
	s->emfile_logged = 0;
	/* The client's socket has TCP_NODELAY from the listener (Linux copies it). */
	setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->p = p;
	c->id = ++s->next_conn_id;
	c->state = PC_CONNECTING;
	c->io[0].fd = c->io[1].fd = c->cfd = -1;
	for (int d = 0; d < 2; d++)
		c->d[d].pipe.fd[0] = c->d[d].pipe.fd[1] = -1;
	loop_timer_init(&c->linger, linger_cb, c);
	c->next = p->conns;
	if (p->conns)
		p->conns->prev = c;
	p->conns = c;
	p->nconns++;
	p->conns_total++;
	s->nconns++;
	c->cfd = fd;
	c->recording = s->rec && record_wants_bytes(s->rec);
	c->want_http = (uint8_t)phttp_wanted(p);
	for (int d = 0; d < 2; d++)
		sync_toxics(c, d, NULL);
	if (net_is_loopback((struct sockaddr *)&p->up_addr)) /* before the SYN: it sets the window scale */
		net_relay_rcvbuf(ufd);
	int cerr = connect(ufd, (struct sockaddr *)&p->up_addr, p->up_len) < 0 ? errno : 0;
	int up = cerr == 0 || (cerr == EINPROGRESS && handshake_done(ufd));
	if (loop_io_start(s->loop, &c->io[1], ufd, up ? LOOP_READ : LOOP_WRITE, io_cb, c) < 0) {
		close(ufd);
		pconn_close(c, 0);
		return;
	}
	if (up) {
		connected(c);
		return;
	}
	loop_timer_start(s->loop, &c->linger, PROXY_CONNECT_MS);
	if (cerr && cerr != EINPROGRESS)
		upstream_refused(c, cerr);
}

void relay_close_all(struct proxy *p)
{
	while (p->conns)
		pconn_close(p->conns, 0);
}
