/* accesslog.c - access log lines for every protocol: common log format or JSON lines. */
#include "core/accesslog.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/loop.h"
#include "core/text.h"

void accesslog_init(struct accesslog *a, enum accesslog_mode mode, struct log_sink *sink, struct loop *loop)
{
	memset(a, 0, sizeof(*a));
	a->mode = mode;
	a->sink = sink;
	a->loop = loop;
	buf_init(&a->pending, ACCESSLOG_PENDING_MAX);
}

void accesslog_flush(struct accesslog *a)
{
	/* Whole lines, at most 4 KiB per write (under PIPE_BUF), so lines from several
	 * threads never mix even on a pipe. */
	size_t n = buf_used(&a->pending);
	const char *p = buf_start(&a->pending);
	while (n) {
		size_t chunk = n;
		if (chunk > 4096) {
			chunk = 4096;
			while (chunk > 1 && p[chunk - 1] != '\n')
				chunk--;
			if (chunk <= 1)
				chunk = 4096;
		}
		if (log_sink_write(a->sink, p, chunk) < 0) {
			if (n > chunk)
				atomic_fetch_add(&a->sink->dropped, n - chunk);
			break;
		}
		p += chunk;
		n -= chunk;
	}
	buf_consume(&a->pending, buf_used(&a->pending));
	if (a->pending.cap > 2 * ACCESSLOG_FLUSH_AT)
		buf_free(&a->pending);
}

void accesslog_free(struct accesslog *a)
{
	accesslog_flush(a);
	buf_free(&a->pending);
}

static void flush_cb(struct loop *l, void *data)
{
	struct accesslog *a = data;
	a->flush_queued = 0;
	accesslog_flush(a);
}

/* A quoted-field-safe copy of s[0..n) ("-" when absent). */
static const char *field(char *out, size_t len, const char *s, size_t n)
{
	if (!s || (!n && !*s)) {
		/* Into out as well: callers print out, not the return value. */
		snprintf(out, len, "-");
		return out;
	}
	text_escape(out, len, s, n ? n : strlen(s), TEXT_ESC_QUOTES);
	return out;
}

void accesslog_write(struct accesslog *a, const struct accesslog_rec *r)
{
	if (a->mode == ACCESSLOG_NONE)
		return;
	struct timespec now;
	struct tm tm;
	char rbuf[64], ubuf[200], mbuf[64], tbuf[1100];
	clock_gettime(CLOCK_REALTIME, &now);
	const char *remote = field(rbuf, sizeof(rbuf), r->remote, 0);
	const char *user = field(ubuf, sizeof(ubuf), r->user, 0);
	const char *method = field(mbuf, sizeof(mbuf), r->method, r->method_len);
	const char *target = field(tbuf, sizeof(tbuf), r->target, r->target_len);
	size_t before = buf_used(&a->pending);
	int rc;
	if (a->mode == ACCESSLOG_COMMON || a->mode == ACCESSLOG_COMBINED) {
		if (a->clf_sec != now.tv_sec) {
			a->clf_sec = now.tv_sec;
			gmtime_r(&now.tv_sec, &tm);
			strftime(a->clf, sizeof(a->clf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		}
		char req[sizeof(mbuf) + sizeof(tbuf) + 16];
		if (r->method)
			snprintf(req, sizeof(req), "%s %s %s", method, target, r->proto ? r->proto : "-");
		else
			snprintf(req, sizeof(req), "-");
		if (a->mode == ACCESSLOG_COMMON) {
			/* CLF, and the time taken in µs after it. */
			rc = buf_printf(&a->pending, "%s - %s [%s] \"%s\" %d %llu %llu\n", remote, user,
			                a->clf, req, r->status, (unsigned long long)r->bytes,
			                (unsigned long long)r->us);
		} else {
			/* nginx's and Apache's "combined", exactly, for log analysers. */
			char fbuf[512], abuf[512];
			rc = buf_printf(&a->pending, "%s - %s [%s] \"%s\" %d %llu \"%s\" \"%s\"\n", remote,
			                user, a->clf, req, r->status, (unsigned long long)r->bytes,
			                field(fbuf, sizeof(fbuf), r->referer, 0),
			                field(abuf, sizeof(abuf), r->ua, 0));
		}
	} else {
		char when[40], ts[64];
		gmtime_r(&now.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ts, sizeof(ts), "%s.%03ldZ", when, now.tv_nsec / 1000000);
		struct json j;
		json_init(&j, &a->pending, 0);
		json_obj_begin(&j);
		json_kstr(&j, "time", ts);
		json_kstr(&j, "remote", r->remote ? r->remote : "-");
		if (r->user && *r->user) {
			json_kstr(&j, "user", r->user);
		}
		json_key(&j, "method");
		json_str_n(&j, r->method ? r->method : "-",
		           r->method ? (r->method_len ? r->method_len : strlen(r->method)) : 1);
		json_key(&j, "target");
		json_str_n(&j, r->target ? r->target : "",
		           r->target ? (r->target_len ? r->target_len : strlen(r->target)) : 0);
		json_kstr(&j, "proto", r->proto ? r->proto : "-");
		json_kint(&j, "status", r->status);
		json_kuint(&j, "bytes", r->bytes);
		json_kuint(&j, "us", r->us);
		if (r->referer)
			json_kstr(&j, "referer", r->referer);
		if (r->ua)
			json_kstr(&j, "user_agent", r->ua);
		json_obj_end(&j);
		rc = j.err ? -1 : buf_append(&a->pending, "\n", 1);
	}
	if (rc < 0) {
		/* The buffer is full (the sink is stalled): drop this line whole. */
		a->pending.len = a->pending.off + before;
		atomic_fetch_add(&a->sink->dropped, 1);
		return;
	}
	if (buf_used(&a->pending) >= ACCESSLOG_FLUSH_AT)
		accesslog_flush(a);
	else if (!a->flush_queued && a->loop && loop_defer(a->loop, flush_cb, a) == 0)
		a->flush_queued = 1;
}
