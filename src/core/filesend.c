/* filesend.c - a file's bytes to a socket: sendfile, or through memory (filesend.h). */
#include "core/filesend.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "core/net.h"

void filesend_init(struct filesend *f)
{
	f->fd = -1;
	f->off = 0;
	f->left = 0;
	f->mem = NULL;
	f->start = f->end = 0;
	f->count = NULL;
	f->copy = 0;
}

int filesend_wants_copy(const struct sockaddr_storage *peer, uint64_t len)
{
	return len >= FILESEND_COPY_MIN && net_is_loopback((const struct sockaddr *)peer);
}

void filesend_start(struct filesend *f, int fd, uint64_t off, uint64_t len, int copy, atomic_size_t *count)
{
	filesend_end(f);
	f->fd = fd;
	f->off = (off_t)off;
	f->left = len;
	f->copy = copy;
	f->count = count;
}

/* Takes the copy's memory at the first send; without it (the budget is full, or no
 * memory), sendfile sends it all: it is asked once. */
static void take_mem(struct filesend *f)
{
	f->copy = 0;
	if (f->count && atomic_fetch_add(f->count, FILESEND_CHUNK) + FILESEND_CHUNK > FILESEND_MEM_MAX) {
		atomic_fetch_sub(f->count, FILESEND_CHUNK);
		return;
	}
	f->mem = malloc(FILESEND_CHUNK);
	if (!f->mem && f->count)
		atomic_fetch_sub(f->count, FILESEND_CHUNK);
}

ssize_t filesend_send(struct filesend *f, int sock, size_t max)
{
	if (f->copy)
		take_mem(f);
	if (!f->mem) {
		size_t want = f->left < max ? (size_t)f->left : max;
		ssize_t n = sendfile(sock, f->fd, &f->off, want);
		if (n > 0)
			f->left -= (uint64_t)n;
		return n;
	}
	if (f->start == f->end) {
		/* Read only into an empty buffer: what the socket did not take stays read. */
		size_t want = f->left < FILESEND_CHUNK ? (size_t)f->left : FILESEND_CHUNK;
		ssize_t r = pread(f->fd, f->mem, want, f->off);
		if (r <= 0)
			return r;
		f->start = 0;
		f->end = (size_t)r;
		f->off += r;
		f->left -= (uint64_t)r;
	}
	size_t n = f->end - f->start;
	if (n > max)
		n = max;
	if (n > FILESEND_SEND)
		n = FILESEND_SEND;
	ssize_t w = send(sock, f->mem + f->start, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w > 0)
		f->start += (size_t)w;
	return w;
}

void filesend_end(struct filesend *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->mem && f->count)
		atomic_fetch_sub(f->count, FILESEND_CHUNK);
	free(f->mem);
	filesend_init(f);
}
