/* jin.h - JSON in: the proxy's reading of JSON (API bodies, config files), on jansson. */
#ifndef LOOPKIT_PROXY_JIN_H
#define LOOPKIT_PROXY_JIN_H

#include <stddef.h>

/* A parsed JSON value (jansson's json_t; jansson's names clash with core/json.h's
 * writer, so only jin.c includes it). */
struct jin;

/* Parses n bytes as one JSON value (duplicate keys refused). Returns the value (free
 * it with jin_free), or NULL with "what, at byte N" in why. */
struct jin *jin_parse(const char *p, size_t n, char *why, size_t whylen);
/* The same for a file, at most max bytes. */
struct jin *jin_load(const char *path, size_t max, char *why, size_t whylen);
void jin_free(struct jin *v);
/* Loads jansson (jin_parse and jin_load do it too): 0, or -1 with why the library cannot
 * be loaded (a server-side fault, where a NULL from jin_parse means bad input). */
int jin_need(char *why, size_t whylen);

int jin_is_object(const struct jin *v);
int jin_is_array(const struct jin *v);
int jin_is_string(const struct jin *v);
int jin_is_number(const struct jin *v);
int jin_is_bool(const struct jin *v);
int jin_is_null(const struct jin *v);
int jin_is_true(const struct jin *v);
/* Member key of an object, NULL when absent (or v is not an object). */
const struct jin *jin_get(const struct jin *v, const char *key);
/* The string (NUL-terminated; jin_strlen tells whether it holds a NUL), or NULL. */
const char *jin_str(const struct jin *v);
size_t jin_strlen(const struct jin *v);
double jin_num(const struct jin *v);
size_t jin_len(const struct jin *arr);
const struct jin *jin_at(const struct jin *arr, size_t i);
/* Calls fn for every member of an object, in order; stops at the first nonzero
 * return and returns it. */
int jin_each(const struct jin *obj, int (*fn)(void *arg, const char *key, const struct jin *v), void *arg);

#endif
