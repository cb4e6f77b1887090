/* guard.h - unit-test inputs copied flush against a PROT_NONE page, so a parser that
 * reads one byte past what it was given faults (under ASan too, which reports the SEGV).
 * Include after <cmocka.h>. */
#ifndef LOOPKIT_TESTS_GUARD_H
#define LOOPKIT_TESTS_GUARD_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard {
	char *map;
	size_t maplen;
	size_t cap; /* usable bytes before the guard page: at least what guard_init was asked */
};

static inline size_t guard_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Maps cap bytes (rounded up to whole pages, at least one) and a PROT_NONE page after. */
static inline void guard_init(struct guard *g, size_t cap)
{
	size_t page = guard_page();

	g->cap = (cap + page - 1) / page * page;
	if (g->cap == 0)
		g->cap = page;
	g->maplen = g->cap + page;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect(g->map + g->cap, page, PROT_NONE), 0);
}

/* Copies len bytes of src so that the last one is right before the guard page. */
static inline char *guard_place(struct guard *g, const void *src, size_t len)
{
	char *p = g->map + g->cap - len;

	assert_true(len <= g->cap);
	memmove(p, src, len);
	return p;
}

static inline void guard_free(struct guard *g)
{
	munmap(g->map, g->maplen);
}

#endif
