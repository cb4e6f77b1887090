/* fuzz.h - helpers shared by the libFuzzer targets: invariant checks, a seeded PRNG. */
#ifndef LOOPKIT_FUZZ_H
#define LOOPKIT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken invariant is a crash: libFuzzer saves the input and stops. */
#define FUZZ_CHECK(cond, ...)                                                                        \
	do {                                                                                         \
		if (!(cond)) {                                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                                \
			fputc('\n', stderr);                                                         \
			abort();                                                                     \
		}                                                                                    \
	} while (0)

/* Exactly n bytes on the heap, so ASan faults on a read one past the end. The
 * caller frees it. malloc(0) may return NULL; a 1-byte block stands in for it. */
static inline char *fuzz_dup(const void *p, size_t n)
{
	char *b = malloc(n ? n : 1);
	if (!b)
		abort();
	if (n)
		memcpy(b, p, n);
	return b;
}

/* data[0..n) and a NUL after it, on the heap; the caller frees it. */
static inline char *fuzz_strdup(const void *p, size_t n)
{
	char *b = malloc(n + 1);
	if (!b)
		abort();
	memcpy(b, p, n);
	b[n] = 0;
	return b;
}

/* Split points and other choices come from the input itself, so a saved crash
 * replays the same way. FNV-1a for the seed, xorshift64 for the stream. */
static inline uint64_t fuzz_seed(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ? h : 1;
}

static inline uint64_t fuzz_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* True when slice [p, p+len) lies within [buf, buf+n). */
static inline int fuzz_within(const char *p, size_t len, const char *buf, size_t n)
{
	return p >= buf && len <= n && (size_t)(p - buf) <= n - len;
}

#endif
