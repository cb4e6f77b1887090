/* jansson_funcs.h - the jansson functions the tree calls, as an X-macro list: core/jin_lib.c
 * loads them on first need (core/lazylib.h), scripts/mkdeb links a stub that refers to
 * each, so that the .deb depends on a libjansson4 that has them all. */
#ifndef LOOPKIT_CORE_JANSSON_FUNCS_H
#define LOOPKIT_CORE_JANSSON_FUNCS_H

#define JANSSON_FUNCS(X)           \
	X(json_array_get)          \
	X(json_array_size)         \
	X(json_delete)             \
	X(json_dumps)              \
	X(json_equal)              \
	X(json_integer_value)      \
	X(json_load_file)          \
	X(json_loadb)              \
	X(json_loads)              \
	X(json_number_value)       \
	X(json_object_get)         \
	X(json_object_iter)        \
	X(json_object_iter_key)    \
	X(json_object_iter_next)   \
	X(json_object_iter_value)  \
	X(json_object_key_to_iter) \
	X(json_object_size)        \
	X(json_string_length)      \
	X(json_string_value)

#endif
