/* files.c - static files under the root: cache, conditionals, ranges, listings, PUT, DELETE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/json.h"
#include "http/conn.h"

/* ---- small helpers ---- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void make_etag(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
	         (unsigned long long)st->st_size,
	         (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
	                 (unsigned long long)st->st_mtim.tv_nsec);
}

static const struct http_header *hdr(const struct http_reqinfo *ri, const char *name)
{
	return http_find_header(ri->req, name);
}

/* Strips W/ and compares opaque tags (weak comparison, RFC 9110 8.8.3.2). */
static int etag_weak_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen >= 2 && a[0] == 'W' && a[1] == '/') {
		a += 2;
		alen -= 2;
	}
	if (blen >= 2 && b[0] == 'W' && b[1] == '/') {
		b += 2;
		blen -= 2;
	}
	return alen == blen && !memcmp(a, b, alen);
}

/* Does an If-None-Match list match etag? */
static int inm_matches(struct http_slice v, const char *etag)
{
	size_t elen = strlen(etag), i = 0;
	while (i < v.len) {
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		size_t s = i;
		if (i < v.len && v.p[i] == '*')
			return 1;
		if (i + 1 < v.len && v.p[i] == 'W' && v.p[i + 1] == '/')
			i += 2;
		if (i < v.len && v.p[i] == '"') {
			const char *q = memchr(v.p + i + 1, '"', v.len - i - 1);
			if (!q)
				return 0;
			i = (size_t)(q - v.p) + 1;
			if (etag_weak_eq(v.p + s, i - s, etag, elen))
				return 1;
		} else {
			while (i < v.len && v.p[i] != ',')
				i++;
		}
	}
	return 0;
}

/* 1 when the conditional headers say "not modified". */
static int not_modified(const struct http_reqinfo *ri, const char *etag, time_t mtime)
{
	const struct http_header *inm = hdr(ri, "if-none-match");
	if (inm)
		return inm_matches(inm->value, etag);
	const struct http_header *ims = hdr(ri, "if-modified-since");
	time_t t;
	if (ims && http_date_parse(ims->value.p, ims->value.len, &t) == 0)
		return mtime <= t;
	return 0;
}

/* Percent-encodes a path for a URL (keeps unreserved characters and '/'). */
static void url_encode(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/') {
			buf_append(b, s + i, 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			buf_append(b, e, 3);
		}
	}
}

static void html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '&': buf_puts(b, "&amp;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&#39;"); break;
		default: buf_append(b, s, 1);
		}
	}
}

static void respond_errno(struct http_conn *c, int err)
{
	const struct lk_error *e = lk_error(lk_err_from_errno(err));
	resp_error(c, e->http, e->msg);
}

static void allow_header(struct http_conn *c)
{
	resp_header(c, "Allow",
	            c->w->srv->cfg.write ? "GET, HEAD, OPTIONS, PUT, DELETE" : "GET, HEAD, OPTIONS");
}

/* ---- the per-thread cache of small files ----
 *
 * Small files are kept in memory per thread, so the hot path makes no file-system
 * call at all. Freshness comes from inotify: each entry watches its file's inode (so
 * a write through any path is seen) and its directory (so a rename, delete or
 * replacement of the name is seen); an event drops the entries at once. As a
 * backstop for what inotify cannot see (a parent directory renamed, a directory
 * symlink retargeted), a path is stat'ed again when its entry is older than
 * HTTP_CACHE_RECHECK_MS. Without inotify, every hit is checked with a stat. */

static void cache_unwatch(struct http_worker *w, int wd, const struct http_cache_entry *skip)
{
	if (wd < 0 || w->ino_io.fd < 0)
		return;
	for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
		const struct http_cache_entry *e = &w->cache[i];
		if (e != skip && e->path && (e->wd == wd || e->dwd == wd))
			return; /* still used by another entry */
	}
	inotify_rm_watch(w->ino_io.fd, wd);
}

static void cache_entry_free(struct http_worker *w, struct http_cache_entry *e)
{
	int wd = e->wd, dwd = e->dwd;
	free(e->path);
	free(e->data);
	e->path = NULL;
	e->data = NULL;
	cache_unwatch(w, wd, e);
	cache_unwatch(w, dwd, e);
	memset(e, 0, sizeof(*e));
	e->wd = e->dwd = -1;
}

void files_cache_clear(struct http_worker *w)
{
	for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++)
		if (w->cache[i].path)
			cache_entry_free(w, &w->cache[i]);
	if (w->ino_io.fd >= 0 && w->loop) {
		int fd = w->ino_io.fd;
		loop_io_stop(w->loop, &w->ino_io);
		close(fd);
	}
}

static void inotify_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct http_worker *w = io->data;
	char evbuf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(io->fd, evbuf, sizeof(evbuf));
		if (n <= 0)
			return;
		for (char *p = evbuf; p < evbuf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
				struct http_cache_entry *e = &w->cache[i];
				if (e->path &&
				    ((ev->mask & IN_Q_OVERFLOW) || e->wd == ev->wd || e->dwd == ev->wd)) {
					if (ev->mask & IN_IGNORED) {
						/* The kernel dropped this watch: forget it, do not remove it.
						 */
						if (e->wd == ev->wd)
							e->wd = -1;
						if (e->dwd == ev->wd)
							e->dwd = -1;
					}
					cache_entry_free(w, e);
				}
			}
		}
	}
}

int files_cache_init(struct http_worker *w)
{
	for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++)
		w->cache[i].wd = w->cache[i].dwd = -1;
	w->ino_io.fd = -1;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return 0; /* no inotify: every cache hit is checked with a stat */
	if (loop_io_start(w->loop, &w->ino_io, fd, LOOP_READ, inotify_cb, w) < 0) {
		close(fd);
		return 0;
	}
	return 0;
}

static int stat_same(const struct stat *a, const struct http_cache_entry *e)
{
	return a->st_ino == e->ino && a->st_dev == e->dev && a->st_size == e->size &&
	       a->st_mtim.tv_sec == e->mtime.tv_sec && a->st_mtim.tv_nsec == e->mtime.tv_nsec &&
	       a->st_ctim.tv_sec == e->ctime.tv_sec && a->st_ctim.tv_nsec == e->ctime.tv_nsec;
}

/* A fresh entry for rel, or NULL. The entry's content came from a descriptor that
 * openat2 confined to the root; a plain stat of the same path only decides whether it
 * is still current. If that stat follows a swapped-in symlink elsewhere it finds
 * another inode and we fall back to the confined open, so the cache never serves
 * anything the confined open would not. */
static struct http_cache_entry *cache_lookup(struct http_worker *w, const char *rel, uint32_t h)
{
	struct http_cache_entry *e = &w->cache[h % HTTP_CACHE_SLOTS];
	struct stat st;
	uint64_t now = loop_now(w->loop);
	if (!e->path || e->hash != h || strcmp(e->path, rel))
		return NULL;
	if (e->wd >= 0 && e->dwd >= 0 && now - e->checked < HTTP_CACHE_RECHECK_MS)
		return e;
	if (fstatat(w->srv->root.fd, rel, &st, 0) < 0 || !stat_same(&st, e)) {
		cache_entry_free(w, e);
		return NULL;
	}
	e->checked = now;
	return e;
}

/* Watches the object behind fd. /proc/self/fd names exactly the inode we opened, so
 * the path is not resolved a second time. */
static int watch_fd(struct http_worker *w, int fd, uint32_t mask)
{
	char p[64];
	if (w->ino_io.fd < 0)
		return -1;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return inotify_add_watch(w->ino_io.fd, p, mask);
}

static struct http_cache_entry *cache_store(struct http_worker *w, const char *rel, uint32_t h, int fd,
                                            const struct stat *st)
{
	struct http_cache_entry *e = &w->cache[h % HTTP_CACHE_SLOTS];
	char *data = malloc(st->st_size ? (size_t)st->st_size : 1);
	char *path = strdup(rel);
	size_t got = 0;
	if (!data || !path)
		goto fail;
	while (got < (size_t)st->st_size) {
		ssize_t r = pread(fd, data + got, (size_t)st->st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto fail; /* changed under us: do not cache */
		got += (size_t)r;
	}
	if (e->path)
		cache_entry_free(w, e);
	/* Watch before the content is trusted: a change after this point is reported. */
	e->wd = watch_fd(w, fd, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
	const char *name;
	int dfd = fsroot_open_parent(&w->srv->root, rel, &name);
	e->dwd = dfd >= 0 ? watch_fd(w, dfd,
	                             IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
	                                     IN_MOVE_SELF | IN_ONLYDIR)
	                  : -1;
	if (dfd >= 0)
		close(dfd);
	e->path = path;
	e->hash = h;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime = st->st_mtim;
	e->ctime = st->st_ctim;
	e->data = data;
	e->mime = http_mime_type(rel);
	e->checked = loop_now(w->loop);
	make_etag(st, e->etag, sizeof(e->etag));
	http_date_format(st->st_mtim.tv_sec, e->lastmod);
	return e;
fail:
	free(data);
	free(path);
	return NULL;
}

/* ---- serving a regular file ---- */

struct file_view {
	const char *mime;
	const char *etag;
	const char *lastmod;
	time_t mtime;
	uint64_t size;
};

/* Handles conditionals and ranges, writes the head. Returns 0 when no body follows,
 * else 1 with *first..*len the bytes to send. */
static int file_head(struct http_conn *c, const struct http_reqinfo *ri, const struct file_view *v,
                     uint64_t *first, uint64_t *len)
{
	if (not_modified(ri, v->etag, v->mtime)) {
		resp_start(c, 304);
		resp_header(c, "ETag", v->etag);
		resp_header(c, "Last-Modified", v->lastmod);
		resp_end_headers(c, NULL, 0, 0);
		return 0;
	}
	uint64_t a = 0, b = 0;
	enum http_range_result rr = HTTP_RANGE_NONE;
	const struct http_header *range = hdr(ri, "range");
	if (range && ri->method == M_GET) {
		const struct http_header *ifr = hdr(ri, "if-range");
		int use = 1;
		if (ifr) {
			time_t t;
			if (ifr->value.len && ifr->value.p[0] == '"')
				use = ifr->value.len == strlen(v->etag) &&
				      !memcmp(ifr->value.p, v->etag, ifr->value.len);
			else if (http_date_parse(ifr->value.p, ifr->value.len, &t) == 0)
				use = t == v->mtime;
			else
				use = 0; /* weak tags never match If-Range */
		}
		if (use)
			rr = http_parse_range(range->value.p, range->value.len, v->size, &a, &b);
	}
	if (rr == HTTP_RANGE_UNSATISFIABLE) {
		resp_start(c, 416);
		resp_headerf(c, "Content-Range", "bytes */%llu", (unsigned long long)v->size);
		static const char msg[] =
		        "416 Range Not Satisfiable: the range starts past the end of the file\n";
		resp_send_mem(c, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
		return 0;
	}
	resp_start(c, rr == HTTP_RANGE_OK ? 206 : 200);
	resp_header(c, "Last-Modified", v->lastmod);
	resp_header(c, "ETag", v->etag);
	resp_header(c, "Accept-Ranges", "bytes");
	if (rr == HTTP_RANGE_OK) {
		resp_headerf(c, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)a,
		             (unsigned long long)b, (unsigned long long)v->size);
		*first = a;
		*len = b - a + 1;
	} else {
		*first = 0;
		*len = v->size;
	}
	resp_end_headers(c, v->mime, *len, 0);
	return !c->head_only;
}

static void serve_cached(struct http_conn *c, const struct http_reqinfo *ri, struct http_cache_entry *e)
{
	struct file_view v = {e->mime, e->etag, e->lastmod, e->mtime.tv_sec, (uint64_t)e->size};
	uint64_t first, len;
	if (file_head(c, ri, &v, &first, &len)) {
		buf_append(&c->out, e->data + first, (size_t)len);
		c->body_bytes += len;
	}
}

/* Serves the open regular file fd (takes ownership). */
static void serve_fd(struct http_conn *c, const struct http_reqinfo *ri, const char *rel, int fd,
                     const struct stat *st)
{
	struct http_worker *w = c->w;
	if (st->st_size <= HTTP_CACHE_FILE_MAX) {
		uint32_t h = hash_str(rel);
		struct http_cache_entry *e = cache_store(w, rel, h, fd, st);
		if (e) {
			close(fd);
			serve_cached(c, ri, e);
			return;
		}
	}
	char etag[64], lastmod[32];
	make_etag(st, etag, sizeof(etag));
	http_date_format(st->st_mtim.tv_sec, lastmod);
	struct file_view v = {http_mime_type(rel), etag, lastmod, st->st_mtim.tv_sec, (uint64_t)st->st_size};
	uint64_t first, len;
	if (!file_head(c, ri, &v, &first, &len) || !len) {
		close(fd);
		return;
	}
	c->file_fd = fd;
	c->file_off = (off_t)first;
	c->rb_left = len;
	c->rb = RB_FILE;
}

/* ---- directory listings ---- */

static void iso_time(time_t t, char *out, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void human_size(uint64_t n, char *out, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%llu B", (unsigned long long)n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static void serve_listing(struct http_conn *c, const struct http_reqinfo *ri, const char *rel)
{
	struct fsroot_dent *v;
	size_t n, hidden_more;
	char path[PATH_MAX];
	int rc = fsroot_list(&c->w->srv->root, rel, HTTP_MAX_LISTING, &v, &n, &hidden_more);
	if (rc < 0) {
		respond_errno(c, -rc);
		return;
	}
	struct buf body;
	buf_init(&body, HTTP_OUT_MAX / 2);
	char when[32], size[32];
	if (ri->accept_json) {
		struct json j;
		json_init(&j, &body, 0);
		json_obj_begin(&j);
		json_key(&j, "path");
		snprintf(path, sizeof(path), "/%s%s", rel, *rel ? "/" : "");
		json_str(&j, path);
		json_key(&j, "entries");
		json_arr_begin(&j);
		for (size_t i = 0; i < n; i++) {
			json_obj_begin(&j);
			json_key(&j, "name");
			json_str(&j, v[i].name);
			json_key(&j, "type");
			json_str(&j, v[i].is_dir ? "dir" : "file");
			json_key(&j, "size");
			json_uint(&j, v[i].size);
			json_key(&j, "mtime");
			iso_time(v[i].mtime.tv_sec, when, sizeof(when));
			json_str(&j, when);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		if (hidden_more) {
			json_key(&j, "truncated");
			json_uint(&j, hidden_more);
		}
		json_obj_end(&j);
		buf_append(&body, "\n", 1);
	} else {
		snprintf(path, sizeof(path), "/%s%s", rel, *rel ? "/" : "");
		buf_puts(&body, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		                "<meta name=\"viewport\" content=\"width=device-width\"><title>Index of ");
		html_escape(&body, path);
		buf_puts(&body, "</title><style>body{font:14px system-ui,sans-serif;margin:2em}"
		                "table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}"
		                "td.s{text-align:right}tr:hover{background:#eef}a{text-decoration:none}"
		                "</style></head><body><h1>Index of ");
		html_escape(&body, path);
		buf_puts(&body, "</h1><table><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n");
		if (*rel)
			buf_puts(&body, "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
		for (size_t i = 0; i < n; i++) {
			buf_puts(&body, "<tr><td><a href=\"");
			/* "./" keeps a name like "a:b" from reading as a URL scheme. */
			buf_puts(&body, "./");
			url_encode(&body, v[i].name, strlen(v[i].name));
			if (v[i].is_dir)
				buf_puts(&body, "/");
			buf_puts(&body, "\">");
			html_escape(&body, v[i].name);
			if (v[i].is_dir)
				buf_puts(&body, "/");
			buf_puts(&body, "</a></td><td class=\"s\">");
			if (!v[i].is_dir) {
				human_size(v[i].size, size, sizeof(size));
				buf_puts(&body, size);
			}
			buf_puts(&body, "</td><td>");
			iso_time(v[i].mtime.tv_sec, when, sizeof(when));
			buf_puts(&body, when);
			buf_puts(&body, "</td></tr>\n");
		}
		buf_puts(&body, "</table>");
		if (hidden_more)
			buf_printf(&body, "<p>%zu more entries not shown.</p>", hidden_more);
		buf_puts(&body, "<footer><p><small>loopkit " LOOPKIT_VERSION
		                "</small></p></footer></body></html>\n");
	}
	fsroot_list_free(v, n);
	resp_start(c, 200);
	resp_header(c, "Cache-Control", "no-cache");
	resp_header(c, "Vary", "Accept");
	resp_send_mem(c, ri->accept_json ? "application/json" : "text/html; charset=utf-8",
	              buf_start(&body) ? buf_start(&body) : "", buf_used(&body));
	buf_free(&body);
}

/* ---- routing ---- */

static void redirect_slash(struct http_conn *c, const struct http_reqinfo *ri, const char *rel)
{
	/* Built from the normalised path, so it always starts with exactly one '/':
	 * "//evil.example" can never come out (CVE-2021-28861 in python's server). */
	struct buf loc;
	buf_init(&loc, PATH_MAX * 3 + HTTP_MAX_URI);
	buf_puts(&loc, "/");
	url_encode(&loc, rel, strlen(rel));
	buf_puts(&loc, "/");
	if (ri->query.len) {
		buf_puts(&loc, "?");
		buf_append(&loc, ri->query.p, ri->query.len);
	}
	buf_append(&loc, "", 1);
	resp_start(c, 301);
	resp_header(c, "Location", loc.data ? loc.data : "/");
	static const char msg[] = "301 Moved Permanently: directories end with a slash\n";
	resp_send_mem(c, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
	buf_free(&loc);
}

void files_options(struct http_conn *c, const struct http_reqinfo *ri)
{
	const struct http_header *acrm = hdr(ri, "access-control-request-method");
	const struct http_header *origin = hdr(ri, "origin");
	resp_start(c, 204);
	allow_header(c);
	if (c->w->srv->cfg.cors && acrm && origin) {
		resp_header(c, "Access-Control-Allow-Methods",
		            "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE");
		const struct http_header *acrh = hdr(ri, "access-control-request-headers");
		if (acrh)
			resp_headerf(c, "Access-Control-Allow-Headers", "%.*s", (int)acrh->value.len,
			             acrh->value.p);
		resp_header(c, "Access-Control-Max-Age", "86400");
		const struct http_header *pna = hdr(ri, "access-control-request-private-network");
		if (pna && http_slice_ieq(pna->value, "true"))
			resp_header(c, "Access-Control-Allow-Private-Network", "true");
	}
	resp_end_headers(c, NULL, 0, 0);
}

static int normalize(struct http_conn *c, const struct http_reqinfo *ri, char *rel, size_t len, int *slash)
{
	int r = http_path_normalize(ri->path.p, ri->path.len, rel, len, slash);
	if (r == HTTP_PATH_OK)
		return 0;
	if (r == HTTP_PATH_TOO_LONG)
		resp_error(c, 414, "path too long");
	else if (r == HTTP_PATH_ESCAPES)
		resp_error(c, 400, "path climbs above the served directory");
	else
		resp_error(c, 400, "malformed path (bad escape or NUL byte)");
	return -1;
}

static int has_extension(const char *rel)
{
	const char *last = strrchr(rel, '/');
	return strchr(last ? last + 1 : rel, '.') != NULL;
}

void files_handle(struct http_conn *c, const struct http_reqinfo *ri)
{
	struct http_server *s = c->w->srv;
	char rel[PATH_MAX];
	int slash;
	if (ri->req->target.len == 1 && ri->req->target.p[0] == '*') {
		files_options(c, ri);
		return;
	}
	switch (ri->method) {
	case M_GET:
	case M_HEAD: break;
	case M_OPTIONS: files_options(c, ri); return;
	case M_PUT:
	case M_DELETE:
		if (!s->cfg.write) {
			resp_error(c, 405,
			           "the server is read-only; start it with --write to allow PUT and DELETE");
			return;
		}
		if (ri->method == M_PUT) {
			/* A PUT with an empty body: create an empty file. */
			if (files_put_begin(c, ri) == 0)
				files_put_finish(c, 0);
			return;
		}
		if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
			return;
		if (!*rel) {
			resp_error(c, 405, "the root cannot be deleted");
			return;
		}
		int r = fsroot_remove(&s->root, rel);
		if (r < 0) {
			respond_errno(c, -r);
			return;
		}
		resp_start(c, 204);
		resp_end_headers(c, NULL, 0, 0);
		return;
	case M_OTHER: resp_error(c, 501, "method not implemented"); return;
	default: resp_error(c, 405, "method not allowed on files"); return;
	}

	/* Fast path: a small file served from the cache. */
	if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
		return;
	if (fsroot_hidden(&s->root, rel)) {
		resp_error(c, 404, "no such file or directory");
		return;
	}
	uint32_t h = hash_str(rel);
	struct http_cache_entry *e = *rel && !slash ? cache_lookup(c->w, rel, h) : NULL;
	if (e) {
		serve_cached(c, ri, e);
		return;
	}
	int fd = fsroot_open(&s->root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd == -ENOENT && s->cfg.spa && !has_extension(rel)) {
		strcpy(rel, "index.html");
		slash = 0;
		fd = fsroot_open(&s->root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	}
	if (fd < 0) {
		respond_errno(c, -fd);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		respond_errno(c, errno);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!slash) {
			close(fd);
			redirect_slash(c, ri, rel);
			return;
		}
		char idx[PATH_MAX + 16];
		snprintf(idx, sizeof(idx), "%s%sindex.html", rel, *rel ? "/" : "");
		int ifd = fsroot_open(&s->root, idx, O_RDONLY | O_NOCTTY | O_NONBLOCK);
		struct stat ist;
		if (ifd >= 0 && fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode)) {
			close(fd);
			serve_fd(c, ri, idx, ifd, &ist);
			return;
		}
		if (ifd >= 0)
			close(ifd);
		close(fd);
		serve_listing(c, ri, rel);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		resp_error(c, 403, "not a regular file");
		return;
	}
	if (slash) {
		close(fd);
		resp_error(c, 404, "no such directory");
		return;
	}
	serve_fd(c, ri, rel, fd, &st);
}

/* ---- uploads ---- */

int files_put_begin(struct http_conn *c, const struct http_reqinfo *ri)
{
	struct http_server *s = c->w->srv;
	char rel[PATH_MAX];
	int slash;
	if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
		return -1;
	if (!*rel || slash) {
		resp_error(c, 409, "PUT needs a file name, not a directory");
		return -1;
	}
	int r = fsroot_upload_begin(&s->root, rel, &c->up);
	if (r < 0) {
		if (r == -ENOENT && !fsroot_hidden(&s->root, rel))
			resp_error(c, 409, lk_error(LK_E_ENOPARENT)->msg);
		else if (r == -ENOTDIR)
			resp_error(c, 409, lk_error(LK_E_ENOPARENT)->msg);
		else
			respond_errno(c, -r);
		return -1;
	}
	return 0;
}

void files_put_finish(struct http_conn *c, int err)
{
	int existed = c->up.existed;
	if (!err)
		err = fsroot_upload_commit(&c->up);
	else
		fsroot_upload_abort(&c->up);
	if (err) {
		respond_errno(c, -err);
		return;
	}
	if (existed) {
		resp_start(c, 204);
		resp_end_headers(c, NULL, 0, 0);
	} else {
		static const char msg[] = "201 Created\n";
		resp_start(c, 201);
		resp_send_mem(c, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
	}
}
