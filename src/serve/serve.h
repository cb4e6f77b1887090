/* serve.h - `loopkit serve`'s server: one port, several protocols, worker threads. */
#ifndef LOOPKIT_SERVE_SERVE_H
#define LOOPKIT_SERVE_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/accesslog.h"
#include "ftp/ftp.h"
#include "http/http.h"

#define SERVE_SNIFF_MS_DEFAULT     1000 /* silence before an unidentified peer is greeted as FTP */
#define SERVE_DEFAULT_MAX_CONNS    16384
#define SERVE_DEFAULT_MAX_BODY_GIB 1 /* uploads, in GiB */
#define SERVE_DEFAULT_GRACE_S      5
#define SERVE_PASV_MAX_PORTS       1024 /* ports an FTP passive range may span */

struct serve_config {
	const char *root;             /* directory served; NULL: none (an API-only server) */
	int dotfiles;                 /* serve and list names starting with '.' */
	int follow_symlinks;          /* follow symlinks wherever they lead (else only inside root) */
	struct sockaddr_storage addr; /* where to listen (port 0: any free port) */
	socklen_t addrlen;
	int threads;       /* event loops, one per thread */
	unsigned grace_ms; /* on SIGINT/SIGTERM, time for in-flight requests */
	int write;         /* uploads, deletes, renames (every protocol) */
	const char *user;  /* login required by every protocol; NULL: none */
	const char *pass;
	uint64_t max_body;  /* largest upload, by any protocol */
	unsigned max_conns; /* open connections, all threads and protocols */
	enum accesslog_mode log;
	int proto_http, proto_ftp; /* protocols on the port (both: the sniffer decides) */
	unsigned sniff_ms;         /* silence before an unidentified peer is greeted as FTP */
	struct http_config http;
	struct ftp_config ftp;
};

/* Fills cfg with the defaults (127.0.0.1:62893, read-only, HTTP and FTP, ...). */
void serve_config_default(struct serve_config *cfg);

struct serve_server;

/* Why serve_new failed to bind: errno (EADDRINUSE, EACCES; 0 for other failures) and the
 * address (the configured one, or its loopback twin: net_listen_loopback). */
struct serve_bind_err {
	int eno;
	struct sockaddr_storage addr;
};

/* Opens the root, takes the port (alone: a port held by anyone, loopkit included, is
 * refused; on 127.0.0.1 or ::1 the other one's same port too) and prepares the workers.
 * Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (serve_run reads them).
 * Returns NULL with the reason in err and be filled in. */
struct serve_server *serve_new(const struct serve_config *cfg, char *err, size_t errlen,
                               struct serve_bind_err *be);
/* The bound port (useful with port 0). */
uint16_t serve_port(const struct serve_server *s);
/* Serves until SIGINT or SIGTERM (which the caller must have blocked in all threads),
 * then drains within the grace time; a second signal ends it at once. SIGHUP reopens
 * the log sink. Returns 0, or -1 on a fatal loop error. */
int serve_run(struct serve_server *s);
void serve_free(struct serve_server *s);

/* Does an FTP passive range lo-hi (lo 0: none) fit SERVE_PASV_MAX_PORTS? 0, or -1
 * with the message in err (a usage error: checked before the server starts). */
int serve_pasv_span_check(unsigned lo, unsigned hi, char *err, size_t errlen);

#endif
