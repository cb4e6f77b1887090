/* lazylib.c - dlopen(3) once, on first need; see lazylib.h for why. */
#include "core/lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lazylib_mu = PTHREAD_MUTEX_INITIALIZER;

/* The first entry of LD_LIBRARY_PATH that is empty or relative, copied to out; 0 when
 * there is none. The dynamic loader resolves such an entry against the current
 * directory when the library is opened: at start that is where loopkit was started, but
 * later it may be a directory that `serve --write` lets anyone upload into (a trailing
 * colon, LD_LIBRARY_PATH=/opt/x:$LD_LIBRARY_PATH with it unset, is such an entry). */
static int relative_entry(char *out, size_t len)
{
	const char *p = getenv("LD_LIBRARY_PATH");
	if (!p)
		return 0;
	for (;;) {
		size_t n = strcspn(p, ":;"); /* glibc splits at both */
		if (n == 0 || p[0] != '/') {
			snprintf(out, len, "'%.*s'", (int)(n < 64 ? n : 64), p);
			return 1;
		}
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int lazylib_open(struct lazylib *l)
{
	char entry[80];
	if (relative_entry(entry, sizeof entry)) {
		snprintf(
		        l->err, sizeof l->err,
		        "not loading %s: LD_LIBRARY_PATH has the entry %s, which names the current directory "
		        "(a file uploaded there would be loaded); give absolute directories only",
		        l->soname, entry);
		return -1;
	}
	/* RTLD_LOCAL: its symbols stay its own; never closed: the slots point into it */
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(l->err, sizeof l->err, "cannot load %s (%s): install the Debian package %s",
		         l->soname, dlerror(), l->package);
		return -1;
	}
	void **slot = l->slots;
	for (size_t i = 0; i < l->n; i++) {
		void *sym = dlsym(h, l->names[i]);
		if (!sym) {
			snprintf(l->err, sizeof l->err, "%s has no %s: a newer %s is needed", l->soname,
			         l->names[i], l->package);
			return -1;
		}
		memcpy(&slot[i], &sym, sizeof sym); /* POSIX: a function's address as void * */
	}
	return 0;
}

int lazylib_load(struct lazylib *l)
{
	int s = __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
	if (s == 0) {
		pthread_mutex_lock(&lazylib_mu);
		s = l->state;
		if (s == 0) {
			s = lazylib_open(l) == 0 ? LAZYLIB_OK : LAZYLIB_FAILED;
			__atomic_store_n(&l->state, s, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&lazylib_mu);
	}
	return s == LAZYLIB_OK ? 0 : -1;
}

int lazylib_need(struct lazylib *l, char *err, size_t errlen)
{
	if (lazylib_load(l) == 0)
		return 0;
	snprintf(err, errlen, "%s", l->err);
	return -1;
}
