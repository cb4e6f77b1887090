/* filecache.h - small files kept in memory per thread, kept fresh by inotify. */
#ifndef LOOPKIT_HTTP_FILECACHE_H
#define LOOPKIT_HTTP_FILECACHE_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "core/fsroot.h"
#include "core/loop.h"

#define FILECACHE_SLOTS      1024        /* entries per thread */
#define FILECACHE_FILE_MAX   (64 * 1024) /* files up to this are kept in memory */
#define FILECACHE_RECHECK_MS 1000        /* re-stat a cached path at least this often */

struct filecache_entry {
	char *path; /* normalised relative path; NULL when the slot is free */
	uint32_t hash;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char *data; /* the whole file */
	const char *mime;
	char etag[64];
	char lastmod[32];
	int wd, dwd;      /* inotify watches on the file and its directory; -1: none */
	uint64_t checked; /* loop_now() of the last stat of the path */
};

/* One per event-loop thread: no locks on the hot path. */
struct filecache {
	struct loop *loop;
	const struct fsroot *root;
	struct loop_io ino_io; /* inotify: invalidates entries when files change */
	uint64_t synced_at;    /* loop_now_us() of the loop turn a lookup last synced in */
	struct filecache_entry slot[FILECACHE_SLOTS];
};

/* Sets up the cache for root on loop (without inotify every hit is checked with a
 * stat). Returns 0. */
int filecache_init(struct filecache *fc, struct loop *loop, const struct fsroot *root);
/* Drops every entry and the inotify descriptor. */
void filecache_free(struct filecache *fc);
/* The hash of a normalised path (FNV-1a), for lookup and store. */
uint32_t filecache_hash(const char *rel);
/* A fresh entry for rel, or NULL. in_batch: the request came whole in this turn's
 * epoll batch (struct http_conn's in_batch); if not, changes are read first. */
struct filecache_entry *filecache_lookup(struct filecache *fc, const char *rel, uint32_t h, int in_batch);
/* Reads the regular file fd (confined open of rel, st its fstat) into the cache.
 * Returns the entry, or NULL (too big, changed while read, out of memory). fd stays
 * the caller's. */
struct filecache_entry *filecache_store(struct filecache *fc, const char *rel, uint32_t h, int fd,
                                        const struct stat *st);
/* The ETag loopkit gives a file: inode, size and mtime in ns. */
void filecache_etag(const struct stat *st, char *out, size_t len);

#endif
