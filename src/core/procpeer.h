/* procpeer.h - who is at the other end of a loopback connection, found off the loop thread. */
#ifndef LOOPKIT_CORE_PROCPEER_H
#define LOOPKIT_CORE_PROCPEER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;

/* What kind of program holds the client's socket. */
enum procpeer_class {
	PROCPEER_UNKNOWN,    /* not a local socket, or its process cannot be read (another user's) */
	PROCPEER_OTHER,      /* a process that is none of the below */
	PROCPEER_BROWSER,    /* a web browser: opens connections ahead of need and leaves them silent */
	PROCPEER_FTP_CLIENT, /* an FTP client by name (lftp, ncftp, ...) or by its command line
	                        (curl, wget or aria2c naming only ftp:// URLs) */
	PROCPEER_FTP_PEER,   /* logged in over FTP on this server, sent no HTTP since (as far as
	                        lookups saw), and every thread of it waits for input */
	PROCPEER_WAITING,    /* a thread of it sleeps reading this very socket: it waits for the
	                        server to speak, as an FTP client does */
};

/* Limits of the work done for lookups (named so tests and docs can cite them). */
#define PROCPEER_FAST_LINKS    8192  /* fd links read per fast pass (FTP clients, young processes) */
#define PROCPEER_SLOW_LINKS    65536 /* fd links read per slow pass (browsers, everyone else) */
#define PROCPEER_SLOW_EVERY_MS 1000  /* a slow pass runs at most this often */
#define PROCPEER_YOUNG_MS      5000  /* processes started this recently are searched at once */
#define PROCPEER_RECENT_MS     60000 /* ...and those found holding a client this recently */
#define PROCPEER_MAX_PENDING   16384 /* lookups waiting at once; more are answered UNKNOWN */
#define PROCPEER_MAX_THREADS   256   /* threads read to tell whether a process waits for input */
#define PROCPEER_MAX_RECHECKS  1024  /* rechecks waiting at once; more are refused */

struct procpeer_result {
	enum procpeer_class cls;
	int pid;          /* -1 when unknown */
	int fd;           /* the holder's descriptor for the socket (for procpeer_recheck); -1 when unknown */
	uint32_t uid;     /* owner of the client's socket; (uint32_t)-1 when unknown */
	char name[16];    /* process name; "" when unknown */
	const char *rule; /* why this class, static text for the log */
	int first;        /* the first answer about this process: log it once */
	int busy;         /* rechecks: a thread of it is running or runnable (it may be about to send) */
};

/* Called in the loop thread that asked, with the answer (valid during the call). */
typedef void (*procpeer_cb)(struct loop *l, void *arg, const struct procpeer_result *r);

struct procpeer;

/* The lookup service; its thread starts at the first question. Returns NULL with the
 * reason in err. */
struct procpeer *procpeer_new(char *err, size_t errlen);
/* Stops the thread; lookups still waiting are answered PROCPEER_UNKNOWN (posted to
 * their loops, which run them at their next turn or when freed). */
void procpeer_free(struct procpeer *p);

/* Asks, for the TCP connection we accepted (our address local, theirs peer), who holds
 * the client's end. Never blocks on /proc: the work happens on the lookup thread and
 * cb(l, arg, result) runs later in l's thread (via loop_post). cancel (may be NULL),
 * which must stay valid until cb runs, is set by the asker when the answer no longer
 * matters (the client spoke meanwhile): the thread then answers PROCPEER_UNKNOWN
 * without the work, so a loaded machine's late HTTP clients cost no /proc scans.
 * Returns 0, or -1 when the question could not be queued (then cb will not run). */
int procpeer_ask(struct procpeer *p, struct loop *l, const struct sockaddr_storage *local,
                 const struct sockaddr_storage *peer, procpeer_cb cb, void *arg, const atomic_int *cancel);

/* Asks again, cheaply, whether a thread of process pid now reads its descriptor fd
 * (both from an earlier answer): a client that had not yet reached its read when it
 * was first looked up. Only the threads of pid are read (once per batch, however many
 * rechecks name it). cb gets PROCPEER_WAITING, or PROCPEER_OTHER with busy set when a
 * thread of pid is running or runnable. Returns 0, or -1 when
 * too many rechecks wait (then cb will not run). */
int procpeer_recheck(struct procpeer *p, struct loop *l, int pid, int fd, procpeer_cb cb, void *arg);

/* Notes that process pid (as a result named it) logged in over FTP (ftp_login 1) or
 * sent HTTP (0) here: an FTP login makes its later silent connections FTP at once;
 * any HTTP undoes that. Thread-safe. */
void procpeer_note(struct procpeer *p, int pid, int ftp_login);

/* The class a process name and command line give (cmdline: NUL-separated arguments,
 * n bytes), with the rule as static text in *rule. Pure: used by the lookup thread and
 * by unit tests. */
enum procpeer_class procpeer_classify(const char *comm, const char *cmdline, size_t n, const char **rule);

/* Text for a class, for logs ("FTP client", "browser", ...). */
const char *procpeer_class_name(enum procpeer_class c);

#endif
