/* jansson_lib.h - jansson, opened the first time JSON is read (core/lazylib.h says why).
 * Include this instead of <jansson.h>: every jansson name the tree uses then goes through
 * the table that jansson_need fills, which must have succeeded first. */
#ifndef LOOPKIT_CORE_JANSSON_LIB_H
#define LOOPKIT_CORE_JANSSON_LIB_H

#include <jansson.h>
#include <stddef.h>

#include "core/jansson_funcs.h"
#include "core/lazylib.h"

struct jansson_fns {
	JANSSON_FUNCS(LAZYLIB_SLOT)
};
extern struct jansson_fns jansson_fn;

/* Loads jansson once (any thread). 0, or -1 with the reason in err. */
int jansson_need(char *err, size_t errlen);

/* jansson.h's json_decref is inline and calls json_delete by its linked name. */
static inline void jansson_decref(json_t *j)
{
	if (j && j->refcount != (size_t)-1 && JSON_INTERNAL_DECREF(j) == 0)
		jansson_fn.json_delete(j);
}

#define json_decref             jansson_decref
#define json_array_get          (jansson_fn.json_array_get)
#define json_array_size         (jansson_fn.json_array_size)
#define json_delete             (jansson_fn.json_delete)
#define json_dumps              (jansson_fn.json_dumps)
#define json_equal              (jansson_fn.json_equal)
#define json_integer_value      (jansson_fn.json_integer_value)
#define json_load_file          (jansson_fn.json_load_file)
#define json_loadb              (jansson_fn.json_loadb)
#define json_loads              (jansson_fn.json_loads)
#define json_number_value       (jansson_fn.json_number_value)
#define json_object_get         (jansson_fn.json_object_get)
#define json_object_iter        (jansson_fn.json_object_iter)
#define json_object_iter_key    (jansson_fn.json_object_iter_key)
#define json_object_iter_next   (jansson_fn.json_object_iter_next)
#define json_object_iter_value  (jansson_fn.json_object_iter_value)
#define json_object_key_to_iter (jansson_fn.json_object_key_to_iter)
#define json_object_size        (jansson_fn.json_object_size)
#define json_string_length      (jansson_fn.json_string_length)
#define json_string_value       (jansson_fn.json_string_value)

#endif
