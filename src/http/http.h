/* http.h - the HTTP/1.1 engine as a protocol on the shared port: its settings and ops. */
#ifndef LOOPKIT_HTTP_HTTP_H
#define LOOPKIT_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/proto.h"

struct http_route;

/* A header added to responses, as serve --header gives it. */
struct http_extra_header {
	const char *name, *value;
};

#define HTTP_DEFAULT_HEAD_TIMEOUT_S 10   /* a request head must arrive within this */
#define HTTP_DEFAULT_IDLE_TIMEOUT_S 15   /* keep-alive connections idle longer are closed */
#define HTTP_DEFAULT_BODY_TIMEOUT_S 30   /* longest stall reading a body or writing */
#define HTTP_CACHE_NO_STORE         (-1) /* http_config.cache_secs: Cache-Control: no-store */
/* /_/ request bodies and generated answers held in memory, all threads together; a /_/
 * request past it gets 503 with Retry-After (LK_E_H_MEM_FULL) until others drain. */
#define HTTP_MEM_MAX        (64u << 20)
#define HTTP_MAX_CACHE_SECS (10 * 365 * 86400L) /* the longest max-age (--cache) */

/* HTTP's own settings; what every protocol shares (root, write, login, body limit,
 * logging) is in struct proto_site. */
struct http_config {
	const struct http_route *routes; /* the handler table; NULL: serve's (/_/ then files) */
	int cors;                        /* read-only CORS for any origin: ACAO *, safe methods */
	const char **cors_origins;       /* origins that may also write (--cors-origin); "*": any */
	size_t ncors_origins;
	int spa;               /* missing extensionless paths -> /index.html */
	int clean_urls;        /* /about serves about.html; /about.html redirects to /about */
	int precompressed;     /* NAME.br / NAME.gz beside NAME, to clients that take them */
	long cache_secs;       /* Cache-Control of files: max-age=N; 0: no-cache;
	                          HTTP_CACHE_NO_STORE: no-store */
	const char *not_found; /* a file under the root that 404s show; NULL: none */
	const struct http_extra_header *headers; /* added to file answers (--header) */
	size_t nheaders;
	const char **allow_hosts;     /* extra Host names; "*" turns the check off */
	const char *allow_hosts_flag; /* the option that adds them, named in the 403 (NULL: none) */
	size_t nallow_hosts;
	unsigned head_timeout_ms; /* a request head must arrive within this */
	unsigned idle_timeout_ms; /* keep-alive connections idle longer are closed */
	unsigned body_timeout_ms; /* longest pause while reading a body or writing */
	int json_errors;          /* the engine's own errors as JSON {"error","status"}, as the
	                             proxy's control API answers everything (toxiproxy's form) */
	char host[64];            /* the bound address as text, for URLs */
	uint16_t port;            /* the bound port, for URLs */
};

/* Fills cfg with the defaults (timeouts 10/15/30 s, serve's routes). */
void http_config_default(struct http_config *cfg);

/* The engine, for the serve layer: ctx_new's cfg is a struct http_config. */
extern const struct proto_ops http_proto_ops;

/* An accepted connection of an HTTP service embedded in another verb (proxy's control
 * API, watch's status page): a peer beyond loopback, or one past max open (counted in
 * *nconns, which the service's close hook counts down), is closed at once; the others
 * get TCP_NODELAY, a send buffer of sndbuf bytes when not 0, the peer's uid when
 * want_uid (else -1), and go to the engine ctx. Returns 0 started, -1 closed. */
int http_embed_conn(void *ctx, int fd, const struct sockaddr_storage *peer, atomic_uint *nconns, unsigned max,
                    int sndbuf, int want_uid);

#endif
