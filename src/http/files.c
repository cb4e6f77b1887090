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
#include "http/filecache.h"
#include "http/route.h"

#define HTTP_MAX_LISTING 50000            /* directory entries shown in one listing */
#define HTTP_LISTING_MAX (32 * 1024 * 1024) /* bytes of one listing page */

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
	resp_error(c, lk_err_from_errno(err), NULL);
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
		resp_start(c, HTTP_NOT_MODIFIED);
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
	resp_start(c, rr == HTTP_RANGE_OK ? HTTP_PARTIAL_CONTENT : HTTP_OK);
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

static void serve_cached(struct http_conn *c, const struct http_reqinfo *ri, struct filecache_entry *e)
{
	struct file_view v = {e->mime, e->etag, e->lastmod, e->mtime.tv_sec, (uint64_t)e->size};
	uint64_t first, len;
	if (file_head(c, ri, &v, &first, &len))
		resp_body_mem(c, e->data + first, (size_t)len);
}

/* Serves the open regular file fd (takes ownership). */
static void serve_fd(struct http_conn *c, const struct http_reqinfo *ri, const char *rel, int fd,
                     const struct stat *st)
{
	struct filecache *fc = cache_of(c);
	if (fc && st->st_size <= FILECACHE_FILE_MAX) {
		uint32_t h = filecache_hash(rel);
		struct filecache_entry *e = filecache_store(fc, rel, h, fd, st);
		if (e) {
			close(fd);
			serve_cached(c, ri, e);
			return;
		}
	}
	char etag[64], lastmod[32];
	filecache_etag(st, etag, sizeof(etag));
	http_date_format(st->st_mtim.tv_sec, lastmod);
	struct file_view v = {http_mime_type(rel), etag, lastmod, st->st_mtim.tv_sec, (uint64_t)st->st_size};
	uint64_t first, len;
	if (!file_head(c, ri, &v, &first, &len) || !len) {
		close(fd);
		return;
	}
	resp_body_file(c, fd, first, len);
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
	char path[PATH_MAX + 2];
	int rc = fsroot_list(root_of(c), rel, HTTP_MAX_LISTING, &v, &n, &hidden_more);
	if (rc < 0) {
		respond_errno(c, -rc);
		return;
	}
	struct buf body;
	buf_init(&body, HTTP_LISTING_MAX);
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
	resp_start(c, HTTP_OK);
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
	resp_text(c, HTTP_MOVED_PERMANENTLY, "directories end with a slash", "Location", loc.data ? loc.data : "/");
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
		int r = fsroot_remove(root, rel);
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

	/* Fast path: a small file served from the cache. */
	if (normalize(c, ri, rel, sizeof(rel), &slash) < 0)
		return;
	if (fsroot_hidden(root, rel)) {
		resp_error(c, LK_E_ENOENT, NULL);
		return;
	}
	struct filecache *fc = cache_of(c);
	struct filecache_entry *e = fc && *rel && !slash ? filecache_lookup(fc, rel, filecache_hash(rel)) : NULL;
	if (e) {
		serve_cached(c, ri, e);
		return;
	}
	int fd = fsroot_open(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd == -ENOENT && cfg->spa && !has_extension(rel)) {
		snprintf(rel, sizeof(rel), "index.html");
		slash = 0;
		fd = fsroot_open(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
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
		int ifd = fsroot_open(root, idx, O_RDONLY | O_NOCTTY | O_NONBLOCK);
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
		resp_error(c, LK_E_H_NOT_REGULAR, NULL);
		return;
	}
	if (slash) {
		close(fd);
		resp_error(c, LK_E_H_NO_SUCH_DIR, NULL);
		return;
	}
	serve_fd(c, ri, rel, fd, &st);
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
	int r = fsroot_upload_begin(root, rel, up);
	if (r < 0) {
		if ((r == -ENOENT && !fsroot_hidden(root, rel)) || r == -ENOTDIR)
			resp_error(c, LK_E_ENOPARENT, NULL);
		else
			respond_errno(c, -r);
		return -1;
	}
	return 0;
}

void files_upload_finish(struct http_conn *c, struct fsroot_upload *up, int err)
{
	int existed = up->existed;
	if (!err)
		err = fsroot_upload_commit(up);
	else
		fsroot_upload_abort(up);
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
