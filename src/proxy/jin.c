/* jin.c - JSON in, on jansson (the tree's one JSON parser; the writer is core/json.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/jansson_lib.h"
#include "proxy/jin.h"

#define J(v) ((const json_t *)(const void *)(v))

struct jin *jin_parse(const char *p, size_t n, char *why, size_t whylen)
{
	json_error_t je;
	if (jansson_need(why, whylen) < 0)
		return NULL;
	json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		snprintf(why, whylen, "%s at byte %d", je.text, je.position);
	return (struct jin *)(void *)v;
}

struct jin *jin_load(const char *path, size_t max, char *why, size_t whylen)
{
	json_error_t je;
	struct stat st;
	if (jansson_need(why, whylen) < 0)
		return NULL;
	if (stat(path, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	if ((size_t)st.st_size > max) {
		snprintf(why, whylen, "larger than %zu bytes", max);
		return NULL;
	}
	json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		snprintf(why, whylen, "line %d: %s", je.line, je.text);
	return (struct jin *)(void *)v;
}

int jin_need(char *why, size_t whylen)
{
	return jansson_need(why, whylen);
}

void jin_free(struct jin *v)
{
	json_decref((json_t *)(void *)v);
}

int jin_is_object(const struct jin *v)
{
	return v && json_is_object(J(v));
}
int jin_is_array(const struct jin *v)
{
	return v && json_is_array(J(v));
}
int jin_is_string(const struct jin *v)
{
	return v && json_is_string(J(v));
}
int jin_is_number(const struct jin *v)
{
	return v && json_is_number(J(v));
}
int jin_is_bool(const struct jin *v)
{
	return v && json_is_boolean(J(v));
}
int jin_is_null(const struct jin *v)
{
	return v && json_is_null(J(v));
}
int jin_is_true(const struct jin *v)
{
	return v && json_is_true(J(v));
}

const struct jin *jin_get(const struct jin *v, const char *key)
{
	return v && json_is_object(J(v)) ? (const struct jin *)(const void *)json_object_get(J(v), key)
	                                 : NULL;
}

const char *jin_str(const struct jin *v)
{
	return jin_is_string(v) ? json_string_value(J(v)) : NULL;
}

size_t jin_strlen(const struct jin *v)
{
	return jin_is_string(v) ? json_string_length(J(v)) : 0;
}

double jin_num(const struct jin *v)
{
	return jin_is_number(v) ? json_number_value(J(v)) : 0;
}

size_t jin_len(const struct jin *arr)
{
	return jin_is_array(arr) ? json_array_size(J(arr)) : 0;
}

const struct jin *jin_at(const struct jin *arr, size_t i)
{
	return jin_is_array(arr) ? (const struct jin *)(const void *)json_array_get(J(arr), i) : NULL;
}

int jin_each(const struct jin *obj, int (*fn)(void *arg, const char *key, const struct jin *v), void *arg)
{
	const char *k;
	json_t *v;
	if (!jin_is_object(obj))
		return 0;
	json_object_foreach((json_t *)(void *)obj, k, v)
	{
		int r = fn(arg, k, (const struct jin *)(const void *)v);
		if (r)
			return r;
	}
	return 0;
}
