/* conn.c - HTTP/1.1 connections as state machines: read, parse, dispatch, write, time out. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sockdiag.h"
#include "http/internal.h"
#include "http/route.h"

static void conn_run(struct http_conn *c);
static void conn_close(struct http_conn *c);

void http_config_default(struct http_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->routes = http_serve_routes;
	cfg->head_timeout_ms = HTTP_DEFAULT_HEAD_TIMEOUT_S * 1000;
	cfg->idle_timeout_ms = HTTP_DEFAULT_IDLE_TIMEOUT_S * 1000;
	cfg->body_timeout_ms = HTTP_DEFAULT_BODY_TIMEOUT_S * 1000;
}

/* ---- deadlines ---- */

void conn_deadline(struct http_conn *c, uint64_t ms)
{
	struct loop *l = c->x->loop;
	c->deadline = loop_now(l) + ms;
	/* The timer only moves earlier here; a later deadline is noticed when the timer
	 * fires and re-arms, so busy connections do not touch the heap per request. */
	if (!loop_timer_armed(&c->timer) || loop_timer_due_ms(&c->timer) > c->deadline)
		loop_timer_start(l, &c->timer, ms);
}

/* ---- the memory count (HTTP_MEM_MAX) ---- */

void conn_mem_sync(struct http_conn *c)
{
	size_t body = c->body.cap > c->mem_reserve ? c->body.cap : c->mem_reserve;
	size_t want = body + (c->mem_out ? c->out.cap : 0);
	if (want > c->mem_held)
		atomic_fetch_add(c->x->mem, want - c->mem_held);
	else if (want < c->mem_held)
		atomic_fetch_sub(c->x->mem, c->mem_held - want);
	c->mem_held = want;
}

int conn_mem_room(const struct http_conn *c, size_t n)
{
	size_t used = atomic_load(c->x->mem);
	return used <= HTTP_MEM_MAX && n <= HTTP_MEM_MAX - used;
}

void conn_mem_refuse(struct http_conn *c, int close)
{
	char lim[32];
	if (close) {
		c->closing = 1;
		c->linger = 1; /* the body is still on its way */
	}
	resp_error_h(c, LK_E_H_MEM_FULL, lk_size_text(HTTP_MEM_MAX, lim, sizeof(lim)), "Retry-After", "1");
}

/* Frees the output buffer (it is empty) and uncounts it. */
static void out_free(struct http_conn *c)
{
	buf_pool_put(&c->x->pool, &c->out);
	c->mem_out = 0;
	conn_mem_sync(c);
}

/* Has the client gone (reset the connection, or closed it) before the answer it waits
 * for was made? Then making it would be work for nobody. A FIN alone does not say: the
 * client may only have shut its sending side (nc -N, an HTTP/1.0 client after its body)
 * and wait for the answer; sockdiag_peer_held tells on loopback. Off loopback, or when
 * sock_diag cannot answer, a FIN counts as gone. */
static int peer_gone(const struct http_conn *c)
{
	struct pollfd p = {.fd = c->io.fd, .events = POLLRDHUP};
	if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return 0;
	return (p.revents & (POLLHUP | POLLERR)) || !sockdiag_peer_held(c->io.fd);
}

static void request_reset(struct http_conn *c)
{
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	buf_free(&c->body);
	free(c->log_ref);
	free(c->log_ua);
	c->log_ref = c->log_ua = NULL;
	if (c->up) {
		fsroot_upload_abort(c->up); /* nothing left after a finished upload */
		free(c->up);
		c->up = NULL;
	}
	c->sink = SINK_NONE;
	c->route = NULL;
	c->chunked = 0;
	c->body_left = c->body_total = 0;
	c->mem_reserve = 0;
	resp_body_reset(c);
	conn_mem_sync(c);
}

void conn_request_done(struct http_conn *c)
{
	c->in_batch = 0; /* a request after it in the buffer may have come after the batch */
	route_log(c);
	request_reset(c);
	c->state = CS_HEAD;
	c->status = 0;
	c->body_bytes = 0;
	c->user = NULL;
	if (c->x->stopping)
		c->closing = 1;
	if (!buf_used(&c->in))
		conn_deadline(c, c->x->cfg->idle_timeout_ms);
	else
		conn_deadline(c, c->x->cfg->head_timeout_ms);
}

/* Bytes of the answer the client has not acknowledged (the FIN counts one). */
static int unacked(const struct http_conn *c)
{
	int n = 0;
	return ioctl(c->io.fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

static void linger_start(struct http_conn *c)
{
	shutdown(c->io.fd, SHUT_WR);
	c->state = CS_LINGER;
	c->linger_outq = INT_MAX;
	buf_pool_put(&c->x->pool, &c->in);
	out_free(c);
	c->deadline = 0;
	conn_deadline(c, c->x->stopping ? HTTP_LINGER_MS / 10 : HTTP_LINGER_MS);
	/* Only reading now: a shut-down socket is always writable, and asking for that
	 * would spin. */
	if (loop_io_set(c->x->loop, &c->io, LOOP_READ) < 0)
		conn_close(c);
}

static void conn_free_cb(struct loop *l, void *data)
{
	free(data);
}

static void conn_close(struct http_conn *c)
{
	struct http_ctx *x = c->x;
	if (c->shut)
		return;
	c->shut = 1;
	if (c->sink == SINK_FILE)
		fsroot_upload_abort(c->up);
	request_reset(c);
	loop_io_close(x->loop, &c->io);
	loop_timer_stop(x->loop, &c->timer);
	buf_pool_put(&c->x->pool, &c->in);
	out_free(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		x->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	x->nconns--;
	atomic_fetch_sub(x->site->nconns, 1);
	if (!x->nconns)
		buf_pool_drain(&x->pool); /* pooled blocks would keep the heap from shrinking */
	/* Freed after the batch: an event for it may still wait in this one. Without
	 * memory even for that, leaking one record beats a use after free. */
	if (loop_defer(x->loop, conn_free_cb, c) < 0)
		log_msg("out of memory: leaking one connection record");
	if (x->stopping && !x->nconns && x->hooks.idle)
		x->hooks.idle(x->hooks.arg);
}

/* ---- request bodies ---- */

static int sink_data(struct http_conn *c, const char *p, size_t n)
{
	char lim[32];
	c->body_total += n;
	if (c->sink == SINK_DISCARD)
		return 0;
	if (c->sink == SINK_MEM) {
		/* A chunked body is counted as it comes (one with a length was counted whole
		 * before it came), with room for the answer made from it. */
		size_t need = (size_t)c->body_total * (1 + HTTP_API_ANSWER_RATIO);
		if (need > c->mem_reserve) {
			if (!conn_mem_room(c, need - c->mem_reserve)) {
				c->sink = SINK_NONE;
				conn_mem_refuse(c, 1);
				return -1;
			}
			c->mem_reserve = need;
		}
		if (buf_append(&c->body, p, n) < 0) {
			resp_error_close(c, LK_E_H_API_BODY_LARGE,
			                 lk_size_text(HTTP_API_MAX_BODY, lim, sizeof(lim)));
			return -1;
		}
		conn_mem_sync(c);
		return 0;
	}
	if (c->body_total > c->x->site->max_body) {
		fsroot_upload_abort(c->up);
		c->sink = SINK_NONE;
		resp_error_close(c, LK_E_ETOOBIG, lk_size_text(c->x->site->max_body, lim, sizeof(lim)));
		return -1;
	}
	int rc = fsroot_upload_write(c->up, p, n);
	if (rc < 0) {
		fsroot_upload_abort(c->up);
		c->sink = SINK_NONE;
		c->route->upload_finish(c, c->up, rc);
		c->closing = 1;
		c->linger = 1; /* the client is still sending: let the answer reach it */
		return -1;
	}
	return 0;
}

static void body_failed(struct http_conn *c)
{
	c->state = CS_HEAD;
	conn_request_done(c);
}

/* The whole body is in: answer it, unless it was read into memory for an answer to
 * make and the client has left meanwhile. */
static void body_done(struct http_conn *c)
{
	if (c->sink == SINK_MEM && peer_gone(c)) {
		c->status = HTTP_CLIENT_CLOSED_REQUEST; /* logged, as nginx does */
		c->body_bytes = 0;
		route_log(c);
		conn_close(c);
		return;
	}
	route_body_done(c);
}

/* Feeds buffered input to the body sink. Returns 1 when it made progress. */
static int body_feed(struct http_conn *c)
{
	size_t avail = buf_used(&c->in);
	char *p = buf_start(&c->in);
	if (!avail)
		return 0;
	if (!c->chunked) {
		size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
		int rc = sink_data(c, p, take);
		buf_consume(&c->in, take);
		c->body_left -= take;
		if (rc < 0)
			body_failed(c);
		else if (!c->body_left)
			body_done(c);
		return 1;
	}
	size_t len = avail;
	ssize_t r = http_chunked_decode(&c->chunk, p, &len);
	if (r == HTTP_PARSE_ERROR) {
		if (c->sink == SINK_FILE)
			fsroot_upload_abort(c->up);
		c->sink = SINK_NONE;
		resp_error_close(c, LK_E_H_BAD_CHUNKED, NULL);
		buf_consume(&c->in, avail);
		body_failed(c);
		return 1;
	}
	int rc = len ? sink_data(c, p, len) : 0;
	/* A chunk announced bigger than what may still come is refused now, not after
	 * its bytes arrive (or the body timeout passes). */
	uint64_t limit = c->sink == SINK_MEM ? HTTP_API_MAX_BODY : c->x->site->max_body;
	if (!rc && c->chunk.remaining > limit - (c->body_total < limit ? c->body_total : limit)) {
		int mem = c->sink == SINK_MEM;
		char lim[32];
		if (c->sink == SINK_FILE)
			fsroot_upload_abort(c->up);
		c->sink = SINK_NONE;
		resp_error_close(c, mem ? LK_E_H_API_BODY_LARGE : LK_E_ETOOBIG,
		                 lk_size_text(limit, lim, sizeof(lim)));
		rc = -1;
	}
	if (r == HTTP_PARSE_INCOMPLETE) {
		buf_consume(&c->in, avail);
	} else {
		c->in.len = c->in.off + len + (size_t)r;
		buf_consume(&c->in, len);
	}
	if (rc < 0)
		body_failed(c);
	else if (r >= 0)
		body_done(c);
	return 1;
}

/* A head that does not parse: answered, and the connection closes. */
static void parse_error(struct http_conn *c, size_t used)
{
	char detail[32];
	const struct http_request *req = &c->x->req;
	c->t_start = loop_clock_us();
	c->minor = 1;
	c->logmethod[0] = c->logtarget[0] = 0;
	http_parse_error_detail(req->error, detail, sizeof(detail));
	resp_error_close(c, req->error, detail);
	buf_consume(&c->in, used);
	conn_request_done(c);
}

/* ---- the connection driver ---- */

/* Handles complete requests in the input. */
static void conn_process(struct http_conn *c)
{
	struct http_request *req = &c->x->req;
	while (!c->shut) {
		if (c->state == CS_BODY) {
			if (!body_feed(c))
				break;
			continue;
		}
		if (c->state != CS_HEAD || c->closing || !buf_used(&c->in) ||
		    buf_used(&c->out) >= HTTP_OUT_FLUSH)
			break;
		size_t used = buf_used(&c->in);
		int r = http_parse_request(buf_start(&c->in), used, req, c->last_len);
		if (r == HTTP_PARSE_INCOMPLETE) {
			if (!c->last_len)
				conn_deadline(c, c->x->cfg->head_timeout_ms);
			c->last_len = used;
			c->need_input = 1;
			break;
		}
		c->last_len = 0;
		if (r == HTTP_PARSE_ERROR) {
			parse_error(c, used);
			break;
		}
		route_head(c, req, (size_t)r);
	}
}

/* Is the response held back (/_/delay), or waiting for a drip tick? */
static int conn_holding(const struct http_conn *c)
{
	return c->state == CS_WAIT;
}

/* These n bytes end an answer after which the connection closes: conn_run shuts it
 * down as soon as they are written (linger_start, or a clean close), so they may wait
 * for the FIN (MSG_MORE) and leave with it in one segment. The client (or a proxy
 * before it) then wakes once, for the answer and the end together, and sends one ACK
 * less. */
static int conn_last_send(const struct http_conn *c, size_t n)
{
	return c->closing && c->state == CS_HEAD && c->rb == RB_NONE && n == buf_used(&c->out);
}

/* Writes what is pending, at most HTTP_TURN_BYTES in this turn. Returns 1 when
 * everything is written, 0 when the socket is full, the budget is spent or a tick is
 * awaited, -1 when the connection was closed. */
static int conn_flush(struct http_conn *c)
{
	size_t budget = HTTP_TURN_BYTES;
	int filled = 0;
	if (c->rb == RB_FILE && !loop_batch_alone(c->x->loop))
		budget = FILESEND_TURN;
	if (conn_holding(c))
		return 0;
	for (;;) {
		/* One generator fill per turn: making bytes costs CPU (chunk_size=1 frames
		 * every byte), so the budget is a fill, not only the bytes. */
		if (c->rb == RB_GEN && !c->gen_interval && buf_used(&c->out) < HTTP_GEN_FILL) {
			if (filled)
				return 0;
			filled = 1;
			size_t added = c->gen->fill(c, c->gen_state.bytes, &c->out,
			                            HTTP_GEN_FILL - buf_used(&c->out));
			c->body_bytes += added;
			if (!added)
				conn_request_done(c);
		}
		size_t n = buf_used(&c->out);
		if (!n && c->mem_out && c->rb == RB_NONE)
			out_free(c); /* a /_/ answer sent: its memory goes back at once */
		if (n) {
			if (!budget)
				return 0;
			if (n > budget)
				n = budget;
			/* MSG_MORE only before a file's bytes, whose sends push (filesend): a
			 * generator cannot tell that its last fill was the last, and the kernel
			 * would hold a corked tail for 200 ms. */
			int more = c->rb == RB_FILE || conn_last_send(c, n) ? MSG_MORE : 0;
			ssize_t w = send(c->io.fd, buf_start(&c->out), n, MSG_NOSIGNAL | MSG_DONTWAIT | more);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				conn_close(c);
				return -1;
			}
			buf_consume(&c->out, (size_t)w);
			budget -= (size_t)w;
			if ((size_t)w < n)
				return 0;
			continue;
		}
		if (c->rb == RB_FILE) {
			if (!budget)
				return 0;
			ssize_t w = filesend_send(&c->file, c->io.fd, budget);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				conn_close(c);
				return -1;
			}
			if (w == 0) { /* the file shrank under us: the length we promised is a lie */
				conn_close(c);
				return -1;
			}
			c->body_bytes += (uint64_t)w;
			budget -= (size_t)w;
			if (!filesend_left(&c->file))
				conn_request_done(c);
			continue;
		}
		if (c->rb == RB_GEN)
			return 0; /* a drip waits for its tick; a fill waits for the next turn */
		return 1;
	}
}

/* Complete input is waiting to be handled (pipelined requests, body bytes). */
static int conn_has_work(const struct http_conn *c)
{
	if (c->state == CS_BODY)
		return buf_used(&c->in) != 0;
	return c->state == CS_HEAD && buf_used(&c->in) && !c->need_input && !c->closing;
}

static int conn_wants_write(const struct http_conn *c)
{
	return !conn_holding(c) &&
	       (buf_used(&c->out) || c->rb == RB_FILE || (c->rb == RB_GEN && !c->gen_interval));
}

static void conn_update_io(struct http_conn *c)
{
	unsigned mask = 0;
	/* Work left over after a turn's budget: a writable socket reports at once, so
	 * the next turn continues it, after other connections had theirs. */
	if (conn_wants_write(c) || conn_has_work(c))
		mask = LOOP_WRITE;
	else if (c->state == CS_HEAD || c->state == CS_BODY || c->state == CS_LINGER)
		mask = LOOP_READ;
	if (loop_io_set(c->x->loop, &c->io, mask) < 0)
		conn_close(c);
}

static void conn_run(struct http_conn *c)
{
	for (int round = 0; round < HTTP_TURN_ROUNDS && !c->shut; round++) {
		conn_process(c);
		if (c->shut)
			return;
		int r = conn_flush(c);
		if (r < 0)
			return;
		if (r == 0) {
			/* Blocked on the socket: a write stall is bounded by the body timeout. */
			if (c->state != CS_WAIT && conn_wants_write(c))
				conn_deadline(c, c->x->cfg->body_timeout_ms);
			break;
		}
		if (c->state == CS_HEAD && c->closing) {
			/* A clean "Connection: close" needs no lingering: the request was read
			 * whole. After an error, drain what the peer still sends, or our close
			 * would reset the connection and could destroy the answer in flight. */
			if (c->linger || buf_used(&c->in)) {
				linger_start(c);
				return;
			}
			/* The FIN goes out now, with a held tail (conn_last_send). Bytes the
			 * client's window has not taken yet would be destroyed by the reset
			 * a close sends when the client has sent more (a request after
			 * this one, a stray CRLF): then the connection lingers, reading,
			 * until the client has the answer and closes. Only the FIN may
			 * still be unacknowledged for a plain close. */
			shutdown(c->io.fd, SHUT_WR);
			if (unacked(c) > 1)
				linger_start(c);
			else
				conn_close(c);
			return;
		}
		if (!conn_has_work(c))
			break;
	}
	if (c->shut)
		return;
	/* Between requests a connection keeps no buffers: 10,000 idle keep-alive
	 * connections then cost their records only. */
	if (c->state == CS_HEAD && !buf_used(&c->in) && !buf_used(&c->out)) {
		buf_pool_put(&c->x->pool, &c->in);
		out_free(c);
	}
	conn_update_io(c);
}

static void conn_read(struct http_conn *c)
{
	if (c->state == CS_LINGER) {
		char sink[4096];
		ssize_t n = recv(c->io.fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	size_t avail;
	int was_empty = !buf_used(&c->in);
	buf_pool_get(&c->x->pool, &c->in);
	char *p = buf_space(&c->in, BUF_FIRST_CAP, &avail);
	if (!p)
		p = buf_space(&c->in, 1, &avail);
	if (!p) {
		/* Full: only a head can fill HTTP_IN_MAX (bodies drain as they come). */
		char lim[32];
		resp_error_close(c, LK_E_H_HEAD_LARGE, lk_size_text(HTTP_MAX_HEAD, lim, sizeof(lim)));
		buf_consume(&c->in, buf_used(&c->in));
		conn_request_done(c);
		conn_run(c);
		return;
	}
	ssize_t n = recv(c->io.fd, p, avail, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	if (n == 0) {
		if (c->state == CS_BODY && c->sink == SINK_FILE)
			log_msg("upload of %s %s cut off after %llu bytes; the old file is untouched",
			        c->logmethod, c->logtarget, (unsigned long long)c->body_total);
		conn_close(c);
		return;
	}
	c->in.len += (size_t)n;
	c->in_batch = was_empty && loop_io_reported(c->x->loop, &c->io);
	c->need_input = 0;
	if (c->state == CS_HEAD && was_empty)
		conn_deadline(c, c->x->cfg->head_timeout_ms);
	else if (c->state == CS_BODY)
		c->deadline = loop_now(c->x->loop) + c->x->cfg->body_timeout_ms;
	conn_run(c);
}

static void conn_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct http_conn *c = io->data;
	if (events & LOOP_ERROR) {
		/* Reset or hung up: reported on every turn whatever we asked for, so it
		 * must end the connection now (a held /_/delay answer included). */
		conn_close(c);
		return;
	}
	if (events & LOOP_WRITE) {
		if (conn_wants_write(c))
			c->deadline = loop_now(l) + c->x->cfg->body_timeout_ms;
		conn_run(c);
		return;
	}
	if (events & LOOP_READ)
		conn_read(c);
}

static void timeout_error(struct http_conn *c, enum lk_err e, unsigned ms)
{
	char t[32];
	resp_error_close(c, e, lk_ms_text(ms, t, sizeof(t)));
}

static void conn_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct http_conn *c = t->data;
	uint64_t now = loop_now(l);
	if (now < c->deadline) {
		loop_timer_start(l, t, c->deadline - now);
		return;
	}
	switch (c->state) {
	case CS_HEAD:
		if (buf_used(&c->in) && !buf_used(&c->out)) {
			c->t_start = loop_clock_us();
			c->minor = 1;
			c->logmethod[0] = c->logtarget[0] = 0;
			timeout_error(c, LK_E_H_HEAD_TIMEOUT, c->x->cfg->head_timeout_ms);
			buf_consume(&c->in, buf_used(&c->in));
			conn_request_done(c);
			conn_run(c);
		} else {
			conn_close(c);
		}
		return;
	case CS_BODY:
		if (c->sink == SINK_FILE) {
			log_msg("upload of %s %s stalled after %llu bytes; the old file is untouched",
			        c->logmethod, c->logtarget, (unsigned long long)c->body_total);
			fsroot_upload_abort(c->up);
		}
		c->sink = SINK_NONE;
		c->state = CS_HEAD;
		timeout_error(c, LK_E_H_BODY_TIMEOUT, c->x->cfg->body_timeout_ms);
		conn_request_done(c);
		conn_run(c);
		return;
	case CS_WAIT:
		if (c->login_wait) {
			/* The head's turn at the login gate: handled again, answered now. */
			c->login_wait = 0;
			c->login_turn = 1;
			c->state = CS_HEAD;
			conn_run(c);
			return;
		}
		if (c->rb == RB_GEN && c->gen_interval) {
			/* A drip tick: one fill, sent at once, then the next tick. */
			size_t added = c->gen->fill(c, c->gen_state.bytes, &c->out, HTTP_OUT_FLUSH);
			c->body_bytes += added;
			if (!added) {
				conn_request_done(c);
			} else {
				c->state = CS_SEND;
				int r = conn_flush(c);
				if (r < 0)
					return;
				c->state = CS_WAIT;
				conn_deadline(c, c->gen_interval);
				conn_update_io(c);
				return;
			}
		} else {
			c->state = CS_HEAD;
			if (c->rb == RB_NONE)
				conn_request_done(c);
			else
				c->state = CS_SEND;
		}
		conn_run(c);
		return;
	case CS_LINGER: {
		/* The answer is still going out to a slow reader, and moving: linger on, as
		 * a close would reset over bytes the client sends meanwhile. A stall ends it. */
		int q = unacked(c);
		if (q > 1 && q < c->linger_outq) {
			c->linger_outq = q;
			conn_deadline(c, c->x->stopping ? HTTP_LINGER_MS / 10 : HTTP_LINGER_MS);
			return;
		}
		conn_close(c);
		return;
	}
	case CS_SEND: conn_close(c); return;
	}
}

/* ---- the protocol ---- */

static int http_start(void *ctx, int fd, const struct proto_peer *peer, const char *first, size_t nfirst,
                      struct loop_io *watched)
{
	struct http_ctx *x = ctx;
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		proto_drop(x->loop, watched, fd);
		atomic_fetch_sub(x->site->nconns, 1);
		return -1;
	}
	/* TCP_NODELAY comes from the listener: Linux copies it to accepted sockets. */
	c->x = x;
	filesend_init(&c->file);
	c->peer = *peer;
	buf_init(&c->in, HTTP_IN_MAX);
	buf_init(&c->out, HTTP_OUT_MAX);
	loop_timer_init(&c->timer, conn_timer_cb, c);
	if (proto_watch(x->loop, watched, &c->io, fd, LOOP_READ, conn_io_cb, c) < 0) {
		proto_drop(x->loop, watched, fd);
		free(c);
		atomic_fetch_sub(x->site->nconns, 1);
		return -1;
	}
	c->next = x->conns;
	if (x->conns)
		x->conns->prev = c;
	x->conns = c;
	x->nconns++;
	c->state = CS_HEAD;
	conn_deadline(c, x->cfg->head_timeout_ms);
	/* A client handed over by the sniffer has sent bytes already: take what it read
	 * (or read them now) rather than one loop turn later. */
	size_t avail;
	char *p = nfirst ? buf_space(&c->in, nfirst, &avail) : NULL;
	if (!p) {
		conn_read(c);
		return 0;
	}
	memcpy(p, first, nfirst);
	c->in.len += nfirst;
	c->in_batch = loop_io_reported(x->loop, &c->io); /* not at accept, nor on a timer */
	conn_run(c);
	return 0;
}

static void *http_ctx_new(struct loop *l, const struct proto_site *site, const void *cfg,
                          const struct proto_hooks *hooks, char *err, size_t errlen)
{
	struct http_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->loop = l;
	x->site = site;
	x->cfg = cfg;
	x->hooks = *hooks;
	x->mem = site->mem ? site->mem : &x->mem_own;
	x->prng = 0x9e3779b97f4a7c15ull ^ (uint64_t)loop_clock_us() ^ (uint64_t)(uintptr_t)x;
	accesslog_init(&x->log, site->log, site->log_sink, l);
	if (site->root) {
		x->files = calloc(1, sizeof(*x->files));
		if (!x->files) {
			accesslog_free(&x->log);
			free(x);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		filecache_init(x->files, l, site->root);
	}
	return x;
}

static void http_close_all(void *ctx)
{
	struct http_ctx *x = ctx;
	while (x->conns)
		conn_close(x->conns);
}

static void http_stop(void *ctx)
{
	struct http_ctx *x = ctx;
	x->stopping = 1;
	/* Idle connections go now; busy ones finish their response, then close. */
	struct http_conn *next;
	for (struct http_conn *c = x->conns; c; c = next) {
		next = c->next;
		if (c->state == CS_HEAD && !buf_used(&c->in) && !buf_used(&c->out))
			conn_close(c);
		else
			c->closing = 1;
	}
	if (!x->nconns && x->hooks.idle)
		x->hooks.idle(x->hooks.arg);
}

static unsigned http_count(const void *ctx)
{
	return ((const struct http_ctx *)ctx)->nconns;
}

static void http_ctx_free(void *ctx)
{
	struct http_ctx *x = ctx;
	if (!x)
		return;
	http_close_all(x);
	if (x->files) {
		filecache_free(x->files);
		free(x->files);
	}
	accesslog_free(&x->log);
	buf_pool_drain(&x->pool);
	free(x);
}

const struct proto_ops http_proto_ops = {
        .name = "http",
        .ctx_new = http_ctx_new,
        .start = http_start,
        .stop = http_stop,
        .close_all = http_close_all,
        .count = http_count,
        .ctx_free = http_ctx_free,
};
