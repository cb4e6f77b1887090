/* nettle_lib.c - Nettle's table, filled on first need (core/nettle_lib.h). */
#include "core/nettle_lib.h"

struct nettle_fns nettle_fn;
static const char *const names[] = {NETTLE_FUNCS(LAZYLIB_NAME)};
static struct lazylib lib = LAZYLIB("libnettle.so.8", "libnettle8", names, nettle_fn);

int nettle_need(char *err, size_t errlen)
{
	return lazylib_need(&lib, err, errlen);
}
