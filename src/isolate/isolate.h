/* isolate.h - a command in a private network namespace with lo up; ports forwarded in and out. */
#ifndef LOOPKIT_ISOLATE_ISOLATE_H
#define LOOPKIT_ISOLATE_ISOLATE_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/acceptor.h"
#include "core/buf.h"
#include "core/loop.h"
#include "core/netns.h"
#include "diag/nsprobe.h"

#define ISOLATE_MAX_FORWARDS  32    /* -p and --out together */
#define ISOLATE_MAX_CONNS     1024  /* default of --max-conns: relayed connections at once */
#define ISOLATE_CONNS_LIMIT   16384 /* the most --max-conns allows (6 descriptors each) */
#define ISOLATE_DRAIN_MS      1000  /* after CMD exits, what it sent still flows until it stalls this long */
#define ISOLATE_ACCEPT_BATCH  16    /* connections taken per listener wakeup */
#define ISOLATE_BACKLOG       511   /* listen backlog of every forward */
#define ISOLATE_READ_LEN      (1u << 20) /* one read takes this much at most (and what the pipe holds) */
#define ISOLATE_PIPE_BULK     (1u << 20) /* the pipe of a bulk way (if the user's pipe budget allows) */
#define ISOLATE_PUMP_ROUNDS   16         /* reads per way per wakeup: others get their turn */
#define ISOLATE_FDS_PER_CONN  6          /* two sockets, two pipes */
#define ISOLATE_EXIT_FAILED   1          /* isolation could not be set up (as for any failure) */
#define ISOLATE_EXIT_NOEXEC   126        /* CMD found but not runnable (as the shell says) */
#define ISOLATE_EXIT_NOTFOUND 127        /* CMD not found (as the shell says) */
#define ISOLATE_ERR           1024       /* an error message: cause, then "to allow it: ..." */
#define ISOLATE_FTP_PASV_LO   50000      /* the passive range the FTP note suggests ... */
#define ISOLATE_FTP_PASV_N    10         /* ... and its length (each port is a forward) */

/* Which way a forward carries connections. */
enum isolate_dir {
	ISOLATE_IN,  /* -p: a listener on the host's loopback, relayed to a port inside */
	ISOLATE_OUT, /* --out: a listener inside, relayed to the host's service at the same address */
};

struct isolate_forward {
	enum isolate_dir dir;
	struct sockaddr_storage host;  /* IN: the host listener's address (port filled once bound);
	                                  OUT: the host service connections go to */
	struct sockaddr_storage inner; /* IN: where connections go inside; OUT: the listener inside */
	socklen_t hostlen, innerlen;
	int fd;   /* the listener (host side for IN, inside for OUT), or -1 */
	int twin; /* IN: its loopback twin's port, held (net_listen_loopback), or -1 */
	struct acceptor acc;
	/* --direct (IN), set in the loop's thread: the server inside may hold the host
	 * listener (loopkit no longer accepts on it); clients inside reach it through
	 * inner_fd, a listener at its address inside (inner_new: from the bind thread) */
	int handed;
	int inner_fd, inner_new;
	struct acceptor inner_acc;
	struct isolate *iso;
	char spec[64]; /* as given on the command line, for messages */
};

/* What to run and what to forward. */
struct isolate_config {
	char **argv;                 /* CMD and its arguments, NULL-terminated (not owned) */
	unsigned max_conns;          /* relayed connections at once; more wait in the listen backlog */
	int direct;                  /* -p hands the host listener to the server that binds INNER */
	int quiet;                   /* -q: nothing on stderr but errors */
	struct isolate_forward *fwd; /* nfwd of them, room for cap (isolate_config_free) */
	size_t nfwd, cap;
};

struct relay;

/* One isolation: set up by isolate_prepare, run (and torn down) by isolate_run. */
struct isolate {
	struct isolate_config cfg;
	struct netns_state ns;
	sigset_t oldmask;     /* restored for CMD */
	struct rlimit nofile; /* CMD gets this back */
	int prepared;         /* listeners may be open, namespaces entered */
	/* host sockets for --out come from a thread that stays in the host's namespace */
	int helper_fd[2];
	pthread_mutex_t helper_lock; /* one question and its answer at a time */
	pthread_t helper;
	int helper_on;
	/* running */
	struct loop *loop;
	pid_t child;   /* the namespace's pid 1 */
	int own_group; /* pid 1 and CMD in a process group of their own (not a terminal's
	                  foreground job): see relay_signal in run.c */
	struct loop_io sig_io;
	/* --direct: the thread that answers the binds inside (direct.c), and what it owns */
	int notify_fd;                     /* the seccomp listener */
	int direct_stop_fd, direct_ack_fd; /* eventfds: end the thread; a posted step ran */
	pthread_t direct_thread;
	int direct_on;
	int direct_off; /* the kernel cannot hand descriptors over: every bind goes on */
	void *notif_req, *notif_resp;
	size_t notif_req_len, notif_resp_len;
	/* how far each forward's hand-over went: each step implies the ones before */
	enum { DIRECT_NONE, DIRECT_INNER, DIRECT_QUIET, DIRECT_HELD } direct_step[ISOLATE_MAX_FORWARDS];
	int life_fd;      /* held open: the child sees it close if we die */
	void *pid1_stack; /* pid 1's, when it shares loopkit's memory */
	size_t pid1_stack_len;
	int exit_code;
	int cmd_done; /* the child has exited: draining */
	int closing;  /* isolate_run is tearing down: no acceptor starts */
	struct loop_timer drain;
	struct relay *relays; /* every live relay */
	unsigned nconns;
	int paused; /* at max_conns: acceptors stopped */
	unsigned long long accepted, refused;
	unsigned long long bytes;      /* relayed so far, every way */
	unsigned long long drain_mark; /* bytes at the last drain tick */
};

/* Defaults: no forwards, ISOLATE_MAX_CONNS. */
void isolate_config_init(struct isolate_config *c);
void isolate_config_free(struct isolate_config *c);

/* Adds a forward from its text: IN "[ADDR:]HOSTPORT[:INNERPORT]" (HOSTPORT 0: any free
 * port, then INNERPORT is needed; ADDR a loopback address, IPv6 in brackets, default
 * 127.0.0.1; the inside end is 127.0.0.1 or ::1, as ADDR's family), OUT "[ADDR:]PORT"
 * (the same address inside and out). Pure. Returns 0, or -1 with the reason in err. */
int isolate_config_add(struct isolate_config *c, enum isolate_dir dir, const char *spec, char *err,
                       size_t errlen);

/* Everything short of running CMD: the host listeners (their ports known after this),
 * the user namespace, the network namespace with lo up, the listeners inside. The
 * calling thread is left in the new network namespace. On failure returns -1 with err
 * holding the cause and, when a control blocks namespaces, "\n  to allow it: ...". */
int isolate_prepare(struct isolate *iso, const struct isolate_config *c, char *err, size_t errlen);

/* Runs CMD in the namespace and relays the forwards until it exits (then what was
 * already sent drains, until nothing has moved for ISOLATE_DRAIN_MS). Signals sent to this process
 * (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) are passed on to CMD; those the
 * terminal sends reach CMD directly. Every process left in the namespace is killed when
 * CMD exits. Frees everything. Returns CMD's exit status as a shell gives it (128+N for
 * signal N), 127/126 when it could not be run. */
int isolate_run(struct isolate *iso);

/* Frees what isolate_prepare made (when isolate_run is not called). */
void isolate_abandon(struct isolate *iso);

/* When CMD is `loopkit serve` with FTP on, forwarded in, and no --pasv-ports: writes a
 * note into out saying how to forward its passive data ports (-p A-B and --pasv-ports
 * A-B), and returns 1; else 0. Pure (reads c's argv and forwards). */
int isolate_ftp_note(const struct isolate_config *c, char *out, size_t len);

/* "127.0.0.1:41234" for a forward's host or inner end. Returns out. */
char *isolate_end_text(const struct sockaddr_storage *ss, char *out, size_t len);

/* The two renderings of the forwards: one line each for people, and
 * {"forwards":[{"dir":"in"|"out","host":"127.0.0.1:41234","inside":"127.0.0.1:62893"}],
 * "direct":bool,"user_namespace":bool,"ipv6":bool} (-1 when the buffer limit was hit). */
void isolate_print(FILE *f, const struct isolate *iso);
int isolate_json(struct buf *b, const struct isolate *iso);

#endif
