/* buf.c - bounded byte buffers. */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

char *buf_space(struct buf *b, size_t need, size_t *avail)
{
	size_t used = b->len - b->off;
	if (need > b->max - used) /* also catches need so large that used + need wraps */
		return NULL;
	if (!need)
		need = 1; /* a pointer into owned memory even for zero bytes */
	if (b->cap - b->len < need && b->off) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
	}
	if (b->cap - b->len < need) {
		size_t cap = b->cap ? b->cap : BUF_FIRST_CAP;
		while (cap < used + need && cap < b->max)
			cap *= 2;
		if (cap > b->max)
			cap = b->max;
		if (cap < used + need)
			return NULL;
		char *d = realloc(b->data, cap);
		if (!d)
			return NULL;
		b->data = d;
		b->cap = cap;
	}
	if (avail)
		*avail = b->cap - b->len;
	return b->data + b->len;
}

int buf_append_slow(struct buf *b, const void *p, size_t n)
{
	if (!n)
		return buf_used(b) <= b->max ? 0 : -1;
	char *dst = buf_space(b, n, NULL);
	if (!dst)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	/* Most lines fit in tmp: format once, then append (which may fill the buffer to
	 * exactly its max; vsnprintf straight into it would need a byte for the NUL). */
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(tmp))
		return buf_append(b, tmp, (size_t)n);
	size_t avail;
	char *dst = buf_space(b, (size_t)n + 1, &avail);
	if (!dst)
		return -1;
	va_start(ap, fmt);
	vsnprintf(dst, avail, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_pool_get(struct buf_pool *p, struct buf *b)
{
	if (b->cap || !p->n || b->max < BUF_FIRST_CAP)
		return;
	b->data = p->blk[--p->n];
	b->cap = BUF_FIRST_CAP;
	b->off = b->len = 0;
}

void buf_pool_put(struct buf_pool *p, struct buf *b)
{
	if (b->cap != BUF_FIRST_CAP || p->n >= BUF_POOL_MAX) {
		buf_free(b);
		return;
	}
	p->blk[p->n++] = b->data;
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

void buf_pool_drain(struct buf_pool *p)
{
	while (p->n)
		free(p->blk[--p->n]);
}
