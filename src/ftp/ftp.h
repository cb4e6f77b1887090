/* ftp.h - the FTP server side of `serve`: sessions handed over by the protocol sniffer. */
#ifndef LOOPKIT_FTP_FTP_H
#define LOOPKIT_FTP_FTP_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/fsroot.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proto.h"

#define FTP_DEFAULT_IDLE_TIMEOUT_S 300 /* a control connection idle longer gets 421 */
#define FTP_DEFAULT_DATA_TIMEOUT_S 30  /* data connection setup or stall */

struct ftp_config {
	int write;                 /* allow STOR, APPE, DELE, MKD, RMD, RNFR/RNTO */
	const char *user, *pass;   /* required login; NULL: anonymous */
	uint16_t pasv_lo, pasv_hi; /* passive port range; 0: any */
	unsigned idle_timeout_ms;  /* control connection idle -> 421 */
	unsigned data_timeout_ms;  /* data connection setup or stall */
	int log;                   /* 0 common, 1 json, 2 none (same values as the HTTP log) */
};

struct ftp_session;

/* Per event-loop thread. */
struct ftp_ctx {
	struct loop *loop;
	const struct fsroot *root;
	const struct ftp_config *cfg;
	atomic_uint *nconns; /* shared connection count, decremented when a session ends */
	struct log_sink *log; /* access log lines go here */
	struct ftp_session *sessions;
	unsigned nsessions;
	int stopping;
	void (*on_idle)(void *arg); /* called when stopping and the last session ended */
	void *arg;
};

/* Fills cfg with FTP's defaults (idle 300 s, data 30 s, any passive port). */
void ftp_config_default(struct ftp_config *cfg);

/* FTP as a protocol on the shared port; ctx_new's cfg is a struct ftp_config. */
extern const struct proto_ops ftp_proto_ops;

/* Starts a session on the connected control socket fd (ownership passes to the
 * session) and sends the 220 greeting. Returns 0, or -1 after closing fd. */
int ftp_session_start(struct ftp_ctx *x, int fd, const struct sockaddr_storage *peer);

/* Shutdown: idle sessions get 421 and close; sessions in a transfer close after it. */
void ftp_ctx_stop(struct ftp_ctx *x);
/* Closes every session now. */
void ftp_ctx_close_all(struct ftp_ctx *x);

#endif
