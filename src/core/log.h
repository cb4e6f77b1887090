/* log.h - server messages on stderr ("loopkit: ..."), one write per line. */
#ifndef LOOPKIT_CORE_LOG_H
#define LOOPKIT_CORE_LOG_H

#include <stdatomic.h>
#include <sys/types.h>
#include <stddef.h>

/* Writes "loopkit: " + message + newline to stderr in one write(2). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG_RATE_MS 1000 /* a kind of message a client can cause: at most one line this often */

/* One kind of message that any client can cause once per connection (a TLS hello, junk
 * bytes): zero-initialised, shared by every thread that logs it. */
struct log_rate {
	atomic_ullong next_ms; /* monotonic ms before which lines of this kind are counted */
	atomic_ulong skipped;  /* lines counted and not written since the last one written */
};

/* log_msg for a kind of message: written when none of its kind was in the last
 * LOG_RATE_MS, else only counted; the next line written then says how many were not
 * ("; 41 more like this in the last 1 s"). Thread-safe. */
void log_rate_msg(struct log_rate *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where access logs go: stderr, written so that a reader that stops reading can
 * never stall the server (lines are dropped and counted instead). */
struct log_sink {
	int fd;               /* a non-blocking descriptor for stderr's pipe, or 2 */
	int sock;             /* stderr is a socket: send with MSG_DONTWAIT */
	atomic_ulong dropped; /* bytes dropped because the reader fell behind (any thread) */
	char *path;           /* stderr is a regular file: its name, for log_sink_reopen */
	uid_t owner;          /* and that file's owner: a reopened name must have the same */
};

/* Prepares the sink for fd 2: a pipe or FIFO is reopened through /proc/self/fd/2 as a
 * new, non-blocking open file (the shell's own stderr stays as it was); a socket is
 * written with MSG_DONTWAIT; files and terminals are written as they are. */
void log_sink_open(struct log_sink *s);
/* The same for another of the process's standard descriptors (1: stdout). */
void log_sink_open_fd(struct log_sink *s, int fd);
void log_sink_close(struct log_sink *s);
/* SIGHUP, as nginx: a file renamed by logrotate is left, and stderr goes to a new file of
 * the name it had at start (opened for append, created 0644 when gone); a pipe or FIFO is
 * opened again. The new descriptor replaces the old under the same number, so threads
 * writing meanwhile lose nothing. A failure leaves stderr as it was; the error is
 * returned (0: done, or nothing to reopen). */
int log_sink_reopen(struct log_sink *s);
/* Writes n bytes; returns 0, or -1 when (part of) them had to be dropped. */
int log_sink_write(struct log_sink *s, const char *p, size_t n);

#endif
