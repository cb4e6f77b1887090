/* buf.h - bounded byte buffers: given their maximum when created, grown on demand. */
#ifndef LOOPKIT_CORE_BUF_H
#define LOOPKIT_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Bytes live in data[off .. len); cap is allocated, max the most it may ever hold.
 * A zeroed struct with max set is an empty buffer that owns no memory. */
struct buf {
	char *data;
	size_t off;
	size_t len;
	size_t cap;
	size_t max;
};

void buf_init(struct buf *b, size_t max);
/* Frees the memory; the buffer stays usable (empty, same max). */
void buf_free(struct buf *b);
static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}
static inline char *buf_start(const struct buf *b)
{
	return b->data + b->off;
}
/* Room after len, making sure at least `need` bytes are free (compacting and growing
 * within max). Returns a pointer to the free space, or NULL when max forbids it or
 * memory runs out. *avail gets the free length (may exceed need). */
char *buf_space(struct buf *b, size_t need, size_t *avail);
/* Appends n bytes. Returns 0, or -1 when it would exceed max (nothing appended). */
static inline int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_slow(struct buf *b, const void *p, size_t n);
static inline int buf_puts(struct buf *b, const char *s);
/* printf-style append; -1 when it would exceed max (nothing appended). */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops n bytes from the front. When empty, resets off and len to 0. */
void buf_consume(struct buf *b, size_t n);

/* A buffer's first allocation: it doubles from there, up to its max. */
#define BUF_FIRST_CAP 4096
/* First blocks freed by one thread's buffers, kept for its next ones: a keep-alive
 * connection gives its buffers back between requests (so idle ones cost nothing) and
 * takes them again for the next, which the allocator would make two mallocs, two frees
 * and a realloc. Holds at most BUF_POOL_MAX * BUF_FIRST_CAP bytes; its owner drains it
 * when it has no connection left (the blocks would keep the heap from shrinking).
 * Not thread-safe. */
#define BUF_POOL_MAX 32
struct buf_pool {
	unsigned n;
	char *blk[BUF_POOL_MAX];
};
/* Gives b, when it owns no memory, a first block from the pool (if it has one). */
void buf_pool_get(struct buf_pool *p, struct buf *b);
/* buf_free, keeping b's memory in the pool when it is a first block and there is room. */
void buf_pool_put(struct buf_pool *p, struct buf *b);
/* Frees the blocks the pool holds. */
void buf_pool_drain(struct buf_pool *p);

#include <string.h>
/* The common case inline: the bytes fit in what is allocated (cap never exceeds max,
 * so they fit within max too). A response head is some 25 appends. */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
	if (n && n <= b->cap - b->len && b->cap <= b->max) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		return 0;
	}
	return buf_append_slow(b, p, n);
}

static inline int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

#endif
