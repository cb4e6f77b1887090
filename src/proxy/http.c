/* http.c - the proxy's HTTP/1.x framer: message boundaries in both directions, HTTP toxics, HAR entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "bench/resp.h"
#include "http/parse.h"
#include "proxy/internal.h"

#define PHTTP_QUEUE 64 /* requests awaiting their responses (pipelining) */

enum hstate { H_START, H_BODY, H_BODY_EOF, H_RAW };

/* A request whose response is still to come. */
struct phttp_req {
	uint8_t fail;      /* answered by the proxy (http_fail) */
	uint8_t head_only; /* HEAD: the response has no body */
	uint8_t upgrade;   /* WebSocket or CONNECT: what follows is not framed */
	uint16_t status;   /* fail: the status to answer with */
	const struct toxic *toxic;
	uint64_t t_start; /* µs (wall clock) when its head was complete */
	char *head;       /* HAR: a copy of the head */
	size_t head_len;
	struct buf body; /* HAR: the body, at most PROXY_HAR_BODY_MAX */
	uint64_t body_size;
};

struct phttp_dir {
	enum hstate state;
	uint64_t scan;        /* bytes framed so far */
	size_t last_len;      /* request parser resume point */
	struct bench_resp fr; /* body framing (and response heads) */
	int drop_idx;         /* the open PI_DROP of a failed request's body; -1 */
	uint64_t body_start;  /* offset of the current body */
	uint64_t cut_at;      /* http_cut: close at this offset; 0: none */
	int cut_reset;
	struct toxic *cut_toxic;
	/* HAR: the response being read */
	char *head;
	size_t head_len;
	struct buf body;
	uint64_t body_size;
	uint64_t t_head;
};

struct phttp {
	struct phttp_req q[PHTTP_QUEUE];
	unsigned qh, qn;
	struct phttp_dir d[2];
	int har;
};

static uint64_t wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

int phttp_wanted(const struct proxy *p)
{
	if (p->srv->o.http || (p->srv->rec && record_wants_http(p->srv->rec)))
		return 1;
	for (size_t i = 0; i < p->ntoxics; i++)
		if (p->toxics[i]->type->http)
			return 1;
	return 0;
}

static struct phttp *hx_get(struct pconn *c)
{
	if (!c->hx) {
		c->hx = calloc(1, sizeof(*c->hx));
		if (!c->hx)
			return NULL;
		c->hx->d[0].drop_idx = c->hx->d[1].drop_idx = -1;
		buf_init(&c->hx->d[1].body, PROXY_HAR_BODY_MAX);
		c->hx->har = c->p->srv->rec && record_wants_http(c->p->srv->rec);
	}
	return c->hx;
}

static void req_free(struct phttp_req *r)
{
	free(r->head);
	r->head = NULL;
	buf_free(&r->body);
}

static void har_emit(struct pconn *c, struct phttp_req *r, const char *rh, size_t rhl, const char *rb,
                     size_t rbl, uint64_t rbs, uint64_t t_head, const char *comment);

/* Exchanges that the connection's end left unfinished are entries too, marked, as
 * devtools show a request that failed: a response cut on the wire keeps what came. */
static void har_unfinished(struct pconn *c)
{
	struct phttp *h = c->hx;
	struct phttp_dir *hd = &h->d[PROXY_DOWN];
	if (!h->har)
		return;
	for (unsigned i = 0; i < h->qn; i++) {
		struct phttp_req *r = &h->q[(h->qh + i) % PHTTP_QUEUE];
		if (r->fail || r->upgrade)
			continue; /* an http_fail answer not yet sent: the client never asked upstream;
			           * an upgrade: its answer is past the framed bytes, not missing */
		if (i == 0 && hd->head) {
			char note[160];
			snprintf(note, sizeof note,
			         "cut: the connection ended after %llu bytes of the response body%s",
			         (unsigned long long)hd->body_size,
			         hd->cut_at ? " (the http_cut toxic)" : "");
			har_emit(c, r, hd->head, hd->head_len, buf_start(&hd->body), buf_used(&hd->body),
			         hd->body_size, hd->t_head, note);
		} else {
			har_emit(c, r, NULL, 0, NULL, 0, 0, wall_us(),
			         "no response: the connection ended before one came");
		}
	}
}

void phttp_free(struct pconn *c)
{
	struct phttp *h = c->hx;
	if (!h)
		return;
	har_unfinished(c);
	for (unsigned i = 0; i < h->qn; i++)
		req_free(&h->q[(h->qh + i) % PHTTP_QUEUE]);
	free(h->d[1].head);
	buf_free(&h->d[1].body);
	free(h);
	c->hx = NULL;
}

/* The stream is not HTTP (or no longer followed): both directions flow untouched. */
static void go_raw(struct pconn *c)
{
	c->http = 2;
	c->want_http = 0;
	for (int d = 0; d < 2; d++) {
		if (c->hx)
			c->hx->d[d].state = H_RAW;
		if (c->d[d].chain) {
			struct pchain *ch = c->d[d].chain;
			if (c->hx && c->hx->d[d].drop_idx >= 0) {
				ch->ins[c->hx->d[d].drop_idx].open = 0;
				c->hx->d[d].drop_idx = -1;
			}
			ch->scan_limit = UINT64_MAX;
			relay_kick(c, d);
		}
	}
}

/* Does the start of buf look like a request line ("GET ", "POST ", ...)? 1 yes, 0 no,
 * -1 cannot tell yet. */
static int looks_like_request(const char *p, size_t n)
{
	static const char *const methods[] = {"GET ",     "HEAD ",  "POST ",  "PUT ",    "DELETE ",
	                                      "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t k = strlen(methods[i]);
		size_t m = n < k ? n : k;
		if (!memcmp(p, methods[i], m))
			return n >= k ? 1 : -1;
	}
	return 0;
}

/* A header line list rewritten: drop every `name`, then add name: value (add and
 * replace; replace only when it was there). Returns a new head (malloc) or NULL. */
static char *rewrite_head(const char *head, size_t len, const struct toxic *t, size_t *outlen)
{
	const char *name = toxic_str(t, "name"), *value = toxic_str(t, "value");
	int action = (int)toxic_num(t, "action"); /* add, drop, replace */
	size_t nlen = strlen(name);
	size_t cap = len + nlen + strlen(value) + 8;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	int found = 0;
	/* the start line */
	const char *nl = memchr(head, '\n', len);
	size_t first = nl ? (size_t)(nl - head) + 1 : len;
	memcpy(out, head, first);
	o = i = first;
	while (i < len) {
		const char *e = memchr(head + i, '\n', len - i);
		size_t ll = e ? (size_t)(e - (head + i)) + 1 : len - i;
		const char *line = head + i;
		int blank = ll <= 2 && (line[0] == '\r' || line[0] == '\n');
		if (blank) {
			if (action == 0 || (action == 2 && found)) {
				o += (size_t)snprintf(out + o, cap - o, "%s: %s\r\n", name, value);
			}
			memcpy(out + o, line, ll);
			o += ll;
			i += ll;
			continue;
		}
		int match = ll > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen);
		if (match)
			found = 1;
		if (!match || action == 0) {
			memcpy(out + o, line, ll);
			o += ll;
		}
		i += ll;
	}
	*outlen = o;
	return out;
}

/* Every active http_header toxic of ch, in chain order, applied to the head; adds the
 * rewritten head and the drop of the original at start. */
static void rewrite_heads(struct pchain *ch, const char *p, size_t hl, uint64_t start)
{
	char *cur = NULL;
	size_t cl = hl;
	for (size_t i = 0; i < ch->nts; i++) {
		struct tstate *st = &ch->ts[i];
		if (!st->active || st->t->type->kind != TK_HTTP_HEADER)
			continue;
		size_t nl;
		char *nh = rewrite_head(cur ? cur : p, cl, st->t, &nl);
		if (!nh)
			break;
		free(cur);
		cur = nh;
		cl = nl;
	}
	if (!cur)
		return;
	if (ch->ins_count + 2 > PROXY_INS_MAX) {
		free(cur);
		return;
	}
	struct pins *in = pchain_ins_add(ch, PI_INSERT, start);
	in->data = cur;
	in->dlen = cl;
	in = pchain_ins_add(ch, PI_DROP, start);
	in->len = hl;
}

static struct phttp_req *q_front(struct phttp *h)
{
	return h->qn ? &h->q[h->qh] : NULL;
}

static void q_pop(struct phttp *h)
{
	req_free(&h->q[h->qh]);
	h->qh = (h->qh + 1) % PHTTP_QUEUE;
	h->qn--;
}

static void har_emit(struct pconn *c, struct phttp_req *r, const char *rh, size_t rhl, const char *rb,
                     size_t rbl, uint64_t rbs, uint64_t t_head, const char *comment)
{
	struct record *rec = c->p->srv->rec;
	if (!rec || !r->head)
		return;
	uint64_t now = wall_us();
	struct har_entry e = {
	        .start_us = r->t_start,
	        .wait_us = t_head > r->t_start ? t_head - r->t_start : 0,
	        .receive_us = now > t_head ? now - t_head : 0,
	        .req_head = r->head,
	        .req_head_len = r->head_len,
	        .req_body = buf_start(&r->body),
	        .req_body_len = buf_used(&r->body),
	        .req_body_size = r->body_size,
	        .resp_head = rh,
	        .resp_head_len = rhl,
	        .resp_body = rb,
	        .resp_body_len = rbl,
	        .resp_body_size = rbs,
	        .host = c->p->listen,
	        .comment = comment,
	};
	record_har(rec, &e);
}

/* Injects the answers of failed requests that are next in line on the response
 * stream (after the responses the upstream still owes). */
static void inject_ready(struct pconn *c)
{
	struct phttp *h = c->hx;
	struct pchain *dn = c->d[PROXY_DOWN].chain;
	if (!dn || h->d[PROXY_DOWN].state != H_START)
		return;
	struct phttp_req *r;
	while ((r = q_front(h)) && r->fail) {
		char body[256], *resp = malloc(512);
		if (!resp)
			return;
		int bl = snprintf(body, sizeof body, "%d %s: injected by loopkit proxy (toxic %s)\n",
		                  r->status, lk_http_reason(r->status), r->toxic ? r->toxic->name : "?");
		int n = snprintf(
		        resp, 512,
		        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
		        "X-Loopkit-Toxic: %s\r\n\r\n%s",
		        r->status, lk_http_reason(r->status), bl, r->toxic ? r->toxic->name : "?",
		        r->head_only ? "" : body);
		struct pins *in = pchain_ins_add(dn, PI_INSERT, h->d[PROXY_DOWN].scan);
		if (!in) {
			free(resp);
			return;
		}
		in->data = resp;
		in->dlen = (size_t)n;
		const char *hend = strstr(resp, "\r\n\r\n");
		size_t hl = (size_t)(hend - resp) + 4;
		har_emit(c, r, resp, hl, resp + hl, (size_t)n - hl, (uint64_t)n - hl, wall_us(),
		         "injected by http_fail");
		q_pop(h);
		relay_kick(c, PROXY_DOWN);
	}
}

/* Body bytes p[0..n) of direction d's current message were framed; HAR keeps some. */
static void body_bytes(struct pconn *c, int d, const char *p, size_t n)
{
	struct phttp *h = c->hx;
	if (!h->har)
		return;
	struct buf *b;
	uint64_t *size;
	if (d == PROXY_UP) {
		if (!h->qn)
			return;
		struct phttp_req *r = &h->q[(h->qh + h->qn - 1) % PHTTP_QUEUE];
		b = &r->body;
		size = &r->body_size;
	} else {
		b = &h->d[1].body;
		size = &h->d[1].body_size;
	}
	*size += n;
	size_t room = b->max - buf_used(b);
	buf_append(b, p, n < room ? n : room);
}

/* A message of direction d ended at offset end. */
static void message_done(struct pconn *c, int d, uint64_t end)
{
	struct phttp *h = c->hx;
	struct phttp_dir *hd = &h->d[d];
	struct pchain *ch = c->d[d].chain;
	hd->state = H_START;
	hd->last_len = 0;
	hd->cut_at = 0;
	if (hd->drop_idx >= 0) {
		struct pins *in = &ch->ins[hd->drop_idx];
		in->len = end - in->at;
		in->open = 0;
		hd->drop_idx = -1;
	}
	if (d == PROXY_DOWN) {
		struct phttp_req *r = q_front(h);
		if (r && !r->fail) {
			har_emit(c, r, hd->head, hd->head_len, buf_start(&hd->body), buf_used(&hd->body),
			         hd->body_size, hd->t_head, NULL);
			q_pop(h);
		}
		free(hd->head);
		hd->head = NULL;
		buf_free(&hd->body);
		hd->body_size = 0;
		inject_ready(c);
	}
}

/* Frames body bytes of direction d from p[0..n); returns bytes that belonged to the
 * body (the message ended when less than n, or when the framer says so). */
static size_t scan_body(struct pconn *c, int d, const char *p, size_t n, int *ended, int *bad)
{
	struct phttp_dir *hd = &c->hx->d[d];
	size_t used = 0;
	const char *why;
	*ended = *bad = 0;
	if (hd->state == H_BODY_EOF) {
		body_bytes(c, d, p, n);
		return n;
	}
	int r = bench_resp_feed(&hd->fr, p, n, 0, &used, &why);
	if (r == BENCH_RESP_ERROR) {
		*bad = 1;
		return 0;
	}
	body_bytes(c, d, p, used);
	*ended = r == BENCH_RESP_DONE;
	return used;
}

/* Sets up body framing after a head: kind from the head's facts. */
static void body_begin(struct phttp_dir *hd, int chunked, uint64_t len, int eof_framed)
{
	bench_resp_reset(&hd->fr);
	hd->fr.in_body = 1;
	if (chunked) {
		hd->fr.body = RESP_BODY_CHUNKED;
	} else if (eof_framed) {
		hd->fr.body = RESP_BODY_EOF;
	} else {
		hd->fr.body = RESP_BODY_LENGTH;
		hd->fr.left = len;
	}
	hd->state = eof_framed ? H_BODY_EOF : H_BODY;
}

/* A whole request head of hl bytes at the front of p (offset start). Returns 0, or -1
 * to give up on HTTP. */
static int request_head(struct pconn *c, struct pchain *ch, const char *p, size_t hl, uint64_t start,
                        struct http_request *req)
{
	struct phttp *h = c->hx;
	struct phttp_dir *hd = &h->d[PROXY_UP];
	struct proxy_server *s = c->p->srv;
	if (h->qn == PHTTP_QUEUE || ch->ins_count + 3 > PROXY_INS_MAX)
		return -1;
	int chunked = 0, upgrade = 0;
	uint64_t len = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *hh = &req->headers[i];
		if (http_slice_ieq(hh->name, "content-length")) {
			len = 0;
			for (size_t k = 0;
			     k < hh->value.len && hh->value.p[k] >= '0' && hh->value.p[k] <= '9'; k++)
				len = len * 10 + (uint64_t)(hh->value.p[k] - '0');
		} else if (http_slice_ieq(hh->name, "transfer-encoding")) {
			chunked = 1;
		} else if (http_slice_ieq(hh->name, "upgrade")) {
			upgrade = 1;
		}
	}
	if (http_slice_ieq(req->method, "CONNECT"))
		upgrade = 1;
	struct phttp_req *r = &h->q[(h->qh + h->qn++) % PHTTP_QUEUE];
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, PROXY_HAR_BODY_MAX);
	r->head_only = http_slice_ieq(req->method, "HEAD");
	r->upgrade = (uint8_t)upgrade;
	r->t_start = wall_us();
	if (h->har && (r->head = malloc(hl)) != NULL) {
		memcpy(r->head, p, hl);
		r->head_len = hl;
	}
	struct tstate *fail = pchain_toxic(ch, TK_HTTP_FAIL);
	if (fail) {
		struct toxic *t = (struct toxic *)fail->t;
		t->seen++;
		if (t->seen <= (uint64_t)t->num[0] || proxy_rand01(s) < t->num[1]) {
			r->fail = 1;
			r->status = (uint16_t)t->num[2];
			r->toxic = t;
			t->applied++;
			struct pins *in = pchain_ins_add(ch, PI_DROP, start);
			in->len = hl + (chunked ? 0 : len);
			if (chunked) {
				in->open = 1;
				hd->drop_idx = (int)(in - ch->ins);
			}
		}
	}
	if (!r->fail) {
		struct tstate *dl = pchain_toxic(ch, TK_HTTP_DELAY);
		if (dl) {
			struct pins *in = pchain_ins_add(ch, PI_HOLD, start);
			in->until = relay_now_us() + (uint64_t)dl->t->num[0] * 1000;
		}
		rewrite_heads(ch, p, hl, start);
	}
	hd->body_start = start + hl;
	if (upgrade) {
		/* After an upgrade (WebSocket) or CONNECT the bytes are no longer HTTP. A
		 * failed one is answered still: its head was dropped, the upstream never saw
		 * it, and the client waits for an answer. */
		hd->scan = start + hl;
		ch->scan_limit = hd->scan;
		if (r->fail)
			inject_ready(c);
		return -1;
	}
	if (chunked || len)
		body_begin(hd, chunked, len, 0);
	else
		message_done(c, PROXY_UP, start + hl);
	if (r->fail)
		inject_ready(c);
	return 0;
}

/* A whole response head of hl bytes at p (offset start). */
static int response_head(struct pconn *c, struct pchain *ch, const char *p, size_t hl, uint64_t start)
{
	struct phttp *h = c->hx;
	struct phttp_dir *hd = &h->d[PROXY_DOWN];
	struct phttp_req *r = q_front(h);
	const char *why;
	size_t used = 0;
	if (hl >= 12 && p[9] == '1') { /* 1xx: an interim response; the real one follows */
		hd->scan = start + hl;
		return 0;
	}
	bench_resp_reset(&hd->fr);
	int rr = bench_resp_feed(&hd->fr, p, hl, r ? r->head_only : 0, &used, &why);
	if (rr == BENCH_RESP_ERROR || used != hl)
		return -1;
	if (h->har) {
		free(hd->head);
		hd->head = malloc(hl);
		if (hd->head)
			memcpy(hd->head, p, hl);
		hd->head_len = hd->head ? hl : 0;
		hd->t_head = wall_us();
	}
	rewrite_heads(ch, p, hl, start);
	hd->body_start = start + hl;
	hd->cut_at = 0;
	struct tstate *cut = pchain_toxic(ch, TK_HTTP_CUT);
	if (cut && rr != BENCH_RESP_DONE) {
		hd->cut_at = start + hl + (uint64_t)cut->t->num[0];
		hd->cut_reset = cut->t->num[1] != 0;
		hd->cut_toxic = (struct toxic *)cut->t;
	}
	if (rr == BENCH_RESP_DONE) {
		message_done(c, PROXY_DOWN, start + hl);
		return 0;
	}
	hd->state = hd->fr.body == RESP_BODY_EOF ? H_BODY_EOF : H_BODY;
	return 0;
}

void phttp_eof(struct pconn *c, struct pchain *ch)
{
	if (c->hx && ch->d == PROXY_DOWN && c->hx->d[PROXY_DOWN].state == H_BODY_EOF)
		message_done(c, PROXY_DOWN, c->hx->d[PROXY_DOWN].scan);
}

int phttp_scan(struct pconn *c, struct pchain *ch)
{
	int d = ch->d;
	if (c->http == 2 || !c->want_http)
		return -1;
	struct phttp *h = hx_get(c);
	if (!h) {
		go_raw(c);
		return -1;
	}
	struct phttp_dir *hd = &h->d[d];
	if (hd->state == H_RAW)
		return -1;
	for (;;) {
		const char *base = buf_start(&ch->b) + (hd->scan - ch->tx_off);
		size_t avail = (size_t)(ch->rd_off - hd->scan);
		if (!avail)
			break;
		if (hd->state == H_BODY || hd->state == H_BODY_EOF) {
			size_t take = avail;
			if (hd->cut_at && hd->cut_at - hd->scan < take)
				take = (size_t)(hd->cut_at - hd->scan);
			int ended, bad;
			size_t used = scan_body(c, d, base, take, &ended, &bad);
			if (bad)
				goto raw;
			hd->scan += used;
			if (hd->cut_at && hd->scan == hd->cut_at) {
				struct pins *in = pchain_ins_add(ch, PI_CLOSE, hd->scan);
				if (in)
					in->reset = (uint8_t)hd->cut_reset;
				hd->cut_toxic->applied++;
				ch->scan_limit = hd->scan;
				hd->state = H_RAW; /* nothing after the cut is sent */
				return 0;
			}
			if (ended)
				message_done(c, d, hd->scan);
			else if (used < take)
				goto raw;
			continue;
		}
		/* H_START: a head must be complete before anything of it is sent. */
		if (d == PROXY_UP) {
			if (!c->http) {
				int lr = looks_like_request(base, avail);
				if (lr < 0)
					break;
				if (!lr)
					goto raw;
				c->http = 1;
			}
			struct http_request *req = malloc(sizeof(*req));
			if (!req)
				goto raw;
			int hl = http_parse_request(base, avail, req, hd->last_len);
			if (hl == HTTP_PARSE_INCOMPLETE) {
				hd->last_len = avail;
				free(req);
				break;
			}
			if (hl < 0) {
				free(req);
				goto raw;
			}
			uint64_t start = hd->scan;
			hd->scan += (uint64_t)hl;
			hd->last_len = 0;
			int r = request_head(c, ch, base, (size_t)hl, start, req);
			free(req);
			if (r < 0)
				goto raw;
		} else {
			if (c->http != 1)
				goto raw; /* the server spoke first: not HTTP */
			size_t he = 0;
			for (size_t i = hd->last_len > 3 ? hd->last_len - 3 : 0; i < avail; i++) {
				if (base[i] == '\n' &&
				    ((i >= 1 && base[i - 1] == '\n') ||
				     (i >= 2 && base[i - 1] == '\r' && base[i - 2] == '\n'))) {
					he = i + 1;
					break;
				}
			}
			if (!he) {
				if (avail > BENCH_RESP_MAX_HEAD)
					goto raw;
				hd->last_len = avail;
				break;
			}
			uint64_t start = hd->scan;
			hd->scan += he;
			hd->last_len = 0;
			if (response_head(c, ch, base, he, start) < 0)
				goto raw;
		}
	}
	ch->scan_limit = hd->scan;
	return 0;
raw:
	go_raw(c);
	return -1;
}
