/* filecache.c - small files in memory per thread; inotify keeps them fresh. */
#include "http/filecache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "http/parse.h"

uint32_t filecache_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

void filecache_etag(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
	         (unsigned long long)st->st_size,
	         (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
	                 (unsigned long long)st->st_mtim.tv_nsec);
}

/* ---- the per-thread cache of small files ----
 *
 * Small files are kept in memory per thread, so the hot path makes no file-system
 * call at all. Freshness comes from inotify: each entry watches its file's inode (so
 * a write through any path is seen) and its directory (so a rename, delete or
 * replacement of the name is seen); an event drops the entries at once. As a
 * backstop for what inotify cannot see (a parent directory renamed, a directory
 * symlink retargeted), a path is stat'ed again when its entry is older than
 * FILECACHE_RECHECK_MS. Without inotify, every hit is checked with a stat. */

static void cache_unwatch(struct filecache *fc, int wd, const struct filecache_entry *skip)
{
	if (wd < 0 || fc->ino_io.fd < 0)
		return;
	for (size_t i = 0; i < FILECACHE_SLOTS; i++) {
		const struct filecache_entry *e = &fc->slot[i];
		if (e != skip && e->path && (e->wd == wd || e->dwd == wd))
			return; /* still used by another entry */
	}
	inotify_rm_watch(fc->ino_io.fd, wd);
}

static void cache_entry_free(struct filecache *fc, struct filecache_entry *e)
{
	int wd = e->wd, dwd = e->dwd;
	free(e->path);
	free(e->data);
	e->path = NULL;
	e->data = NULL;
	cache_unwatch(fc, wd, e);
	cache_unwatch(fc, dwd, e);
	memset(e, 0, sizeof(*e));
	e->wd = e->dwd = -1;
}

void filecache_free(struct filecache *fc)
{
	for (size_t i = 0; i < FILECACHE_SLOTS; i++)
		if (fc->slot[i].path)
			cache_entry_free(fc, &fc->slot[i]);
	if (fc->ino_io.fd >= 0 && fc->loop) {
		int fd = fc->ino_io.fd;
		loop_io_stop(fc->loop, &fc->ino_io);
		close(fd);
	}
}

/* Before a lookup: the inotify events queued before this loop turn began. A change
 * made before a request was sent is queued before the request arrived, so its fd is
 * ready in the same batch or an earlier one, though not always ahead of the request's
 * socket: epoll reports what became ready while it was reporting in reverse order. So
 * once a turn, when the inotify fd waits later in the batch, it is read now; when it
 * does not, no read is made (a conn-per-request load paid a failed read each). That
 * holds only for a request that came whole before the batch was taken (in_batch). One
 * read otherwise (at accept, on the sniffer's timer, a request pipelined behind
 * another in the same read) may have come after, and the change with it: a stale 304
 * in 1 run of 30 of test_range_and_conditional_follow_changes beside other tests, a
 * stale kept-alive answer in the SAN run, 1 pipelined request in 20,000. Then the read
 * is made. */
static void filecache_sync(struct filecache *fc, int in_batch)
{
	uint64_t now = loop_now_us(fc->loop);
	if (fc->ino_io.fd < 0)
		return;
	if (!in_batch) {
		fc->ino_io.cb(fc->loop, &fc->ino_io, LOOP_READ);
	} else if (now != fc->synced_at) {
		fc->synced_at = now;
		if (loop_io_pending(fc->loop, &fc->ino_io))
			fc->ino_io.cb(fc->loop, &fc->ino_io, LOOP_READ);
	}
}

static void inotify_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct filecache *fc = io->data;
	char evbuf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(io->fd, evbuf, sizeof(evbuf));
		if (n <= 0)
			return;
		for (char *p = evbuf; p < evbuf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			for (size_t i = 0; i < FILECACHE_SLOTS; i++) {
				struct filecache_entry *e = &fc->slot[i];
				if (e->path &&
				    ((ev->mask & IN_Q_OVERFLOW) || e->wd == ev->wd || e->dwd == ev->wd)) {
					if (ev->mask & IN_IGNORED) {
						/* The kernel dropped this watch: forget it, do not remove it.
						 */
						if (e->wd == ev->wd)
							e->wd = -1;
						if (e->dwd == ev->wd)
							e->dwd = -1;
					}
					cache_entry_free(fc, e);
				}
			}
		}
	}
}

int filecache_init(struct filecache *fc, struct loop *loop, const struct fsroot *root)
{
	fc->loop = loop;
	fc->root = root;
	for (size_t i = 0; i < FILECACHE_SLOTS; i++)
		fc->slot[i].wd = fc->slot[i].dwd = -1;
	fc->ino_io.fd = -1;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return 0; /* no inotify: every cache hit is checked with a stat */
	if (loop_io_start(fc->loop, &fc->ino_io, fd, LOOP_READ, inotify_cb, fc) < 0) {
		close(fd);
		return 0;
	}
	return 0;
}

static int stat_same(const struct stat *a, const struct filecache_entry *e)
{
	return a->st_ino == e->ino && a->st_dev == e->dev && a->st_size == e->size &&
	       a->st_mtim.tv_sec == e->mtime.tv_sec && a->st_mtim.tv_nsec == e->mtime.tv_nsec &&
	       a->st_ctim.tv_sec == e->ctime.tv_sec && a->st_ctim.tv_nsec == e->ctime.tv_nsec;
}

/* A fresh entry for rel, or NULL. The entry's content came from a descriptor that
 * openat2 confined to the root; a plain stat of the same path only decides whether it
 * is still current. If that stat follows a swapped-in symlink elsewhere it finds
 * another inode and we fall back to the confined open, so the cache never serves
 * anything the confined open would not. */
struct filecache_entry *filecache_lookup(struct filecache *fc, const char *rel, uint32_t h, int in_batch)
{
	filecache_sync(fc, in_batch);
	struct filecache_entry *e = &fc->slot[h % FILECACHE_SLOTS];
	struct stat st;
	uint64_t now = loop_now(fc->loop);
	if (!e->path || e->hash != h || strcmp(e->path, rel))
		return NULL;
	if (e->wd >= 0 && e->dwd >= 0 && now - e->checked < FILECACHE_RECHECK_MS)
		return e;
	if (fstatat(fc->root->fd, rel, &st, 0) < 0 || !stat_same(&st, e)) {
		cache_entry_free(fc, e);
		return NULL;
	}
	e->checked = now;
	return e;
}

/* Watches the object behind fd. /proc/self/fd names exactly the inode we opened, so
 * the path is not resolved a second time. */
static int watch_fd(struct filecache *fc, int fd, uint32_t mask)
{
	char p[64];
	if (fc->ino_io.fd < 0)
		return -1;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return inotify_add_watch(fc->ino_io.fd, p, mask);
}

struct filecache_entry *filecache_store(struct filecache *fc, const char *rel, uint32_t h, int fd,
                                        const struct stat *st)
{
	struct filecache_entry *e = &fc->slot[h % FILECACHE_SLOTS];
	struct stat now;
	char *data = NULL, *path = strdup(rel);
	size_t got = 0;
	if (!path)
		return NULL;
	if (e->path)
		cache_entry_free(fc, e);
	/* Watched before it is read: a change from here on is reported and drops the entry.
	 * A change between the caller's stat and the watch is not reported, so the file is
	 * stat'ed again and read only if still as st says (a stale empty body was served
	 * once to a request pipelined behind a rewrite: the write came between the read and
	 * the watch). */
	e->wd = watch_fd(fc, fd, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
	const char *name;
	int dfd = fsroot_open_parent(fc->root, rel, &name);
	e->dwd = dfd >= 0 ? watch_fd(fc, dfd,
	                             IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
	                                     IN_MOVE_SELF | IN_ONLYDIR)
	                  : -1;
	if (dfd >= 0)
		close(dfd);
	if (fstat(fd, &now) < 0 || now.st_size != st->st_size || now.st_mtim.tv_sec != st->st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != st->st_mtim.tv_nsec || now.st_ctim.tv_sec != st->st_ctim.tv_sec ||
	    now.st_ctim.tv_nsec != st->st_ctim.tv_nsec)
		goto fail; /* changed since the caller looked: served from the file this time */
	if (!(data = malloc(st->st_size ? (size_t)st->st_size : 1)))
		goto fail;
	while (got < (size_t)st->st_size) {
		ssize_t r = pread(fd, data + got, (size_t)st->st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto fail; /* changed under us: do not cache */
		got += (size_t)r;
	}
	e->path = path;
	e->hash = h;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime = st->st_mtim;
	e->ctime = st->st_ctim;
	e->data = data;
	e->mime = http_mime_type(rel);
	e->checked = loop_now(fc->loop);
	filecache_etag(st, e->etag, sizeof(e->etag));
	http_date_format(st->st_mtim.tv_sec, e->lastmod);
	return e;
fail:
	free(data);
	free(path);
	cache_entry_free(fc, e); /* the watches go, unless another entry shares them */
	return NULL;
}
