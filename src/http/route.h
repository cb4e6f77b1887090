/* route.h - the handler table: which handler answers a path, and how its body is read. */
#ifndef LOOPKIT_HTTP_ROUTE_H
#define LOOPKIT_HTTP_ROUTE_H

#include "core/fsroot.h"
#include "http/resp.h"

/* How a route takes a request body. */
enum http_body {
	HTTP_BODY_NONE,   /* a body is not wanted: answer, then close instead of reading it */
	HTTP_BODY_MEM,    /* read into memory (HTTP_API_MAX_BODY at most), then dispatch */
	HTTP_BODY_UPLOAD, /* PUT streams into an upload (begin/finish below) */
};

typedef void (*http_handler_fn)(struct http_conn *c, const struct http_reqinfo *ri);

/* One row: the first row whose prefix starts the path answers ("" matches all). */
struct http_route {
	const char *prefix; /* "/_" matches "/_" and "/_/..." (a whole segment); NULL ends */
	enum http_body body;
	http_handler_fn handle;
	/* HTTP_BODY_UPLOAD: starts the upload for a PUT with a body (0, or -1 after
	 * answering) and ends it (err 0: commit; else -errno: abort), answering. */
	int (*upload_begin)(struct http_conn *c, const struct http_reqinfo *ri, struct fsroot_upload *up);
	void (*upload_finish)(struct http_conn *c, struct fsroot_upload *up, int err);
};

/* serve's table: /_/ endpoints, then the files under the root. */
extern const struct http_route http_serve_routes[];

/* The route for path, or NULL. */
const struct http_route *http_route_find(const struct http_route *table, struct http_slice path);

/* OPTIONS: Allow, and with --cors the preflight answer (shared by files and /_/). */
void http_options(struct http_conn *c, const struct http_reqinfo *ri);
/* The same with the Allow of one resource ("GET, HEAD, OPTIONS"). */
void http_options_allow(struct http_conn *c, const struct http_reqinfo *ri, const char *allow);
/* Is this OPTIONS a CORS preflight (Origin and Access-Control-Request-Method)? */
int http_is_preflight(const struct http_reqinfo *ri);
/* The methods a path of this server allows, for Allow headers. */
const char *http_allow(const struct http_ctx *x);

/* files.c */
void files_handle(struct http_conn *c, const struct http_reqinfo *ri);
int files_upload_begin(struct http_conn *c, const struct http_reqinfo *ri, struct fsroot_upload *up);
void files_upload_finish(struct http_conn *c, struct fsroot_upload *up, int err);

/* api.c */
void api_handle(struct http_conn *c, const struct http_reqinfo *ri);

#endif
