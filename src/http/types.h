/* types.h - the types a request handler and the engine's inside share: the request's
 * facts and a generated body's operations. No functions: resp.h has those. */
#ifndef LOOPKIT_HTTP_TYPES_H
#define LOOPKIT_HTTP_TYPES_H

#include <stddef.h>

#include "core/buf.h"
#include "http/parse.h"

/* A connection, opaque to handlers: they answer through resp.h. */
struct http_conn;
/* The engine's state for one event-loop thread. */
struct http_ctx;

enum http_method {
	M_GET,
	M_HEAD,
	M_POST,
	M_PUT,
	M_DELETE,
	M_OPTIONS,
	M_PATCH,
	M_TRACE,
	M_CONNECT,
	M_MKCOL,
	M_OTHER
};

#define HTTP_API_MAX_BODY (1024 * 1024) /* bodies read into memory (routes with HTTP_BODY_MEM) */
#define HTTP_API_ANSWER_RATIO                                          \
	8 /* an answer made from a body is at most this many times its \
	     size (an echo, JSON-escaped); HTTP_MEM_MAX counts on it */

/* Facts about the request being dispatched, derived once from the parsed head. */
struct http_reqinfo {
	const struct http_request *req;
	enum http_method method;
	struct http_slice path;  /* raw path of the target, before '?' */
	struct http_slice query; /* after '?', without it; len 0 when none */
	const char *body;        /* the body, for routes that read it into memory */
	size_t body_len;
	int accept_json;             /* Accept names application/json */
	int cross_site;              /* Sec-Fetch-Site says another site or origin asked (a web page),
	                                not same-origin or none (typed by the user); clients
	                                that send no Sec-Fetch-Site are no web page */
	int origin_ok;               /* Origin is absent, this server's own, or a --cors-origin */
	struct http_slice authority; /* host[:port] the request names (absolute-form target,
	                                else Host), checked against rebinding; len 0: none */
};

/* A generated body. fill appends at most room bytes to out and returns how many it
 * appended; 0 ends the body. done (may be NULL) releases what state holds, whether
 * the body ended or the connection did. */
struct resp_gen_ops {
	size_t (*fill)(struct http_conn *c, void *state, struct buf *out, size_t room);
	void (*done)(void *state);
};
#define RESP_GEN_STATE_MAX 128 /* bytes of state a generator may keep */

#endif
