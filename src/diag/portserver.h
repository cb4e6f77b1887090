/* portserver.h - Google's portserver protocol over AF_UNIX: a pid line in, a port line out. */
#ifndef LOOPKIT_DIAG_PORTSERVER_H
#define LOOPKIT_DIAG_PORTSERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "diag/portlease.h"

#define PORTSERVER_DEFAULT_ADDR "@unittest-portserver" /* portpicker's default */
#define PORTSERVER_IO_MS        1000                   /* a client must send its line within this */
#define PORTSERVER_LINE_MAX     32                     /* "<pid>\n" */
#define PORTSERVER_MAX_CLIENTS  1024                   /* served at once; more are closed and may retry */
#define PORTSERVER_FOREIGN      (-2)                   /* portserver_request: the server is another user's */

struct portserver {
	const char *addr;                   /* "@abstract" or a path */
	const struct portlease_range *pool; /* ranges ports come from */
	size_t npool;
	unsigned need;                 /* PORTLEASE_TCP | PORTLEASE_UDP */
	const char *dir;               /* lease directory */
	FILE *log;                     /* one line per request, or NULL */
	unsigned long served, refused; /* counters, for the exit line */
};

/* Runs the server until SIGINT or SIGTERM (which the caller has blocked): clients are
 * served concurrently on an event loop, each within PORTSERVER_IO_MS. Calls
 * ready(addr) once listening. Returns 0 after a signal, -1 with err filled when it
 * cannot listen (a path that exists and is not a stale socket of this user is never
 * removed). A path socket is removed on exit. */
int portserver_run(struct portserver *ps, void (*ready)(const char *addr), char *err, size_t errlen);

/* Asks the server at addr for a port for pid (pid 0: only probes that one listens).
 * Returns the port, 0 when the server had none to give, -1 when no server answers
 * there, PORTSERVER_FOREIGN when the server (SO_PEERCRED) is neither this user's nor
 * root's: then nothing was asked and err (may be NULL) names its process, uid and
 * what to do. Waits at most PORTSERVER_IO_MS. */
int portserver_request(const char *addr, pid_t pid, char *err, size_t errlen);

/* Serves one request line from a client of uid caller (SO_PEERCRED): parses the pid,
 * checks that it exists and belongs to caller (root may name any), leases a port.
 * Returns the port, or 0 (why in err) when the pid is refused or the pool is empty. */
uint16_t portserver_answer(struct portserver *ps, const char *line, size_t n, uid_t caller, char *err,
                           size_t errlen);

/* The pool of want outside the kernel's ephemeral range, for `port` and `port --server`:
 * its ranges in pool (at most two) and the ephemeral range in *eph. Returns how many
 * ranges, or 0 with err naming the sysctl when want lies inside the ephemeral range. */
size_t portserver_pool(struct portlease_range want, struct portlease_range pool[2],
                       struct portlease_range *eph, char *err, size_t errlen);

/* What `loopkit port` hands out, and on what terms: its one result, rendered as lines
 * or as JSON. */
struct portserver_grant {
	uint16_t ports[PORTLEASE_MAX_COUNT];
	size_t n;
	const char *source;         /* "portserver" or "lease" */
	unsigned lease_secs;        /* with source "lease" */
	struct portlease_range eph; /* the kernel's ephemeral range */
};

/* Gets count ports for need: from the port server at server (when not NULL or "") for
 * process owner, the rest leased from want (minus the ephemeral range) for lease_secs.
 * Returns 0, or -1 with err filled (fewer free ports than count, a server of another
 * user at server, ...). */
int portserver_grant(size_t count, unsigned need, struct portlease_range want, unsigned lease_secs,
                     const char *server, pid_t owner, struct portserver_grant *g, char *err, size_t errlen);

/* {"ports":[...],"host":"127.0.0.1","source":...,"lease_secs":...,"ephemeral_range":[lo,hi]}.
 * Returns 0, or -1 when b is full. */
struct buf;
int portserver_grant_json(struct buf *b, const struct portserver_grant *g);

#endif
