/* vec.h - growing an array by doubling, and filling an error text, for the core's lists. */
#ifndef LOOPKIT_CORE_VEC_H
#define LOOPKIT_CORE_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes *v (of *cap elements of size bytes) hold at least need elements, doubling.
 * Returns 0, or -1 with errno ENOMEM (*v unchanged). */
static inline int vec_grow(void **v, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *nv;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / size) {
			errno = ENOMEM;
			return -1;
		}
		ncap *= 2;
	}
	nv = realloc(*v, ncap * size);
	if (!nv)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Writes "what: strerror(e)" into err (may be NULL) and sets errno to e. */
static inline void vec_seterr(char *err, size_t errlen, const char *what, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, strerror(e));
	errno = e;
}

#endif
