/* log.h - server messages on stderr ("loopkit: ..."), one write per line. */
#ifndef LOOPKIT_CORE_LOG_H
#define LOOPKIT_CORE_LOG_H

#include <stdatomic.h>
#include <stddef.h>

/* Writes "loopkit: " + message + newline to stderr in one write(2). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where access logs go: stderr, written so that a reader that stops reading can
 * never stall the server (lines are dropped and counted instead). */
struct log_sink {
	int fd;        /* a non-blocking descriptor for stderr's pipe, or 2 */
	int sock;      /* stderr is a socket: send with MSG_DONTWAIT */
	atomic_ulong dropped; /* bytes dropped because the reader fell behind (any thread) */
};

/* Prepares the sink for fd 2: a pipe or FIFO is reopened through /proc/self/fd/2 as a
 * new, non-blocking open file (the shell's own stderr stays as it was); a socket is
 * written with MSG_DONTWAIT; files and terminals are written as they are. */
void log_sink_open(struct log_sink *s);
/* The same for another of the process's standard descriptors (1: stdout). */
void log_sink_open_fd(struct log_sink *s, int fd);
void log_sink_close(struct log_sink *s);
/* Writes n bytes; returns 0, or -1 when (part of) them had to be dropped. */
int log_sink_write(struct log_sink *s, const char *p, size_t n);

#endif
