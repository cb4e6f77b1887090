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
	if (used + need > b->max)
		return NULL;
	if (b->cap - b->len < need && b->off) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
	}
	if (b->cap - b->len < need) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < used + need)
			cap *= 2;
		if (cap > b->max)
			cap = b->max;
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

int buf_append(struct buf *b, const void *p, size_t n)
{
	char *dst = buf_space(b, n, NULL);
	if (!dst)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t avail;
	char *dst = buf_space(b, 128, &avail);
	if (!dst)
		dst = buf_space(b, 1, &avail);
	if (!dst)
		return -1;
	va_start(ap, fmt);
	int n = vsnprintf(dst, avail, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= avail) {
		dst = buf_space(b, (size_t)n + 1, &avail);
		if (!dst)
			return -1;
		va_start(ap, fmt);
		vsnprintf(dst, avail, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}
