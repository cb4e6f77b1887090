/* dirsnap.h - directory snapshots: listed and sorted once, shared read-only by every lister. */
#ifndef LOOPKIT_CORE_DIRSNAP_H
#define LOOPKIT_CORE_DIRSNAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/fsroot.h"

/* Every snapshot of a cache together holds at most this much memory; a listing that
 * would need more fails with -ENOBUFS (LK_E_ELISTFULL: HTTP 503, FTP 451) until other
 * listings finish. It bounds what any number of clients that list and never read can
 * pin, whatever directories they pick. */
#define DIRSNAP_MEM_MAX (32u << 20)
/* Entries kept from one directory; the rest are only counted (dirsnap.more). */
#define DIRSNAP_MAX_ENTRIES 100000
/* A snapshot is handed to new listers for this long after it was read; later ones get
 * a fresh read, so a listing never shows sizes older than this (a file that grows does
 * not change its directory's mtime). */
#define DIRSNAP_SHARE_MS 1000
/* A directory changed this recently before the read began is not shared at all: a
 * change in the same timestamp tick would leave its mtime and ctime as they were. */
#define DIRSNAP_RACY_MS 20

/* One entry, as listings show it. */
struct dirsnap_ent {
	const char *name; /* NUL-terminated, inside the snapshot */
	int is_dir;
	mode_t mode;
	uid_t uid; /* owner and group, as stat gave them (FTP's UNIX.owner, UNIX.group) */
	gid_t gid;
	uint64_t size;
	struct timespec mtime;
};

/* A listing of one directory at one moment: immutable once built, reference-counted.
 * Hidden names, symlinks leading out of the root (or nowhere) and everything but
 * regular files and directories are left out; a symlink inside shows its target's
 * type, size and date. Sorted: directories first, then by name in
 * natural (version) order, case-sensitive: "a2" before "a10" (strverscmp). */
struct dirsnap {
	size_t n;                       /* entries */
	size_t more;                    /* entries past the cache's max_entries, left out */
	const struct dirsnap_ent *ents; /* n entries, in listing order */
};

struct dirsnap_cache;

/* Creates a cache whose snapshots together hold at most mem_max bytes, each at most
 * max_entries entries (the server uses DIRSNAP_MEM_MAX and DIRSNAP_MAX_ENTRIES; tests
 * smaller ones). Thread-safe: one cache serves every thread. Returns NULL when out of
 * memory. */
struct dirsnap_cache *dirsnap_cache_new(size_t mem_max, size_t max_entries);
/* Frees the cache; every snapshot must have been put back. */
void dirsnap_cache_free(struct dirsnap_cache *c);
/* Bytes held by live snapshots now. */
size_t dirsnap_cache_bytes(struct dirsnap_cache *c);

/* A snapshot of directory rel under r: a shared one when a recent snapshot of the same
 * directory version (device, inode, mtime, ctime) is live, else a new read. With c NULL
 * the snapshot is private (not shared, no overall limit, DIRSNAP_MAX_ENTRIES). Returns 0 with *out (give it
 * back with dirsnap_put), or -errno: -ENOTDIR when rel is not a directory, -ENOBUFS
 * when the cache's memory limit is reached, -ENOMEM, or what opening rel gave. */
int dirsnap_get(struct dirsnap_cache *c, const struct fsroot *r, const char *rel, const struct dirsnap **out);
/* Gives a snapshot back; the last holder frees it (and returns the freed memory to
 * the system: snapshots are the large, bulk frees of a server). s may be NULL. */
void dirsnap_put(struct dirsnap_cache *c, const struct dirsnap *s);

#endif
