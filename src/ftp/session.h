/* session.h - the FTP engine's insides, shared by session.c, cmds.c and data.c. */
#ifndef LOOPKIT_FTP_SESSION_H
#define LOOPKIT_FTP_SESSION_H

#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/accesslog.h"
#include "core/buf.h"
#include "core/dirsnap.h"
#include "core/filesend.h"
#include "core/errors.h"
#include "core/fsroot.h"
#include "core/loop.h"
#include "core/proto.h"
#include "ftp/ftp.h"
#include "ftp/list.h"
#include "ftp/parse.h"

#define FTP_OUT_MAX  (64 * 1024) /* replies waiting for the client to read them */
#define FTP_OUT_HIGH (16 * 1024) /* past this, commands wait until replies drain */
#define FTP_LIST_BUF (16 * 1024) /* a listing's output buffer, per transfer */

enum ftp_xfer_kind { FTP_X_RETR, FTP_X_STOR, FTP_X_LIST };
enum ftp_data_mode { FTP_D_NONE, FTP_D_PASV, FTP_D_PORT };

/* One thread's sessions. */
struct ftp_ctx {
	struct loop *loop;
	const struct proto_site *site;
	const struct ftp_config *cfg;
	struct proto_hooks hooks;
	struct accesslog log;
	struct ftp_session *sessions; /* doubly linked */
	unsigned nsessions;
	int stopping;
};

/* A transfer in progress (RETR, STOR/APPE, LIST/NLST/MLSD): allocated for its length,
 * so an idle session holds none of this. */
struct ftp_xfer {
	enum ftp_xfer_kind kind;
	const char *verb;          /* "RETR", ...: the log's method */
	char target[PATH_MAX + 1]; /* "/path": the log's target */
	uint64_t t_start;          /* loop_clock_us() at the command */
	uint64_t bytes;            /* moved so far */
	/* RETR */
	struct filesend file;
	/* STOR, APPE */
	int upload; /* up is live */
	struct fsroot_upload up;
	int over; /* past --max-body: the rest is read and dropped, then 552 */
	/* LIST, NLST, MLSD */
	const struct dirsnap *snap; /* NULL for the listing of one file (already in out) */
	size_t next;                /* the next entry of snap to format */
	enum ftp_list_kind lkind;
	time_t now;     /* "now" for ls-style dates, fixed per listing */
	struct buf out; /* formatted, not yet sent */
	/* the end: all bytes out, waiting for the data connection to drain */
	int draining;
	int fin_seen;         /* the client closed its side */
	uint64_t drain_until; /* loop_now() deadline */
	unsigned drain_wait;  /* ms to the next look at the send queue */
};

struct ftp_session {
	struct ftp_ctx *x;
	struct ftp_session *prev, *next;
	struct loop_io io;       /* control connection */
	struct loop_timer timer; /* idle timeout, the turn of a login at the gate */
	struct buf in, out;
	struct sockaddr_storage local; /* our end of the control connection */
	struct proto_peer peer;
	int peer_uid;         /* uid owning the client's control socket; -1 unknown */
	int closing;          /* close once out is flushed */
	int close_after_xfer; /* shutting down: close when the transfer ends */
	int skip_line;        /* discarding the rest of an over-long line */
	/* A command held until the transfer ends, as parsed: the parse rewrites its line in
	 * place (NUL for the CR, telnet codes dropped), so it is never parsed twice. It is
	 * the first line of in: its argument is at held_arg from in's start, the line
	 * held_len long (0: none held). */
	struct ftp_command held;
	size_t held_arg, held_len;
	int logged_in, user_given;
	int user_long;    /* USER's name did not fit in user: never the login */
	int login_proven; /* logged in once: the same credentials skip the gate's budget */
	int login_wait;   /* PASS waits for its turn at the login gate (core/login.h) */
	int login_right;  /* ...and its credentials were right */
	int running;      /* inside control_run: no nested runs */
	int shut;         /* closed; freed after the batch */
	int epsv_all;
	char user[64];
	char *cwd;  /* normalised relative path, "" = root (heap) */
	char *rnfr; /* RNFR's path until RNTO; NULL when none */
	uint64_t rest;

	/* data channel */
	enum ftp_data_mode mode;
	struct loop_io pasv_io; /* passive listener */
	struct sockaddr_storage port_addr;
	uint32_t port_inode;    /* the listener PORT/EPRT found there (local clients); 0: none */
	struct loop_io data_io; /* connected (or connecting) data socket */
	int data_connecting;
	struct loop_timer data_timer; /* setup, stall and drain deadlines */
	struct ftp_xfer *xfer;        /* NULL when no transfer runs */

	/* STAT PATH: a listing sent over the control connection as it drains */
	const struct dirsnap *stat_snap;
	size_t stat_next;
	time_t stat_now;
};

/* ---- session.c: replies, the control connection ---- */

/* Queues the reply r ("CODE text"), its "%s" filled with detail. */
void ftp_reply(struct ftp_session *s, enum lk_reply r, const char *detail);
/* Queues the first line of a multi-line reply ("CODE-text"). */
void ftp_reply_begin(struct ftp_session *s, enum lk_reply r, const char *detail);
/* Queues one inner line of a multi-line reply: a space, then text (so no inner line
 * can read as a reply code). */
void ftp_reply_more(struct ftp_session *s, const char *text, size_t len);
/* Queues the error e ("CODE message"), its "%s" filled with detail. */
void ftp_reply_err(struct ftp_session *s, enum lk_err e, const char *detail);
/* Queues the error for a failed file operation (-errno, as fsroot returns it). */
void ftp_reply_errno(struct ftp_session *s, int neg_errno);
/* One access-log record for the transfer or command that just ended. */
void ftp_log(struct ftp_session *s, const char *verb, const char *target, int code, uint64_t bytes,
             uint64_t t_start);
/* (Re)arms the idle deadline of the control connection. */
void ftp_arm_idle(struct ftp_session *s);
/* Runs the commands waiting in the input, flushes replies, picks what to wait for.
 * May close the session (check s->shut after). */
void ftp_control_run(struct ftp_session *s);
/* Closes the session now (its record is freed after the batch). */
void ftp_session_close(struct ftp_session *s);
/* Starts sending a listing of snap over the control connection (STAT PATH); the
 * session holds the reference until it is sent. */
void ftp_stat_listing(struct ftp_session *s, const struct dirsnap *snap);

/* ---- cmds.c: the command table ---- */

/* Runs one parsed command. Returns 0, or 1 when it must wait for the transfer in
 * progress (the command stays in the input, untouched). */
int ftp_command(struct ftp_session *s, const struct ftp_command *c);
/* The timer of the control connection fired: a login's turn, or the idle timeout. */
void ftp_control_timer(struct ftp_session *s);

/* ---- data.c: the data channel and transfers ---- */

/* Sets up the data channel fields of a new session. */
void ftp_data_init(struct ftp_session *s);
/* Closes the data connection and the passive listener; the mode is forgotten. */
void ftp_data_close(struct ftp_session *s);
/* Starts transfer x (its 150 reply already queued); the session owns x. */
void ftp_xfer_start(struct ftp_session *s, struct ftp_xfer *x);
/* A new transfer record of kind k for verb and rel; NULL when out of memory. */
struct ftp_xfer *ftp_xfer_new(enum ftp_xfer_kind k, const char *verb, const char *rel);
/* Frees x and what it holds (an upload in progress is dropped). */
void ftp_xfer_free(struct ftp_ctx *x, struct ftp_xfer *t);
/* Is the session's data channel ready to be used (a mode set, or connected)? */
int ftp_data_ready(const struct ftp_session *s);

#endif
