/* match.h - pure matchers of what services say: greetings, probe answers, HTTP heads (no I/O). */
#ifndef LOOPKIT_SCAN_MATCH_H
#define LOOPKIT_SCAN_MATCH_H

#include <stddef.h>

#include "scan/scan.h"

/* The probes, in the order they are tried on a silent port (scan_probes[] rows). */
enum scan_probe_id {
	PROBE_NULL,      /* nothing sent: the greeting of a server that speaks first */
	PROBE_HTTP,      /* GET / HTTP/1.1 with Host: 127.0.0.1:PORT */
	PROBE_TLS,       /* a TLS ClientHello */
	PROBE_REDIS,     /* PING (inline command) */
	PROBE_MEMCACHED, /* version */
	PROBE_PGSQL,     /* SSLRequest */
	PROBE_MONGO,     /* OP_MSG { isMaster: 1, $db: "admin" } */
	PROBE_COUNT
};

#define SCAN_MONGO_REQUEST_ID 0x6c6b /* "lk": our requestID, echoed in responseTo */

/* Writes probe id's request for port into out (at most len bytes); returns its length
 * (0 for PROBE_NULL, or when it does not fit). host is the target as text. */
size_t scan_probe_request(enum scan_probe_id id, const char *host, int v6, unsigned port, char *out,
                          size_t len);
/* True when b[0..n) holds a whole answer to probe id (read no further). */
int scan_probe_complete(enum scan_probe_id id, const char *b, size_t n);
/* The probe's name for output ("http-get", "redis-ping", ...). */
const char *scan_probe_name(enum scan_probe_id id);

/* Classifies what a port sent in answer to probe id (PROBE_NULL: unasked). Fills name,
 * product, version, info and app of *svc on a match. Returns 1 on a match, 0 when
 * nothing matches (svc untouched). Pure. */
int scan_match(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc);

/* HTTP: the status of the response head in b[0..n), or 0 when it is not one. */
int scan_http_status(const char *b, size_t n);
/* Copies the value of header name (case-insensitive) of the response head into out,
 * cut to fit; returns its full length, or -1 when absent. */
int scan_http_header(const char *b, size_t n, const char *name, char *out, size_t len);
/* The body of the response in b[0..n) (after the blank line), *blen its length; NULL
 * when the head is incomplete. Chunked bodies are not decoded. */
const char *scan_http_body(const char *b, size_t n, size_t *blen);
/* Fills product and version of svc from a Server header value ("nginx/1.22.1",
 * "SimpleHTTP/0.6 Python/3.11.2", "loopkit/0.9.0", "Docker/24.0 (linux)"). Pure. */
void scan_http_server(const char *server, struct scan_service *svc);
/* Elasticsearch names itself in the body of GET / (its tagline, cluster_uuid): fills
 * product, version and app of svc, and noauth when svc->http_status is 200 (security
 * off). Returns 1 when the body is Elasticsearch's, 0 otherwise. Pure. */
int scan_match_elastic(const char *body, size_t n, struct scan_service *svc);
/* Finds "key": "value" (a JSON string member) in b[0..n) and copies the value into out
 * (cut to fit, no unescaping). Returns 1 found, 0 not. Good enough for the short,
 * well-known documents the probes read; not a JSON parser. */
int scan_json_str(const char *b, size_t n, const char *key, char *out, size_t len);

/* Copies b[0..n) up to the first line end into out, log-safe; returns out. */
char *scan_first_line(const char *b, size_t n, char *out, size_t len);

#endif
