/* lazylib.h - a Debian shared library loaded the first time a verb needs it.
 *
 * A library on the link line is mapped and relocated at every start of every verb:
 * SQLite (watch's history), zlib and Brotli (/_/gzip, /_/deflate, /_/brotli) cost
 * `loopkit isolate` and `loopkit port` about 55 page faults (1.5 to 2 ms on a VM) for
 * code they never run. They are opened with dlopen(3) instead, by their soname, from
 * the package that the .deb depends on (scripts/mkdeb), so Debian's security updates
 * reach loopkit as they would a linked library. */
#ifndef LOOPKIT_CORE_LAZYLIB_H
#define LOOPKIT_CORE_LAZYLIB_H

#include <stddef.h>

struct lazylib {
	const char *soname;       /* "libsqlite3.so.0" */
	const char *package;      /* the Debian package that holds it, for the error */
	const char *const *names; /* the symbols to find, in the order of slots */
	void *slots;              /* a struct of as many function pointers, filled in order */
	size_t n;
	int state; /* 0: not tried; LAZYLIB_OK; LAZYLIB_FAILED (not tried again) */
	char err[256];
};
enum { LAZYLIB_OK = 1, LAZYLIB_FAILED = 2 };

/* For an X-macro list of the library's functions: the struct's members, typed by the
 * library's own declarations, and their names. */
#define LAZYLIB_SLOT(f) __typeof__(f) *f;
#define LAZYLIB_NAME(f) #f,

/* A lazylib for a struct of function pointers and the array of their names. */
#define LAZYLIB(so, pkg, names_, slots_)                                                 \
	{                                                                                \
		.soname = (so), .package = (pkg), .names = (names_), .slots = &(slots_), \
		.n = sizeof(names_) / sizeof((names_)[0])                                \
	}

/* Loads the library and fills its slots, once (safe from any thread). Returns 0, or -1
 * with l->err saying which library or symbol is missing and the package to install. */
int lazylib_load(struct lazylib *l);
/* lazylib_load, with the reason copied into err when it fails. */
int lazylib_need(struct lazylib *l, char *err, size_t errlen);

#endif
