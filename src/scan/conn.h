/* conn.h - one probe connection: connect, send, read a bounded answer, each under a deadline. */
#ifndef LOOPKIT_SCAN_CONN_H
#define LOOPKIT_SCAN_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "scan/scan.h"

/* Decides when an answer is whole: 1 stop reading, 0 read on. */
typedef int (*scan_complete_fn)(const char *b, size_t n, void *arg);

struct scan_conn {
	int fd;                    /* -1 when closed */
	char b[SCAN_READ_MAX + 1]; /* the answer, NUL-terminated (b[n] = 0) */
	size_t n;
	int eof;      /* the peer closed (or reset) */
	int timedout; /* the deadline passed before the answer was whole */
};

/* Connects to port of cfg's target within cfg->connect_ms. Returns 0, or -1 with
 * c->fd -1. */
int scan_conn_open(const struct scan_config *cfg, uint16_t port, struct scan_conn *c);
/* Sends p[0..n) within ms. Returns 0, or -1 (the peer closed or the deadline passed). */
int scan_conn_send(struct scan_conn *c, const void *p, size_t n, unsigned ms);
/* Empties the answer buffer, then reads until done(b, n, arg) says whole, the peer
 * closes, SCAN_READ_MAX bytes are held, or ms pass. Returns the bytes held (c->n). */
size_t scan_conn_read(struct scan_conn *c, scan_complete_fn done, void *arg, unsigned ms);
/* Closes the connection (safe when closed); the answer stays in c. */
void scan_conn_close(struct scan_conn *c);

/* One HTTP request on a fresh connection: "METHOD path HTTP/1.1", Host host_hdr (NULL:
 * the target's own "127.0.0.1:PORT"), then extra (CRLF-terminated header lines, or
 * NULL), Connection: close. The answer is in c (closed). Returns the status, or 0 when
 * no HTTP answer came. */
int scan_http_request(const struct scan_config *cfg, uint16_t port, const char *method, const char *path,
                      const char *host_hdr, const char *extra, struct scan_conn *c);

/* An FTP reply (single or multi-line) is whole. */
int scan_ftp_reply_complete(const char *b, size_t n, void *arg);

#endif
