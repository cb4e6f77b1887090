/* httpreq.h - bench http's target and request: the URL, the loopback rule, the bytes to send. */
#ifndef LOOPKIT_BENCH_HTTPREQ_H
#define LOOPKIT_BENCH_HTTPREQ_H

#include <sys/socket.h>

#include "bench/bench.h"
#include "core/buf.h"

/* Where the load goes. */
struct bench_http_target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[128]; /* "127.0.0.1:8080", "[::1]:8080" as connected */
};

/* Checks o (limits, headers, method), resolves its URL (loopback only unless
 * o->allow_remote) into t and writes one request (with o->body_file read, at most
 * BENCH_HTTP_MAX_BODY bytes) into req. Returns 0, or -1 with err set and *usage 1 when
 * the options are at fault (0: the name did not resolve). */
int bench_http_prepare(const struct bench_http_opts *o, struct bench_http_target *t, struct buf *req,
                       char *err, size_t errlen, int *usage);

#endif
