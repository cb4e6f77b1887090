/* accesslog.h - the one access logger: a record per request or transfer, as CLF or JSON. */
#ifndef LOOPKIT_CORE_ACCESSLOG_H
#define LOOPKIT_CORE_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"

struct loop;

/* In the order of serve's --log choices (common, json, combined); NONE: --quiet. */
enum accesslog_mode { ACCESSLOG_COMMON, ACCESSLOG_JSON, ACCESSLOG_COMBINED, ACCESSLOG_NONE };

#define ACCESSLOG_FLUSH_AT    (32 * 1024) /* buffered lines are written once this much waits */
#define ACCESSLOG_PENDING_MAX (1 << 20)   /* lines past this are dropped (and counted) */

/* What one request (HTTP) or one command (FTP) did. Strings need not be terminated
 * where a length is given; NULL reads as "-". Every field is escaped on output. */
struct accesslog_rec {
	const char *remote; /* the client's address, as text */
	const char *user;   /* the logged-in user; NULL or "" when none */
	const char *method; /* "GET", "RETR"; may be NULL for a head that did not parse */
	size_t method_len;
	const char *target; /* the request target or the command's path */
	size_t target_len;
	const char *proto;   /* "HTTP/1.1", "FTP" */
	int status;          /* HTTP status or FTP reply code */
	uint64_t bytes;      /* body or file bytes sent or received */
	uint64_t us;         /* microseconds from request to response */
	const char *referer; /* HTTP's Referer and User-Agent (combined, JSON); NULL: none */
	const char *ua;
};
/* Does this mode log the Referer and User-Agent (the caller keeps them then)? */
static inline int accesslog_wants_agent(enum accesslog_mode m)
{
	return m == ACCESSLOG_COMBINED || m == ACCESSLOG_JSON;
}

/* One logger per event-loop thread: lines are gathered and written in whole-line
 * pieces of at most 4 KiB after the loop's batch, so threads never interleave lines
 * and a reader that stops reading makes us drop lines, never stall. */
struct accesslog {
	enum accesslog_mode mode;
	struct log_sink *sink; /* shared by the threads */
	struct loop *loop;     /* flushes are deferred to this loop's batch end */
	struct buf pending;
	int flush_queued;
	time_t clf_sec;
	char clf[32]; /* cached common-log time of clf_sec */
};

/* Sets up a logger writing to sink (not owned) through loop. */
void accesslog_init(struct accesslog *a, enum accesslog_mode mode, struct log_sink *sink, struct loop *loop);
/* Adds one line for r. */
void accesslog_write(struct accesslog *a, const struct accesslog_rec *r);
/* Writes what waits now. */
void accesslog_flush(struct accesslog *a);
/* Flushes and frees the buffer. */
void accesslog_free(struct accesslog *a);

#endif
