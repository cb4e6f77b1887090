/* server.h - the HTTP/1.1 server: configuration, start, run until a signal. */
#ifndef LOOPKIT_HTTP_SERVER_H
#define LOOPKIT_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ftp/ftp.h"

enum http_log_mode { HTTP_LOG_COMMON, HTTP_LOG_JSON, HTTP_LOG_NONE };

struct http_config {
	const char *root;             /* directory served */
	struct sockaddr_storage addr; /* where to listen (port 0: any free port) */
	socklen_t addrlen;
	int threads;              /* event loops, one per thread */
	int write;                /* allow PUT and DELETE */
	int dotfiles;             /* serve names starting with '.' */
	int cors;                 /* CORS headers and preflight answers */
	int spa;                  /* missing extensionless paths -> /index.html */
	const char **allow_hosts; /* extra Host names; "*" turns the check off */
	size_t nallow_hosts;
	enum http_log_mode log;
	unsigned max_conns;        /* across all threads */
	uint64_t max_body;         /* PUT and STOR/APPE body limit in bytes */
	const char *user, *pass;   /* login required (FTP); NULL: anonymous */
	unsigned head_timeout_ms;  /* a request head must arrive within this */
	unsigned idle_timeout_ms;  /* keep-alive connections idle longer are closed */
	unsigned body_timeout_ms;  /* longest pause while reading a body or writing */
	unsigned grace_ms;         /* on SIGINT/SIGTERM, time for in-flight requests */
	int proto_http, proto_ftp; /* protocols on the port (both: sniffing) */
	unsigned sniff_ms;         /* silence before a connection is greeted as FTP */
	struct ftp_config ftp;
};

/* Fills cfg with the defaults (127.0.0.1:62893, read-only, ...). */
void http_config_default(struct http_config *cfg);

struct http_server;

/* Opens the root and binds the listeners. Returns NULL with the reason in err; then
 * *err_errno holds the errno of a failed bind (EADDRINUSE, ...) or 0. */
struct http_server *http_server_new(const struct http_config *cfg, char *err, size_t errlen, int *err_errno);
/* The bound port (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);
/* Serves until SIGINT or SIGTERM (which the caller must have blocked in all threads),
 * then drains within the grace time. Returns 0, or -1 on a fatal loop error. */
int http_server_run(struct http_server *s);
void http_server_free(struct http_server *s);

#endif
