/* nettle_funcs.h - the Nettle functions and hash descriptions the tree uses, as an X-macro
 * list: core/nettle_lib.c loads them on first need (core/lazylib.h), scripts/mkdeb links a
 * stub that refers to each, so that the .deb depends on a libnettle8 that has them all. */
#ifndef LOOPKIT_CORE_NETTLE_FUNCS_H
#define LOOPKIT_CORE_NETTLE_FUNCS_H

#define NETTLE_FUNCS(X)         \
	X(nettle_md5)           \
	X(nettle_sha256)        \
	X(nettle_sha512)        \
	X(nettle_sha256_init)   \
	X(nettle_sha256_update) \
	X(nettle_sha256_digest) \
	X(nettle_memeql_sec)

#endif
