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
#define PORTSERVER_IO_MS 1000     /* a client must send its line within this */
#define PORTSERVER_LINE_MAX 32    /* "<pid>\n" */

struct portserver {
	const char *addr;                     /* "@abstract" or a path */
	const struct portlease_range *pool;   /* ranges ports come from */
	size_t npool;
	unsigned need;                        /* PORTLEASE_TCP | PORTLEASE_UDP */
	const char *dir;                      /* lease directory */
	FILE *log;                            /* one line per request, or NULL */
	unsigned long served, refused;        /* counters, for the exit line */
};

/* Runs the server until SIGINT or SIGTERM (which the caller has blocked). Calls
 * ready(addr) once listening. Returns 0 after a signal, -1 with err filled when it
 * cannot listen. A path socket is removed on exit. */
int portserver_run(struct portserver *ps, void (*ready)(const char *addr), char *err,
		size_t errlen);

/* Asks the server at addr for a port for pid. Returns the port, 0 when the server had
 * none to give, -1 when no server answers there. Waits at most PORTSERVER_IO_MS. */
int portserver_request(const char *addr, pid_t pid);

/* Serves one request line: parses the pid, checks it, leases a port. Returns the port,
 * or 0 (why in err) when the pid is refused or the pool is empty. */
uint16_t portserver_answer(struct portserver *ps, const char *line, size_t n, char *err,
		size_t errlen);

#endif
