/* json.h - a streaming JSON writer into a struct buf, and a JSON validator. */
#ifndef LOOPKIT_CORE_JSON_H
#define LOOPKIT_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define JSON_MAX_DEPTH 32

/* Writer state. Commas and nesting are tracked for the caller; any failure (buffer
 * limit, depth) sets err and later calls do nothing. Strings are escaped so the
 * output is safe inside HTML too: '<', '>' and '&' become \u003c, \u003e, \u0026, and
 * invalid UTF-8 becomes U+FFFD. */
struct json {
	struct buf *b;
	int depth;
	int err;
	int pretty;          /* newlines and two-space indents */
	uint64_t need_comma; /* bit d: an element was written at depth d */
	int after_key;
};

void json_init(struct json *j, struct buf *b, int pretty);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *k);
void json_key_n(struct json *j, const char *k, size_t n);
void json_str(struct json *j, const char *s);
void json_str_n(struct json *j, const char *s, size_t n);
void json_int(struct json *j, long long v);
void json_uint(struct json *j, unsigned long long v);
void json_double(struct json *j, double v);
/* v rounded to dec decimals (0.009, not 0.0094709999993938254): measured times. */
void json_double_dec(struct json *j, double v, int dec);
void json_bool(struct json *j, int v);
void json_null(struct json *j);
/* A member of the current object: key k, then the value (json_key + json_str ...). */
void json_kstr(struct json *j, const char *k, const char *s);
void json_kint(struct json *j, const char *k, long long v);
void json_kuint(struct json *j, const char *k, unsigned long long v);
void json_kdouble(struct json *j, const char *k, double v);
void json_kbool(struct json *j, const char *k, int v);
/* Writes text that is already valid JSON (see json_valid) as a value. */
void json_raw(struct json *j, const char *s, size_t n);

/* True when s[0..n) is one valid JSON value (RFC 8259) with optional surrounding
 * whitespace, nested at most JSON_MAX_DEPTH deep. */
int json_valid(const char *s, size_t n);

#endif
