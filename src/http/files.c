/* files.c - static files under the root: cache, conditionals, ranges, listings, PUT, DELETE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/json.h"
#include "core/dirsnap.h"
#include "http/filecache.h"
#include "http/route.h"

/* ---- small helpers ---- */

static const struct http_header *hdr(const struct http_reqinfo *ri, const char *name)
{
	return http_req_header(ri, name);
}

static const struct fsroot *root_of(const struct http_conn *c)
{
	return http_ctx_site(http_conn_ctx(c))->root;
}

static struct filecache *cache_of(const struct http_conn *c)
{
	return http_ctx_files(http_conn_ctx(c));
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

/* Does a list of entity tags (If-None-Match, If-Match) match etag? "*" matches any.
 * strong: If-Match's comparison, where a weak tag never matches (RFC 9110 8.8.3.2);
 * else the weak one. A tag may hold commas: only quotes delimit it. */
static int etag_list_matches(struct http_slice v, const char *etag, int strong)
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
			if (strong ? i - s == elen && !memcmp(v.p + s, etag, elen)
			           : etag_weak_eq(v.p + s, i - s, etag, elen))
				return 1;
		} else {
			while (i < v.len && v.p[i] != ',')
				i++;
		}
	}
	return 0;
}

/* Does any line of header `name` (an entity-tag list) match etag? A list may come in
 * several lines, which make one list (RFC 9110 5.3). -1: no such header. */
static int etag_lines_match(const struct http_reqinfo *ri, const char *name, const char *etag, int strong)
{
	const struct http_request *req = ri->req;
	size_t nlen = strlen(name);
	int seen = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->name.len != nlen || !http_slice_ieq(h->name, name))
			continue;
		seen = 1;
		if (etag && etag_list_matches(h->value, etag, strong))
			return 1;
	}
	return seen ? 0 : -1;
}

/* 1 when the conditional headers say "not modified". */
static int not_modified(const struct http_reqinfo *ri, const char *etag, time_t mtime)
{
	int inm = etag_lines_match(ri, "if-none-match", etag, 0);
	if (inm >= 0)
		return inm;
	const struct http_header *ims = hdr(ri, "if-modified-since");
	time_t t;
	if (ims && http_date_parse(ims->value.p, ims->value.len, &t) == 0)
		return mtime <= t;
	return 0;
}

/* RFC 9110 13.2.2, the steps that can fail a request whatever its method: If-Match,
 * else If-Unmodified-Since; and for a write (PUT, DELETE, MKCOL) If-None-Match, which
 * a GET answers with 304 instead. etag NULL: the target does not exist. Returns the
 * header that failed (for the 412's message), or NULL to go on. */
static const char *precondition_failed(const struct http_reqinfo *ri, const char *etag, time_t mtime,
                                       int write)
{
	int im = etag_lines_match(ri, "if-match", etag, 1);
	if (im >= 0) {
		if (!im)
			return "If-Match";
	} else {
		const struct http_header *ius = hdr(ri, "if-unmodified-since");
		time_t t;
		if (ius && etag && http_date_parse(ius->value.p, ius->value.len, &t) == 0 && mtime > t)
			return "If-Unmodified-Since";
	}
	if (write && etag && etag_lines_match(ri, "if-none-match", etag, 0) > 0)
		return "If-None-Match";
	return NULL;
}

/* The preconditions on rel as it is now, for a write or a listing: the target's state
 * read only when the request has one. A directory has no ETag (If-Match holds for "*"
 * only). Answers 412 and returns -1 when one fails; 1 when they hold, 0 when there
 * are none. */
static int preconditions_at(struct http_conn *c, const struct http_reqinfo *ri, const char *rel, int write)
{
	if (!hdr(ri, "if-match") && !hdr(ri, "if-unmodified-since") && !(write && hdr(ri, "if-none-match")))
		return 0;
	struct stat st;
	char etag[64] = "";
	int fd = fsroot_open(root_of(c), rel, O_PATH), have = fd >= 0 && fstat(fd, &st) == 0;
	if (fd >= 0)
		close(fd);
	if (have && !S_ISDIR(st.st_mode))
		filecache_etag(&st, etag, sizeof(etag));
	const char *failed = precondition_failed(ri, have ? etag : NULL, have ? st.st_mtim.tv_sec : 0, write);
	if (failed)
		resp_error(c, LK_E_H_PRECONDITION_FILE, failed);
	return failed ? -1 : 1;
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
	resp_error(c, lk_err_from_errno(err), NULL);
}

/* ---- serving a regular file ---- */

/* --header's lines, on every file, listing and 404 page answer (after resp_start). */
static void file_headers(struct http_conn *c)
{
	const struct http_config *cfg = http_ctx_config(http_conn_ctx(c));
	for (size_t i = 0; i < cfg->nheaders; i++)
		resp_header(c, cfg->headers[i].name, cfg->headers[i].value);
}

/* A file's own headers: --header's, and Cache-Control as --cache says. */
static void file_start(struct http_conn *c, int status)
{
	const struct http_config *cfg = http_ctx_config(http_conn_ctx(c));
	resp_start(c, status);
	file_headers(c);
	if (cfg->precompressed)
		resp_header(c, "Vary", "Accept-Encoding"); /* the answer depends on it, encoded or not */
	if (cfg->cache_secs == HTTP_CACHE_NO_STORE)
		resp_header(c, "Cache-Control", "no-store");
	else if (!cfg->cache_secs)
		resp_header(c, "Cache-Control", "no-cache"); /* stored, but asked again each time: 304 */
	else
		resp_headerf(c, "Cache-Control", "max-age=%ld", cfg->cache_secs);
}

struct file_view {
	const char *mime;
	const char *etag;
	const char *lastmod;
	time_t mtime;
	uint64_t size;
	const char *coding; /* Content-Encoding of a precompressed variant; NULL: none */
};

/* A file served in place of the one asked for: NAME.gz for NAME. */
struct variant {
	const char *mime; /* NAME's type */
	const char *coding;
};

/* Handles conditionals and ranges, writes the head. Returns 0 when no body follows,
 * else 1 with *first..*len the bytes to send. */
static int file_head(struct http_conn *c, const struct http_reqinfo *ri, const struct file_view *v,
                     uint64_t *first, uint64_t *len)
{
	const char *failed = precondition_failed(ri, v->etag, v->mtime, 0);
	if (failed) {
		resp_error(c, LK_E_H_PRECONDITION_FILE, failed);
		return 0;
	}
	if (not_modified(ri, v->etag, v->mtime)) {
		file_start(c, HTTP_NOT_MODIFIED);
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
		/* The Content-Range of a 416 tells the client the size (RFC 9110 15.5.17). */
		char cr[64];
		snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)v->size);
		resp_error_h(c, LK_E_H_RANGE, NULL, "Content-Range", cr);
		return 0;
	}
	file_start(c, rr == HTTP_RANGE_OK ? HTTP_PARTIAL_CONTENT : HTTP_OK);
	if (v->coding)
		resp_header(c, "Content-Encoding", v->coding);
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
	return !http_conn_head_only(c);
}

static void serve_cached(struct http_conn *c, const struct http_reqinfo *ri, struct filecache_entry *e,
                         const struct variant *as)
{
	struct file_view v = {as ? as->mime : e->mime, e->etag,           e->lastmod,
	                      e->mtime.tv_sec,         (uint64_t)e->size, as ? as->coding : NULL};
	uint64_t first, len;
	if (file_head(c, ri, &v, &first, &len))
		resp_body_mem(c, e->data + first, (size_t)len);
}

/* Serves the open regular file fd (takes ownership). */
static void serve_fd(struct http_conn *c, const struct http_reqinfo *ri, const char *rel, int fd,
                     const struct stat *st, const struct variant *as)
{
	struct filecache *fc = cache_of(c);
	if (fc && st->st_size <= FILECACHE_FILE_MAX) {
		uint32_t h = filecache_hash(rel);
		struct filecache_entry *e = filecache_store(fc, rel, h, fd, st);
		if (e) {
			close(fd);
			serve_cached(c, ri, e, as);
			return;
		}
	}
	char etag[64], lastmod[32];
	filecache_etag(st, etag, sizeof(etag));
	http_date_format(st->st_mtim.tv_sec, lastmod);
	struct file_view v = {as ? as->mime : http_mime_type(rel),
	                      etag,
	                      lastmod,
	                      st->st_mtim.tv_sec,
	                      (uint64_t)st->st_size,
	                      as ? as->coding : NULL};
	uint64_t first, len;
	if (!file_head(c, ri, &v, &first, &len) || !len) {
		close(fd);
		return;
	}
	resp_body_file(c, fd, first, len);
}

/* ---- directory listings: streamed from the shared snapshot ---- */

static void iso_time(time_t t, char *out, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void human_size(uint64_t n, char *out, size_t len)
{
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0) {
		snprintf(out, len, "%llu B", (unsigned long long)n);
	} else {
		static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
		snprintf(out, len, "%.1f %s", v, units[u]);
	}
}

/* A listing being sent: the snapshot it holds (shared with every other lister of the
 * same directory version) and its place in it. Only the rows that fit the socket's
 * pace are ever formatted, so a client that does not read costs its place and a
 * filled send buffer, never a copy of the listing. */
struct gen_list {
	const struct dirsnap *snap; /* NULL once released */
	struct dirsnap_cache *cache;
	size_t next;  /* the next entry to format */
	int json;     /* JSON, else HTML */
	int chunked;  /* frame chunks (HTTP/1.1) */
	int finished; /* the footer (and the last chunk) is written */
};

#define LIST_CHUNK_DIGITS 6 /* chunk sizes are written zero-padded, patched in afterwards */

static void list_row_json(struct buf *out, const struct dirsnap_ent *e, int first)
{
	struct json j;
	char when[32];
	if (!first)
		buf_append(out, ",", 1);
	json_init(&j, out, 0);
	json_obj_begin(&j);
	json_kstr(&j, "name", e->name);
	json_kstr(&j, "type", e->is_dir ? "dir" : "file");
	json_kuint(&j, "size", e->size);
	json_key(&j, "mtime");
	iso_time(e->mtime.tv_sec, when, sizeof(when));
	json_str(&j, when);
	json_obj_end(&j);
}

static void list_row_html(struct buf *out, const struct dirsnap_ent *e)
{
	char when[32];
	buf_puts(out, "<tr><td><a href=\"");
	/* "./" keeps a name like "a:b" from reading as a URL scheme. */
	buf_puts(out, "./");
	url_encode(out, e->name, strlen(e->name));
	if (e->is_dir)
		buf_puts(out, "/");
	buf_puts(out, "\">");
	html_escape(out, e->name);
	if (e->is_dir)
		buf_puts(out, "/");
	buf_puts(out, "</a></td><td class=\"s\">");
	if (!e->is_dir) {
		char size[32];
		human_size(e->size, size, sizeof(size));
		buf_puts(out, size);
	}
	buf_puts(out, "</td><td>");
	iso_time(e->mtime.tv_sec, when, sizeof(when));
	buf_puts(out, when);
	buf_puts(out, "</td></tr>\n");
}

static void list_footer(struct buf *out, const struct gen_list *g)
{
	size_t more = g->snap ? g->snap->more : 0;
	if (g->json) {
		buf_puts(out, "]");
		if (more)
			buf_printf(out, ",\"truncated\":%zu", more);
		buf_puts(out, "}\n");
		return;
	}
	buf_puts(out, "</table>");
	if (more)
		buf_printf(out, "<p>%zu more entries not shown.</p>", more);
	buf_puts(out, "<footer><p><small>loopkit " LOOPKIT_VERSION "</small></p></footer></body></html>\n");
}

static void list_release(struct gen_list *g)
{
	dirsnap_put(g->cache, g->snap);
	g->snap = NULL;
}

static size_t list_fill(struct http_conn *c, void *state, struct buf *out, size_t room)
{
	struct gen_list *g = state;
	size_t before = buf_used(out), at = 0;
	if (g->finished)
		return 0;
	if (g->chunked) {
		buf_append(out, "000000\r\n", LIST_CHUNK_DIGITS + 2);
		at = buf_used(out);
	}
	/* At least one row, then rows while they fit the room (a row is at most a few
	 * KiB: a name of NAME_MAX bytes, escaped). */
	while (g->next < g->snap->n && (buf_used(out) == at || buf_used(out) - before < room)) {
		const struct dirsnap_ent *e = &g->snap->ents[g->next];
		if (g->json)
			list_row_json(out, e, g->next == 0);
		else
			list_row_html(out, e);
		g->next++;
	}
	if (g->next == g->snap->n) {
		list_footer(out, g);
		g->finished = 1;
		list_release(g); /* all formatted: the snapshot is not needed any more */
	}
	if (g->chunked) {
		char *p = buf_start(out) + at - LIST_CHUNK_DIGITS - 2, hex[16];
		snprintf(hex, sizeof(hex), "%0*zx", LIST_CHUNK_DIGITS, buf_used(out) - at);
		memcpy(p, hex, LIST_CHUNK_DIGITS);
		buf_append(out, "\r\n", 2);
		if (g->finished)
			buf_puts(out, "0\r\n\r\n");
	}
	return buf_used(out) - before;
}

static void list_done(void *state)
{
	list_release(state);
}

static const struct resp_gen_ops list_ops = {list_fill, list_done};

static void serve_listing(struct http_conn *c, const struct http_reqinfo *ri, const char *rel)
{
	const struct proto_site *site = http_ctx_site(http_conn_ctx(c));
	const struct dirsnap *snap = NULL;
	char path[PATH_MAX + 2];
	if (preconditions_at(c, ri, rel, 0) < 0)
		return;
	/* HEAD says what GET would send without taking a snapshot. */
	if (!http_conn_head_only(c)) {
		int rc = dirsnap_get(site->dirs, site->root, rel, &snap);
		if (rc == -ENOBUFS) {
			char lim[32];
			resp_error_h(c, LK_E_ELISTFULL, lk_size_text(DIRSNAP_MEM_MAX, lim, sizeof(lim)),
			             "Retry-After", "1");
			return;
		}
		if (rc < 0) {
			respond_errno(c, -rc);
			return;
		}
	}
	struct buf head;
	buf_init(&head, 4 * PATH_MAX + 1024);
	snprintf(path, sizeof(path), "/%s%s", rel, *rel ? "/" : "");
	if (ri->accept_json) {
		struct json j;
		buf_puts(&head, "{\"path\":");
		json_init(&j, &head, 0);
		json_str(&j, path);
		buf_puts(&head, ",\"entries\":[");
	} else {
		buf_puts(&head, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		                "<meta name=\"viewport\" content=\"width=device-width\"><title>Index of ");
		html_escape(&head, path);
		buf_puts(&head, "</title><style>body{font:14px system-ui,sans-serif;margin:2em}"
		                "table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}"
		                "td.s{text-align:right}tr:hover{background:#eef}a{text-decoration:none}"
		                "</style></head><body><h1>Index of ");
		html_escape(&head, path);
		buf_puts(&head, "</h1><table><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n");
		if (*rel)
			buf_puts(&head, "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
	}
	int chunked = http_conn_can_chunk(c);
	resp_start_stream(c, HTTP_OK);
	file_headers(c);
	resp_header(c, "Cache-Control", "no-cache");
	resp_header(c, "Vary", "Accept");
	resp_end_headers(c, ri->accept_json ? "application/json" : "text/html; charset=utf-8", 0, 1);
	struct buf framed;
	buf_init(&framed, buf_used(&head) + 32);
	http_chunk_put(&framed, chunked, buf_start(&head), buf_used(&head));
	resp_body_mem(c, buf_start(&framed), buf_used(&framed));
	buf_free(&framed);
	buf_free(&head);
	if (!snap)
		return;
	struct gen_list *g = resp_body_gen(c, &list_ops, sizeof(*g), 0, 0);
	g->snap = snap;
	g->cache = site->dirs;
	g->json = ri->accept_json;
	g->chunked = chunked;
}
/* ---- routing ---- */

static void redirect_to_path(struct http_conn *c, const struct http_reqinfo *ri, const char *rel, int slash,
                             const char *note)
{
	/* Built from the normalised path, so it always starts with exactly one '/':
	 * "//evil.example" can never come out (CVE-2021-28861 in python's server). */
	struct buf loc;
	buf_init(&loc, PATH_MAX * 3 + HTTP_MAX_URI);
	buf_puts(&loc, "/");
	url_encode(&loc, rel, strlen(rel));
	if (slash && *rel)
		buf_puts(&loc, "/");
	if (ri->query.len) {
		buf_puts(&loc, "?");
		buf_append(&loc, ri->query.p, ri->query.len);
	}
	buf_append(&loc, "", 1);
	resp_text(c, HTTP_MOVED_PERMANENTLY, note, "Location", loc.data ? loc.data : "/");
	buf_free(&loc);
}

static int normalize(struct http_conn *c, const struct http_reqinfo *ri, char *rel, size_t len, int *slash)
{
	int r = http_path_normalize(ri->path.p, ri->path.len, rel, len, slash);
	if (r == HTTP_PATH_OK)
		return 0;
	if (r == HTTP_PATH_TOO_LONG)
		resp_error(c, LK_E_H_PATH_LONG, NULL);
	else if (r == HTTP_PATH_ESCAPES)
		resp_error(c, LK_E_EPATHCLIMB, NULL);
	else
		resp_error(c, LK_E_H_PATH_ESCAPE, NULL);
	return -1;
}

static int has_extension(const char *rel)
{
	const char *last = strrchr(rel, '/');
	return strchr(last ? last + 1 : rel, '.') != NULL;
}

/* Opens rel when it is a regular file (fills *st). Returns the fd or -errno. */
static int open_regular(const struct fsroot *root, const char *rel, struct stat *st)
{
	int fd = fsroot_open(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return S_ISDIR(st->st_mode) ? -EISDIR : -ENOENT;
	}
	return fd;
}

/* A GET or HEAD that found nothing: --404's page with status 404, or the plain 404. */
static void not_found(struct http_conn *c, const struct http_reqinfo *ri, enum lk_err e)
{
	const struct http_config *cfg = http_ctx_config(http_conn_ctx(c));
	struct stat st;
	int fd = cfg->not_found && (ri->method == M_GET || ri->method == M_HEAD)
	                 ? open_regular(root_of(c), cfg->not_found, &st)
	                 : -ENOENT;
	if (fd < 0) {
		resp_error(c, e, NULL);
		return;
	}
	resp_start(c, HTTP_NOT_FOUND);
	file_headers(c);
	resp_header(c, "Cache-Control", "no-cache");
	resp_end_headers(c, http_mime_type(cfg->not_found), (uint64_t)st.st_size, 0);
	resp_body_file(c, fd, 0, (uint64_t)st.st_size);
}

static void respond_lookup(struct http_conn *c, const struct http_reqinfo *ri, int err)
{
	enum lk_err e = lk_err_from_errno(err);
	if (e == LK_E_ENOENT)
		not_found(c, ri, e);
	else
		resp_error(c, e, NULL);
}

/* ?listing (or listing=1): a directory's listing even when it has an index.html. */
static int wants_listing(const struct http_reqinfo *ri)
{
	const char *q = ri->query.p, *end = q + ri->query.len;
	while (q && q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q)), *e = amp ? amp : end;
		size_t n = (size_t)(e - q);
		if ((n == 7 && !memcmp(q, "listing", 7)) || (n == 9 && !memcmp(q, "listing=1", 9)))
			return 1;
		q = amp ? amp + 1 : NULL;
	}
	return ri->accept_json;
}

/* --clean-urls: /about.html and /dir/index.html are known as /about and /dir/. A
 * request for the .html name of an existing file is redirected there (when that
 * name is not itself something else). Returns 1 when it answered. */
static int clean_redirect(struct http_conn *c, const struct http_reqinfo *ri, const char *rel, int slash)
{
	const struct fsroot *root = root_of(c);
	size_t n = strlen(rel);
	char bare[PATH_MAX];
	struct stat st;
	if (slash || n <= 5 || strcmp(rel + n - 5, ".html") || n >= sizeof(bare))
		return 0;
	int fd = open_regular(root, rel, &st);
	if (fd < 0)
		return 0;
	close(fd);
	int index = n == 10 ? !strcmp(rel, "index.html") : n > 10 && !strcmp(rel + n - 11, "/index.html");
	memcpy(bare, rel, n - (index ? 10 : 5));
	bare[n - (index ? 10 : 5)] = 0;
	if (index) {
		if (*bare)
			bare[strlen(bare) - 1] = 0; /* "dir/" -> "dir", the slash comes back below */
		redirect_to_path(c, ri, bare, 1, "clean URL");
		return 1;
	}
	fd = fsroot_open(root, bare, O_PATH);
	if (fd >= 0) {
		close(fd); /* "about" is a file or directory of its own: leave both alone */
		return 0;
	}
	redirect_to_path(c, ri, bare, 0, "clean URL");
	return 1;
}

/* --precompressed: NAME.br, else NAME.gz, in place of NAME for a GET or HEAD whose
 * Accept-Encoding takes that coding (by q-value), when NAME is a regular file and the
 * variant is one too and not older (a stale variant is skipped, never served). Returns
 * 1 when it answered. */
static int serve_precompressed(struct http_conn *c, const struct http_reqinfo *ri, const char *rel)
{
	static const struct {
		const char *ext, *coding;
	} codings[] = {{".br", "br"}, {".gz", "gzip"}};
	const struct http_header *ae = hdr(ri, "accept-encoding");
	const struct fsroot *root = root_of(c);
	size_t rl = strlen(rel);
	struct stat ost;
	int have_orig = -1;
	if (!ae || (ri->method != M_GET && ri->method != M_HEAD))
		return 0;
	for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
		char vrel[PATH_MAX];
		if (http_accept_q(ae->value, codings[i].coding, NULL) <= 0 || rl + 4 > sizeof(vrel))
			continue;
		if (have_orig < 0) {
			int ofd = open_regular(root, rel, &ost);
			have_orig = ofd >= 0;
			if (ofd >= 0)
				close(ofd);
			if (!have_orig)
				return 0;
		}
		memcpy(vrel, rel, rl);
		memcpy(vrel + rl, codings[i].ext, strlen(codings[i].ext) + 1);
		struct stat vst;
		int fd = open_regular(root, vrel, &vst);
		if (fd < 0)
			continue;
		if (vst.st_mtim.tv_sec < ost.st_mtim.tv_sec ||
		    (vst.st_mtim.tv_sec == ost.st_mtim.tv_sec && vst.st_mtim.tv_nsec < ost.st_mtim.tv_nsec)) {
			close(fd);
			continue;
		}
		struct variant as = {http_mime_type(rel), codings[i].coding};
		serve_fd(c, ri, vrel, fd, &vst, &as);
		return 1;
	}
	return 0;
}

void files_handle(struct http_conn *c, const struct http_reqinfo *ri)
{
	const struct proto_site *site = http_ctx_site(http_conn_ctx(c));
	const struct http_config *cfg = http_ctx_config(http_conn_ctx(c));
	const struct fsroot *root = site->root;
	char rel[PATH_MAX];
	int slash;
	if (ri->req->target.len == 1 && ri->req->target.p[0] == '*') {
		http_options(c, ri);
		return;
	}
	switch (ri->method) {
	case M_GET:
	case M_HEAD: break;
	case M_OPTIONS: http_options(c, ri); return;
	case M_PUT:
	case M_DELETE:
	case M_MKCOL:
		if (!site->write) {
			resp_error(c, LK_E_EREADONLY, NULL);
			return;
		}
		if (ri->method == M_PUT) {
			/* A PUT with an empty body: create an empty file. */
			struct fsroot_upload up = {.fd = -1, .dirfd = -1};
			if (files_upload_begin(c, ri, &up) == 0)
				files_upload_finish(c, &up, 0);
			return;
		}
		if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
			return;
		if (!*rel) {
			resp_error(c, LK_E_EROOT, NULL);
			return;
		}
		if (preconditions_at(c, ri, rel, 1) < 0)
			return;
		if (ri->method == M_MKCOL) {
			/* WebDAV's MKCOL (RFC 4918 9.3): one directory, as FTP's MKD. */
			if (fsroot_hidden(root, rel)) {
				resp_error(c, LK_E_EHIDDEN, NULL);
				return;
			}
			int r = fsroot_mkdir(root, rel);
			if (r < 0) {
				resp_error(c,
				           r == -EEXIST   ? LK_E_H_MKCOL_EXISTS
				           : r == -ENOENT ? LK_E_ENOPARENT
				                          : lk_err_from_errno(-r),
				           NULL);
				return;
			}
			resp_start(c, HTTP_CREATED);
			resp_end_headers(c, NULL, 0, 0);
			return;
		}
		/* "/a.txt/" names a directory, as for GET: never the file a.txt (nor a link) */
		int r = slash ? fsroot_remove_dir(root, rel) : fsroot_remove(root, rel);
		if (r < 0) {
			respond_errno(c, -r);
			return;
		}
		resp_start(c, HTTP_NO_CONTENT);
		resp_end_headers(c, NULL, 0, 0);
		return;
	case M_OTHER: resp_error(c, LK_E_H_METHOD_UNKNOWN, NULL); return;
	default: resp_error(c, LK_E_H_METHOD_FILES, NULL); return;
	}

	if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
		return;
	if (fsroot_hidden(root, rel)) {
		not_found(c, ri, LK_E_ENOENT);
		return;
	}
	if (cfg->clean_urls && clean_redirect(c, ri, rel, slash))
		return;
	if (cfg->precompressed && *rel && !slash && serve_precompressed(c, ri, rel))
		return;
	/* Fast path: a small file served from the cache. */
	struct filecache *fc = cache_of(c);
	struct filecache_entry *e =
	        fc && *rel && !slash ? filecache_lookup(fc, rel, filecache_hash(rel), http_conn_in_batch(c))
	                             : NULL;
	if (e) {
		serve_cached(c, ri, e, NULL);
		return;
	}
	int fd = fsroot_open(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	size_t rl = strlen(rel);
	if (fd == -ENOENT && cfg->clean_urls && !slash && rl && !has_extension(rel) &&
	    rl + 6 <= sizeof(rel)) {
		memcpy(rel + rl, ".html", 6); /* /about -> about.html */
		fd = fsroot_open(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			rel[rl] = 0;
	}
	if (fd == -ENOENT && cfg->spa && !has_extension(rel)) {
		snprintf(rel, sizeof(rel), "index.html");
		slash = 0;
		fd = fsroot_open(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	}
	if (fd < 0) {
		respond_lookup(c, ri, -fd);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		respond_errno(c, errno);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		if (!slash) {
			redirect_to_path(c, ri, rel, 1, "directories end with a slash");
			return;
		}
		/* index.html, else index.htm (as python's http.server and Apache). */
		char idx[PATH_MAX + 16];
		struct stat ist;
		int ifd = -ENOENT;
		for (int i = 0; i < 2 && ifd == -ENOENT && !wants_listing(ri); i++) {
			snprintf(idx, sizeof(idx), "%s%sindex.%s", rel, *rel ? "/" : "", i ? "htm" : "html");
			ifd = open_regular(root, idx, &ist);
		}
		if (ifd >= 0) {
			serve_fd(c, ri, idx, ifd, &ist, NULL);
			return;
		}
		serve_listing(c, ri, rel);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		resp_error(c, LK_E_ENOTFILE, NULL); /* as FTP's RETR says it */
		return;
	}
	if (slash) {
		close(fd);
		not_found(c, ri, LK_E_H_NO_SUCH_DIR);
		return;
	}
	serve_fd(c, ri, rel, fd, &st, NULL);
}

/* ---- uploads ---- */

int files_upload_begin(struct http_conn *c, const struct http_reqinfo *ri, struct fsroot_upload *up)
{
	const struct fsroot *root = root_of(c);
	char rel[PATH_MAX];
	int slash;
	if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
		return -1;
	if (!*rel || slash) {
		resp_error(c, LK_E_ENEEDNAME, NULL);
		return -1;
	}
	if (fsroot_hidden(root, rel)) { /* as FTP's STOR says it */
		resp_error(c, LK_E_EHIDDEN, NULL);
		return -1;
	}
	int guarded = preconditions_at(c, ri, rel, 1);
	if (guarded < 0)
		return -1;
	int r = fsroot_upload_begin(root, rel, up);
	if (r < 0) {
		if (r == -ENOENT || r == -ENOTDIR)
			resp_error(c, LK_E_ENOPARENT, NULL);
		else
			respond_errno(c, -r);
		return -1;
	}
	if (guarded) /* held now: they must still hold when the file is put in place */
		fsroot_upload_guard(up);
	return 0;
}

void files_upload_finish(struct http_conn *c, struct fsroot_upload *up, int err)
{
	int existed = up->existed;
	if (!err)
		err = fsroot_upload_commit(up);
	else
		fsroot_upload_abort(up);
	if (err == -ECANCELED) {
		resp_error(c, LK_E_H_PRECONDITION_FILE, "the precondition checked when the upload began");
		return;
	}
	if (err) {
		respond_errno(c, -err);
		return;
	}
	if (existed) {
		resp_start(c, HTTP_NO_CONTENT);
		resp_end_headers(c, NULL, 0, 0);
	} else {
		resp_text(c, HTTP_CREATED, NULL, NULL, NULL);
	}
}
