/* filesend.h - a file's bytes to a socket, one rule for HTTP and FTP: sendfile(2), or,
 * to a reader on this machine, pread(2) into memory and send(2) from there.
 *
 * Why copy: on loopback the reader is the bottleneck of a big download, and the way the
 * bytes come into its socket decides what each byte costs it. curl fetching a 256 MiB
 * file, server and curl pinned to a core each, 11 interleaved rounds, medians:
 * sendfile 2.3 GB/s, sendfile in 32 KiB pieces 2.5; pread and send in pieces of 8 KiB
 * 1.6 (the server's core is then the limit), 16 KiB 2.4, 24 KiB 2.65, 32 KiB 2.9-3.0,
 * 48 KiB 2.6, 128 KiB 2.4. The server's core does one more copy for it; a core that is
 * otherwise idle while its one client is busy. Over a network the reader is not the
 * limit and the copy sendfile saves is worth more: other peers keep sendfile.
 * docs/serve.md ("Big files") has the figures against vsftpd and pyftpdlib. */
#ifndef LOOPKIT_CORE_FILESEND_H
#define LOOPKIT_CORE_FILESEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define FILESEND_COPY_MIN (64u << 10)  /* a body at least this big, to a loopback peer, is copied */
#define FILESEND_CHUNK    (128u << 10) /* read from the file at a time when copying */
#define FILESEND_SEND     (32u << 10)  /* ...and sent at a time (measured: see above) */
/* The copies' buffers, all threads and protocols together (proto_site.copy_mem), are
 * at most this: 256 copies at once; sendfile serves the others. A budget of their own,
 * so that downloads never take memory from /_/ bodies and answers (HTTP_MEM_MAX). */
#define FILESEND_MEM_MAX (32u << 20)
/* An HTTP file body's bytes per event-loop turn while other connections of the thread
 * are ready (FTP's FTP_TURN_BUDGET is the same): eight downloads of 1 MiB turns each,
 * copied or sendfile'd, held other clients' requests ~5 ms at the median. */
#define FILESEND_TURN (256u << 10)

struct filesend {
	int fd;               /* the file; -1 when none */
	off_t off;            /* the next byte to read */
	uint64_t left;        /* bytes not yet read from the file */
	char *mem;            /* FILESEND_CHUNK bytes when copying, else NULL */
	size_t start, end;    /* mem[start, end): read, not yet sent */
	int copy;             /* to be copied: mem is taken at the first send */
	atomic_size_t *count; /* where mem is counted (proto_site.copy_mem); NULL: nowhere */
};

/* No file. */
void filesend_init(struct filesend *f);
/* Should len bytes to peer be copied (a loopback peer, len >= FILESEND_COPY_MIN)? */
int filesend_wants_copy(const struct sockaddr_storage *peer, uint64_t len);
/* Takes fd to send its bytes [off, off + len), through memory when copy is set: then
 * the first send allocates FILESEND_CHUNK bytes and counts them in *count (when not
 * NULL), if that stays within FILESEND_MEM_MAX; without them, sendfile does it (a
 * transfer that never starts, an FTP RETR whose data connection never comes, holds
 * nothing). Ends an earlier file. */
void filesend_start(struct filesend *f, int fd, uint64_t off, uint64_t len, int copy, atomic_size_t *count);
/* Sends at most max (> 0) bytes to sock, while filesend_left(f) > 0. Returns the count sent (> 0); 0 when the
 * file ended before its length (it shrank); -1 with errno (EAGAIN: the socket is full). */
ssize_t filesend_send(struct filesend *f, int sock, size_t max);
/* Bytes still to send (read or not). */
static inline uint64_t filesend_left(const struct filesend *f)
{
	return f->left + (f->end - f->start);
}
/* Closes the file and frees the memory; f is as after filesend_init. */
void filesend_end(struct filesend *f);

#endif
