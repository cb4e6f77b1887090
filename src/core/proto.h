/* proto.h - a protocol engine on the shared port: what it is given and what it offers. */
#ifndef LOOPKIT_CORE_PROTO_H
#define LOOPKIT_CORE_PROTO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/accesslog.h"
#include "core/loop.h"

/* Most a sniffer reads before it knows the protocol: one read, as the protocol's own
 * first read would have been (the bytes are handed over, not read twice). */
#define PROTO_FIRST_MAX 4096

struct loop;
struct fsroot;
struct dirsnap_cache;
struct login_gate;

/* The facts every protocol on the port shares, written once: a limit or a credential
 * given on the command line holds for HTTP and FTP alike. Owned by the server, read
 * by every thread. */
struct proto_site {
	const struct fsroot *root; /* the served directory */
	int write;                 /* uploads, deletes, renames allowed */
	/* --user: the login every protocol requires, checked and budgeted in one place
	 * (core/login.h); NULL: none. */
	struct login_gate *login;
	uint64_t max_body;         /* largest upload, by any protocol */
	unsigned max_conns;        /* open connections, all threads and protocols */
	atomic_uint *nconns;       /* the count against max_conns */
	enum accesslog_mode log;   /* access log format */
	struct log_sink *log_sink; /* where every thread's access log goes */
	/* Directory snapshots shared by every listing (core/dirsnap.h); NULL: each listing
	 * reads its own, with no overall limit. */
	struct dirsnap_cache *dirs;
	/* Bytes of request bodies and generated answers that HTTP holds in memory, all
	 * threads together (against HTTP_MEM_MAX); NULL: each thread counts its own. */
	atomic_size_t *mem;
	/* Bytes of the buffers of files copied to loopback clients, by any protocol, all
	 * threads together (against FILESEND_MEM_MAX, core/filesend.h); NULL: uncounted. */
	atomic_size_t *copy_mem;
};

/* What the sniffer learned about a client before handing it over. */
struct proto_peer {
	struct sockaddr_storage addr; /* the client's address */
	char addr_str[48];            /* the same, as text */
	int pid;                      /* the client's process; -1 when unknown */
	char name[16];                /* its name; "" when unknown */
	long uid;                     /* owner of the client's socket; -1 when not looked up */
	const char *greeted_for;      /* why it was greeted as FTP though silent (static text):
	                                 who it is; NULL when for its silence alone */
};

/* Things a protocol tells the server about a peer (the sniffer learns from them). */
enum proto_note {
	PROTO_NOTE_FTP_LOGIN,           /* the peer logged in over FTP */
	PROTO_NOTE_HTTP,                /* the peer sent an HTTP request */
	PROTO_NOTE_HTTP_AFTER_GREETING, /* an FTP session got an HTTP request line: an HTTP
	                                   client was greeted by mistake (it is closed) */
};

/* How a protocol context reaches back to the server that owns it. */
struct proto_hooks {
	/* Called when the context is stopping and its last connection has closed. */
	void (*idle)(void *arg);
	/* A fact about a peer (may be NULL). */
	void (*note)(void *arg, const struct proto_peer *peer, enum proto_note note);
	void *arg;
};

/* A protocol: one context per event-loop thread, connections handed over by the
 * sniffer (or the listener, when the protocol has the port alone). */
struct proto_ops {
	const char *name; /* "http", "ftp" */
	/* Creates the context for the thread running l. cfg is the protocol's own
	 * configuration (struct http_config, struct ftp_config), read-only and owned by
	 * the caller. Returns NULL with the reason in err. */
	void *(*ctx_new)(struct loop *l, const struct proto_site *site, const void *cfg,
	                 const struct proto_hooks *hooks, char *err, size_t errlen);
	/* Takes over the connected socket fd (ownership passes, also on failure; the
	 * connection was counted in site->nconns and the protocol uncounts it when it
	 * closes). first[0..nfirst) are the bytes the sniffer read from it (at most
	 * PROTO_FIRST_MAX; none for a server-speaks-first protocol), the rest stay in the
	 * socket. watched, when not NULL, is how this thread's loop already watches fd
	 * (the sniffer's): the protocol takes it over with proto_watch (no syscall, where
	 * a DEL and an ADD were). Returns 0, or -1 after closing fd (proto_drop). */
	int (*start)(void *ctx, int fd, const struct proto_peer *peer, const char *first, size_t nfirst,
	             struct loop_io *watched);
	/* Graceful stop: idle connections close now, busy ones after their work. */
	void (*stop)(void *ctx);
	/* Closes every connection now. */
	void (*close_all)(void *ctx);
	/* Open connections. */
	unsigned (*count)(const void *ctx);
	/* Frees the context (connections must be closed). */
	void (*ctx_free)(void *ctx);
};

/* For start: watches fd through io, taking it over from watched when given. */
static inline int proto_watch(struct loop *l, struct loop_io *watched, struct loop_io *io, int fd,
                              unsigned mask, loop_io_cb cb, void *data)
{
	return watched ? loop_io_move(l, watched, io, mask, cb, data)
	               : loop_io_start(l, io, fd, mask, cb, data);
}

/* For start's failures (proto_watch leaves watched as it was): closes fd, and the
 * watch on it. */
static inline void proto_drop(struct loop *l, struct loop_io *watched, int fd)
{
	if (watched)
		loop_io_close(l, watched);
	else
		close(fd);
}

#endif
