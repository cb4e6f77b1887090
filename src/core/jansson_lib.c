/* jansson_lib.c - jansson's table, filled on first need (core/jansson_lib.h). */
#include "core/jansson_lib.h"

struct jansson_fns jansson_fn;
static const char *const names[] = {JANSSON_FUNCS(LAZYLIB_NAME)};
static struct lazylib lib = LAZYLIB("libjansson.so.4", "libjansson4", names, jansson_fn);

int jansson_need(char *err, size_t errlen)
{
	return lazylib_need(&lib, err, errlen);
}
