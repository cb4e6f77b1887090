/* lazylib.c - dlopen(3) once, on first need; see lazylib.h for why. */
#include "core/lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lazylib_mu = PTHREAD_MUTEX_INITIALIZER;

static int lazylib_open(struct lazylib *l)
{
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
