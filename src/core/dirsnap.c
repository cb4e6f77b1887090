/* dirsnap.c - directory snapshots shared by every thread: read once, sorted once, counted. */
#include "core/dirsnap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIRSNAP_BUCKETS 64 /* shared snapshots, by inode */

struct snap {
	struct dirsnap pub; /* first: callers hold &pub */
	struct dirsnap_ent *ents;
	char *names; /* every name, NUL-terminated, back to back */
	dev_t dev;
	ino_t ino;
	struct timespec dmtime, dctime; /* the directory's, when read */
	uint64_t born_ms;               /* CLOCK_MONOTONIC ms of the read */
	int shared;                     /* in a bucket, findable by new listers */
	unsigned refs;                  /* holders; under the cache's lock */
	size_t bytes;                   /* counted against the cache's limit */
	struct snap *next;              /* in its bucket */
};

struct dirsnap_cache {
	pthread_mutex_t lock;
	size_t max; /* the limit on used */
	size_t max_entries;
	size_t used; /* bytes of every live snapshot, shared or not */
	struct snap *buckets[DIRSNAP_BUCKETS];
};

struct dirsnap_cache *dirsnap_cache_new(size_t mem_max, size_t max_entries)
{
	struct dirsnap_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->max = mem_max;
	c->max_entries = max_entries;
	return c;
}

void dirsnap_cache_free(struct dirsnap_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

size_t dirsnap_cache_bytes(struct dirsnap_cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->used;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static uint64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Moves a snapshot's claim on the cache from s->bytes to want. Returns 0, or -1 when
 * growing would pass the limit (nothing changes). */
static int snap_claim(struct dirsnap_cache *c, struct snap *s, size_t want)
{
	if (c) {
		pthread_mutex_lock(&c->lock);
		if (want > s->bytes && c->used + (want - s->bytes) > c->max) {
			pthread_mutex_unlock(&c->lock);
			return -1;
		}
		c->used = c->used - s->bytes + want;
		pthread_mutex_unlock(&c->lock);
	}
	s->bytes = want;
	return 0;
}

/* A large snapshot's two arrays are mappings of their own (main.c fixes malloc's mmap
 * threshold at 128 KiB): freeing them gives the memory back at once. */
static void snap_free(struct dirsnap_cache *c, struct snap *s)
{
	snap_claim(c, s, 0);
	free(s->ents);
	free(s->names);
	free(s);
}

static int ent_cmp(const void *pa, const void *pb)
{
	const struct dirsnap_ent *a = pa, *b = pb;
	if (a->is_dir != b->is_dir)
		return b->is_dir - a->is_dir;
	return strverscmp(a->name, b->name);
}

/* Grows an array of *cap elements of size bytes to hold need, with the cache's
 * consent for the new total (other is what the snapshot's other array holds). */
static int snap_grow(struct dirsnap_cache *c, struct snap *s, void **v, size_t *cap, size_t need, size_t size,
                     size_t other)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	if (snap_claim(c, s, sizeof(*s) + ncap * size + other) < 0)
		return -ENOBUFS;
	void *nv = realloc(*v, ncap * size);
	if (!nv) {
		snap_claim(c, s, sizeof(*s) + *cap * size + other);
		return -ENOMEM;
	}
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Reads the directory open as dirfd into s. Returns 0 or -errno. */
static int snap_read(struct dirsnap_cache *c, const struct fsroot *r, const char *rel, int dirfd,
                     struct snap *s)
{
	size_t n = 0, cap = 0, nlen = 0, ncap = 0, max = c ? c->max_entries : DIRSNAP_MAX_ENTRIES;
	int fd = dup(dirfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (fsroot_list_stat(r, dirfd, rel, de->d_name, &st) < 0)
			continue;
		if (n >= max) {
			s->pub.more++;
			continue;
		}
		size_t len = strlen(de->d_name) + 1;
		rc = snap_grow(c, s, (void **)&s->ents, &cap, n + 1, sizeof(*s->ents), ncap);
		if (!rc)
			rc = snap_grow(c, s, (void **)&s->names, &ncap, nlen + len, 1,
			               cap * sizeof(*s->ents));
		if (rc)
			break;
		memcpy(s->names + nlen, de->d_name, len);
		/* The names block may still move: keep the offset until it is final. */
		s->ents[n].name = (const char *)(uintptr_t)nlen;
		s->ents[n].is_dir = S_ISDIR(st.st_mode);
		s->ents[n].mode = st.st_mode;
		s->ents[n].uid = st.st_uid;
		s->ents[n].gid = st.st_gid;
		s->ents[n].size = (uint64_t)st.st_size;
		s->ents[n].mtime = st.st_mtim;
		nlen += len;
		n++;
	}
	closedir(d);
	if (rc)
		return rc;
	/* Give back the slack of the doubling: snapshots can be many and long-lived. */
	if (n < cap) {
		void *v = n ? realloc(s->ents, n * sizeof(*s->ents)) : NULL;
		if (v || !n) {
			if (!n)
				free(s->ents);
			s->ents = v;
		}
	}
	if (nlen < ncap) {
		void *v = nlen ? realloc(s->names, nlen) : NULL;
		if (v || !nlen) {
			if (!nlen)
				free(s->names);
			s->names = v;
		}
	}
	snap_claim(c, s, sizeof(*s) + n * sizeof(*s->ents) + nlen);
	for (size_t i = 0; i < n; i++)
		s->ents[i].name = s->names + (uintptr_t)s->ents[i].name;
	if (n)
		qsort(s->ents, n, sizeof(*s->ents), ent_cmp);
	s->pub.n = n;
	s->pub.ents = s->ents;
	return 0;
}

static int same_version(const struct snap *s, const struct stat *st)
{
	return s->dev == st->st_dev && s->ino == st->st_ino && s->dmtime.tv_sec == st->st_mtim.tv_sec &&
	       s->dmtime.tv_nsec == st->st_mtim.tv_nsec && s->dctime.tv_sec == st->st_ctim.tv_sec &&
	       s->dctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* A live shared snapshot of this version, young enough to hand out (with a new
 * reference), or NULL. Snapshots past DIRSNAP_SHARE_MS leave the bucket on the way
 * (their holders keep them). Under the lock. */
static struct snap *bucket_find(struct dirsnap_cache *c, const struct stat *st, uint64_t now)
{
	struct snap **pp = &c->buckets[st->st_ino % DIRSNAP_BUCKETS];
	while (*pp) {
		struct snap *s = *pp;
		if (now - s->born_ms >= DIRSNAP_SHARE_MS) {
			*pp = s->next;
			s->shared = 0;
			continue;
		}
		if (same_version(s, st)) {
			s->refs++;
			return s;
		}
		pp = &s->next;
	}
	return NULL;
}

static int ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int dirsnap_get(struct dirsnap_cache *c, const struct fsroot *r, const char *rel, const struct dirsnap **out)
{
	struct stat st;
	struct timespec began;
	*out = NULL;
	int dirfd = fsroot_open(r, rel, O_RDONLY | O_DIRECTORY);
	if (dirfd < 0)
		return dirfd;
	if (fstat(dirfd, &st) < 0) {
		int e = -errno;
		close(dirfd);
		return e;
	}
	clock_gettime(CLOCK_REALTIME, &began);
	uint64_t now = mono_ms();
	if (c) {
		pthread_mutex_lock(&c->lock);
		struct snap *hit = bucket_find(c, &st, now);
		pthread_mutex_unlock(&c->lock);
		if (hit) {
			close(dirfd);
			*out = &hit->pub;
			return 0;
		}
	}
	struct snap *s = calloc(1, sizeof(*s));
	if (!s) {
		close(dirfd);
		return -ENOMEM;
	}
	if (snap_claim(c, s, sizeof(*s)) < 0) {
		free(s);
		close(dirfd);
		return -ENOBUFS;
	}
	/* Read without the lock: other threads list meanwhile. */
	int rc = snap_read(c, r, rel, dirfd, s);
	close(dirfd);
	if (rc < 0) {
		snap_free(c, s);
		return rc;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->dmtime = st.st_mtim;
	s->dctime = st.st_ctim;
	s->born_ms = now;
	s->refs = 1;
	/* Racy: a change after our read within the same timestamp tick would leave the
	 * version as it is, so a snapshot of a directory changed just before the read
	 * serves only its own lister. */
	struct timespec racy = began;
	racy.tv_nsec -= (long)DIRSNAP_RACY_MS * 1000000;
	if (racy.tv_nsec < 0) {
		racy.tv_nsec += 1000000000;
		racy.tv_sec--;
	}
	if (c && !ts_after(&st.st_mtim, &racy) && !ts_after(&st.st_ctim, &racy)) {
		pthread_mutex_lock(&c->lock);
		/* Another thread may have read the same version meanwhile: one copy. */
		struct snap *hit = bucket_find(c, &st, now);
		if (!hit) {
			struct snap **b = &c->buckets[st.st_ino % DIRSNAP_BUCKETS];
			s->next = *b;
			*b = s;
			s->shared = 1;
		}
		pthread_mutex_unlock(&c->lock);
		if (hit) {
			snap_free(c, s);
			s = hit;
		}
	}
	*out = &s->pub;
	return 0;
}

void dirsnap_put(struct dirsnap_cache *c, const struct dirsnap *pub)
{
	if (!pub)
		return;
	struct snap *s = (struct snap *)pub;
	if (c) {
		pthread_mutex_lock(&c->lock);
		int last = --s->refs == 0;
		if (last && s->shared) {
			struct snap **pp = &c->buckets[s->ino % DIRSNAP_BUCKETS];
			while (*pp && *pp != s)
				pp = &(*pp)->next;
			if (*pp)
				*pp = s->next;
		}
		pthread_mutex_unlock(&c->lock);
		if (!last)
			return;
	}
	snap_free(c, s);
}
