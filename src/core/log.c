/* log.c - server messages on stderr. */
#include "core/log.h"

#include "core/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void log_vmsg(const char *tail, const char *fmt, va_list ap)
{
	char raw[1024], line[1024];
	int m = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (m >= 0 && (size_t)m < sizeof(raw) && tail)
		m += snprintf(raw + m, sizeof(raw) - (size_t)m, "%s", tail);
	if (m < 0)
		m = 0;
	size_t rlen = (size_t)m < sizeof(raw) ? (size_t)m : sizeof(raw) - 1;
	/* Messages carry client-chosen text (names, commands): escaped, so a client can
	 * neither end the line nor send the terminal escape sequences. */
	size_t len = (size_t)snprintf(line, sizeof(line), "loopkit: ");
	len += text_escape(line + len, sizeof(line) - len - 1, raw, rlen, 0);
	line[len++] = '\n';
	/* Never block on a stderr nobody reads: a pipe that reports room for a write
	 * takes one of this size (at most 1 KiB, under PIPE_BUF) whole; else drop it. */
	struct pollfd pfd = {.fd = 2, .events = POLLOUT};
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT)) {
		ssize_t r = write(2, line, len);
		(void)r;
	}
}

void log_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(NULL, fmt, ap);
	va_end(ap);
}

void log_rate_msg(struct log_rate *r, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long long now =
	        (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
	unsigned long long next = atomic_load(&r->next_ms);
	/* One thread wins the right to write; the others count. */
	if (now < next || !atomic_compare_exchange_strong(&r->next_ms, &next, now + LOG_RATE_MS)) {
		atomic_fetch_add(&r->skipped, 1);
		return;
	}
	char tail[96] = "";
	unsigned long skipped = atomic_exchange(&r->skipped, 0);
	if (skipped)
		snprintf(tail, sizeof(tail),
		         "; %lu more like this since the last one said (at most one a second)", skipped);
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(tail, fmt, ap);
	va_end(ap);
}

void log_sink_open_fd(struct log_sink *s, int fd)
{
	struct stat st;
	char path[32];
	s->fd = fd;
	s->sock = 0;
	s->path = NULL;
	atomic_init(&s->dropped, 0);
	if (fstat(fd, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		s->sock = 1;
	} else if (S_ISFIFO(st.st_mode)) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (nfd >= 0)
			s->fd = nfd;
	} else if (S_ISREG(st.st_mode) && st.st_nlink) { /* an unnamed file has no name to reopen */
		char name[PATH_MAX];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, name, sizeof(name) - 1);
		if (n > 0 && name[0] == '/') {
			name[n] = 0;
			s->path = strdup(name);
			s->owner = st.st_uid;
		}
	}
}

int log_sink_reopen(struct log_sink *s)
{
	/* The new descriptor takes the old one's number (dup3 is atomic): other threads
	 * write through it meanwhile, and a closed number could be reused by a socket. */
	int nfd;
	if (s->path) {
		/* The name may sit in a directory others can write (/tmp): never through a
		 * symlink, never into a FIFO (O_NONBLOCK: no open that waits for a reader),
		 * never into a hard link to another file (where fs.protected_hardlinks is 0,
		 * anyone may link to a root file), only a plain file of the owner the log had,
		 * or a new one of ours. */
		nfd = open(s->path,
		           O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
		           0644);
		struct stat st;
		if (nfd >= 0 && (fstat(nfd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
		                 (st.st_uid != s->owner && st.st_uid != geteuid()))) {
			close(nfd);
			errno = EPERM;
			return errno;
		}
	} else if (s->fd > 2) /* a pipe or FIFO, opened anew through fd 2 */
		nfd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	else
		return 0; /* a terminal or a socket: nothing to reopen */
	if (nfd < 0)
		return errno;
	int rc = dup3(nfd, s->fd, s->fd > 2 ? O_CLOEXEC : 0) < 0 ? errno : 0;
	close(nfd);
	return rc;
}

void log_sink_open(struct log_sink *s)
{
	log_sink_open_fd(s, 2);
}

void log_sink_close(struct log_sink *s)
{
	if (s->fd > 2)
		close(s->fd);
	s->fd = 2;
	free(s->path);
	s->path = NULL;
}

int log_sink_write(struct log_sink *s, const char *p, size_t n)
{
	while (n) {
		ssize_t w = s->sock ? send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(s->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			atomic_fetch_add(&s->dropped, n);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
