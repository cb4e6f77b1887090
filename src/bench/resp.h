/* resp.h - incremental HTTP/1.x response framing for the load generator (pure, no I/O). */
#ifndef LOOPKIT_BENCH_RESP_H
#define LOOPKIT_BENCH_RESP_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_RESP_MAX_HEAD (16 * 1024) /* a longer response head is an error */

enum bench_resp_body { RESP_BODY_NONE, RESP_BODY_LENGTH, RESP_BODY_CHUNKED, RESP_BODY_EOF };

/* Framing state of one response; bench_resp_reset before each. It never holds bytes:
 * the caller keeps unconsumed input (an incomplete head or chunk-size line). */
struct bench_resp {
	int in_body; /* head done */
	int status;  /* 100..599 once the head is parsed */
	int close;   /* the server will close after this response */
	enum bench_resp_body body;
	uint64_t left;       /* LENGTH: body bytes left; CHUNKED: bytes left of this chunk */
	int chunk_state;     /* CHUNKED: 0 size line, 1 data, 2 CRLF after data, 3 trailers */
	uint64_t body_bytes; /* body bytes seen (chunked: payload only) */
	size_t last_len;     /* bytes of an incomplete head already scanned */
};

#define BENCH_RESP_DONE  1 /* a whole response was consumed */
#define BENCH_RESP_MORE  0 /* all input consumed, response incomplete */
#define BENCH_RESP_ERROR (-1)

void bench_resp_reset(struct bench_resp *r);
/* Feeds buf[0..len) to the parser. head_only: the request was HEAD (no body).
 * Returns BENCH_RESP_DONE with *used bytes consumed (the rest belongs to the next
 * response), BENCH_RESP_MORE with *used consumed (the caller keeps buf[*used..len)
 * and calls again with it plus new bytes), or BENCH_RESP_ERROR with *why set to a
 * static reason. A 1xx interim response is skipped (consumed, not DONE). A body
 * that runs to EOF is never DONE here: call bench_resp_eof when the peer closes. */
int bench_resp_feed(struct bench_resp *r, const char *buf, size_t len, int head_only, size_t *used,
                    const char **why);
/* The peer closed: returns 1 when that completes the response (a body framed by
 * EOF), 0 when the response was cut short. */
int bench_resp_eof(const struct bench_resp *r);

#endif
