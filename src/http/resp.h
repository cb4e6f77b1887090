/* resp.h - what a request handler uses: the request's facts, the response writer, bodies. */
#ifndef LOOPKIT_HTTP_RESP_H
#define LOOPKIT_HTTP_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"
#include "core/proto.h"
#include "http/http.h"
#include "http/parse.h"
#include "http/types.h"

/* ---- the response ----
 * resp_start writes the status line and the headers every response carries; then add
 * headers; then end with one of resp_send_mem, resp_end_headers (a body source
 * follows, or none) or use resp_error. */
void resp_start(struct http_conn *c, int status);
void resp_header(struct http_conn *c, const char *name, const char *value);
void resp_headerf(struct http_conn *c, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Ends the headers with Content-Type and Content-Length and appends the body (not for
 * HEAD or statuses without a body). */
void resp_send_mem(struct http_conn *c, const char *type, const void *p, size_t len);
/* Ends the headers for a body that a source below provides; with chunked,
 * Transfer-Encoding: chunked replaces Content-Length. An HTTP/1.0 client cannot take
 * chunks: it gets neither header and the body ends with the connection (start such a
 * response with resp_start_stream). type may be NULL. */
void resp_end_headers(struct http_conn *c, const char *type, uint64_t len, int chunked);
/* resp_start for a response whose length is not known in advance (chunked): on
 * HTTP/1.0 the connection closes after it, the close ending the body. Whoever writes
 * the body frames chunks only when http_conn_can_chunk says so. */
void resp_start_stream(struct http_conn *c, int status);
/* A whole error response from the error table: the row's status and a text/plain
 * body "STATUS REASON: message", detail filling the message's "%s". A 405 carries
 * Allow, a 401 WWW-Authenticate. */
void resp_error(struct http_conn *c, enum lk_err e, const char *detail);
/* The same with one more header (name: value), e.g. a 416's Content-Range. */
void resp_error_h(struct http_conn *c, enum lk_err e, const char *detail, const char *name,
                  const char *value);
/* The same, and the connection closes after it (lingering to read what the client
 * still sends, so the answer is not lost to a reset). */
void resp_error_close(struct http_conn *c, enum lk_err e, const char *detail);
/* A whole response that is not an error, with a one-line text/plain body "STATUS
 * REASON" or "STATUS REASON: note" (201 Created, 301 to a directory), and one extra
 * header name: value (name may be NULL). */
void resp_text(struct http_conn *c, int status, const char *note, const char *name, const char *value);

/* ---- body sources (after resp_end_headers) ---- */

/* Body bytes from memory, after resp_end_headers (skipped for HEAD). */
void resp_body_mem(struct http_conn *c, const void *p, size_t len);
/* The bytes [off, off + len) of the open file fd, sent with sendfile; the response
 * owns fd from here on. */
void resp_body_file(struct http_conn *c, int fd, uint64_t off, uint64_t len);

/* Starts a generated body and returns its zeroed state of state_size bytes (at most
 * RESP_GEN_STATE_MAX). With interval_ms 0, fill runs whenever the socket has room
 * (within the per-turn write budget); otherwise once per interval, the first call
 * first_ms from now (drip). For HEAD nothing is generated and done is never called:
 * take resources for the state only after checking http_conn_head_only. */
void *resp_body_gen(struct http_conn *c, const struct resp_gen_ops *ops, size_t state_size, uint64_t first_ms,
                    uint64_t interval_ms);
/* From a ticking generator's fill: the next call in ms (at least 1), in place of the
 * interval, for ticks that are not evenly spaced. */
void resp_gen_next_in(struct http_conn *c, uint64_t ms);

/* Appends p[0..n) to b as one chunk of a chunked body when chunked (nothing for n
 * 0: that would end the body), else as it is: for bodies framed by their writer. */
void http_chunk_put(struct buf *b, int chunked, const void *p, size_t n);

/* Holds the response, once written, back for ms before it is sent (/_/delay). */
void resp_hold(struct http_conn *c, uint64_t ms);
/* Closes the connection after this response. */
void resp_close_after(struct http_conn *c);

/* ---- facts ---- */

int http_conn_head_only(const struct http_conn *c);    /* a HEAD request: no body goes out */
int http_conn_can_chunk(const struct http_conn *c);    /* an HTTP/1.1 client: chunks and trailers */
const char *http_conn_peer(const struct http_conn *c); /* the client's address, as text */
long http_conn_peer_uid(const struct http_conn *c);    /* the proto_peer uid given to start; -1 unknown */
struct http_ctx *http_conn_ctx(const struct http_conn *c);
int http_conn_in_batch(const struct http_conn *c); /* see struct http_conn */
const struct proto_site *http_ctx_site(const struct http_ctx *x);
const struct http_config *http_ctx_config(const struct http_ctx *x);
/* The thread's generator state for cheap pseudo-random numbers (splitmix64). */
uint64_t http_ctx_random(struct http_ctx *x);
/* The thread's cache of small files; NULL when nothing is served from a root. */
struct filecache *http_ctx_files(const struct http_ctx *x);
/* The thread's cached IMF-fixdate of now. */
const char *http_ctx_date(struct http_ctx *x);

/* Looks up a request header (case-insensitive). */
const struct http_header *http_req_header(const struct http_reqinfo *ri, const char *name);
/* May a user add the header name: value to responses (serve --header,
 * /_/response-headers)? The name must be a token, the value free of control bytes,
 * and the header not one that frames the message or that the server always sets
 * (Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade, Trailer, TE,
 * Date, Server, X-Content-Type-Options). Returns NULL when it may, else the reason. */
const char *http_header_refused(const char *name, const char *value);
/* The same for a name and a value of given lengths: a NUL in either is refused too. */
const char *http_header_refused_n(const char *name, size_t nlen, const char *value, size_t vlen);
/* Is name a header that changes how a browser treats the answer or the origin (cookies,
 * caching, encoding, service workers, HSTS, Alt-Svc, reporting, Link, ...), so that a
 * page of another site must not have it set (/_/response-headers answers 403)? */
int http_header_cross_site_refused(const char *name);

/* Does the comma-separated token list v contain tok (case-insensitive)? */
int http_list_has(struct http_slice v, const char *tok);

#endif
