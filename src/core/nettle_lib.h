/* nettle_lib.h - Nettle, opened the first time a digest is needed (core/lazylib.h says
 * why). Include this instead of Nettle's headers: the names the tree uses then go through
 * the table that nettle_need fills, which must have succeeded first. */
#ifndef LOOPKIT_CORE_NETTLE_LIB_H
#define LOOPKIT_CORE_NETTLE_LIB_H

#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha2.h>
#include <stddef.h>

#include "core/lazylib.h"
#include "core/nettle_funcs.h"

struct nettle_fns {
	NETTLE_FUNCS(LAZYLIB_SLOT)
};
extern struct nettle_fns nettle_fn;

/* Loads Nettle once (any thread). 0, or -1 with the reason in err. */
int nettle_need(char *err, size_t errlen);

#define nettle_md5           (*nettle_fn.nettle_md5)
#define nettle_sha256        (*nettle_fn.nettle_sha256)
#define nettle_sha512        (*nettle_fn.nettle_sha512)
#define nettle_sha256_init   (nettle_fn.nettle_sha256_init)
#define nettle_sha256_update (nettle_fn.nettle_sha256_update)
#define nettle_sha256_digest (nettle_fn.nettle_sha256_digest)
#define nettle_memeql_sec    (nettle_fn.nettle_memeql_sec)

#endif
