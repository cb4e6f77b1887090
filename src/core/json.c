/* json.c - JSON writer and validator. */
#include "core/json.h"

#include "core/decimal.h"
#include "core/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j, struct buf *b, int pretty)
{
	memset(j, 0, sizeof(*j));
	j->b = b;
	j->pretty = pretty;
}

static void put(struct json *j, const char *s, size_t n)
{
	if (!j->err && buf_append(j->b, s, n) < 0)
		j->err = 1;
}

static void indent(struct json *j)
{
	if (!j->pretty)
		return;
	put(j, "\n", 1);
	for (int i = 0; i < j->depth; i++)
		put(j, "  ", 2);
}

/* Separator before a value (or key) at the current depth. */
static void pre_value(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->depth > 0) {
		if (j->need_comma & (1ull << j->depth))
			put(j, ",", 1);
		indent(j);
	}
	j->need_comma |= 1ull << j->depth;
}

static void open_(struct json *j, char c)
{
	pre_value(j);
	put(j, &c, 1);
	if (j->depth >= JSON_MAX_DEPTH) { /* as deep as json_valid accepts, no deeper */
		j->err = 1;
		return;
	}
	j->depth++;
	j->need_comma &= ~(1ull << j->depth);
}

static void close_(struct json *j, char c)
{
	int had = (j->need_comma >> j->depth) & 1;
	if (j->depth > 0)
		j->depth--;
	if (had)
		indent(j);
	put(j, &c, 1);
}

void json_obj_begin(struct json *j)
{
	open_(j, '{');
}
void json_obj_end(struct json *j)
{
	close_(j, '}');
}
void json_arr_begin(struct json *j)
{
	open_(j, '[');
}
void json_arr_end(struct json *j)
{
	close_(j, ']');
}

static void put_escaped(struct json *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* bytes at p[i-run .. i) needing no escape */
	put(j, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		char esc[8];
		size_t elen = 0;
		if (c >= 0x80) {
			size_t l = text_utf8_len(p + i, n - i);
			if (l) {
				run += l;
				i += l;
				continue;
			}
			memcpy(esc, "\\ufffd", 6);
			elen = 6;
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			elen = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			elen = 2;
		} else if (c == '\r') {
			memcpy(esc, "\\r", 2);
			elen = 2;
		} else if (c == '\t') {
			memcpy(esc, "\\t", 2);
			elen = 2;
		} else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		} else {
			run++;
			i++;
			continue;
		}
		put(j, (const char *)p + i - run, run);
		run = 0;
		put(j, esc, elen);
		i++;
	}
	put(j, (const char *)p + n - run, run);
	put(j, "\"", 1);
}

void json_key_n(struct json *j, const char *k, size_t n)
{
	pre_value(j);
	put_escaped(j, k, n);
	put(j, j->pretty ? ": " : ":", j->pretty ? 2 : 1);
	j->after_key = 1;
}

void json_key(struct json *j, const char *k)
{
	json_key_n(j, k, strlen(k));
}

void json_str_n(struct json *j, const char *s, size_t n)
{
	pre_value(j);
	put_escaped(j, s, n);
}

void json_str(struct json *j, const char *s)
{
	if (!s)
		json_null(j);
	else
		json_str_n(j, s, strlen(s));
}

void json_int(struct json *j, long long v)
{
	char t[32];
	pre_value(j);
	put(j, t, (size_t)snprintf(t, sizeof(t), "%lld", v));
}

void json_uint(struct json *j, unsigned long long v)
{
	char t[32];
	pre_value(j);
	put(j, t, (size_t)snprintf(t, sizeof(t), "%llu", v));
}

void json_double_dec(struct json *j, double v, int dec)
{
	double p = dec_pow10(dec);
	json_double(j, isfinite(v) ? round(v * p) / p : v);
}

void json_double(struct json *j, double v)
{
	char t[64];
	if (!isfinite(v)) {
		json_null(j);
		return;
	}
	pre_value(j);
	/* The shortest of %.15g and %.17g that reads back as the same double: 0.1, not
	 * 0.10000000000000001. */
	int n = snprintf(t, sizeof(t), "%.15g", v);
	if (strtod(t, NULL) != v)
		n = snprintf(t, sizeof(t), "%.17g", v);
	put(j, t, (size_t)n);
}

void json_bool(struct json *j, int v)
{
	pre_value(j);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json *j)
{
	pre_value(j);
	put(j, "null", 4);
}

void json_raw(struct json *j, const char *s, size_t n)
{
	pre_value(j);
	put(j, s, n);
}

/* Validator: recursive descent with an explicit depth bound. */
struct jv {
	const char *p, *end;
};

static void jv_ws(struct jv *v)
{
	while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
		v->p++;
}

static int jv_lit(struct jv *v, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n))
		return 0;
	v->p += n;
	return 1;
}

static int jv_string(struct jv *v)
{
	if (v->p >= v->end || *v->p != '"')
		return 0;
	v->p++;
	while (v->p < v->end) {
		unsigned char c = (unsigned char)*v->p;
		if (c == '"') {
			v->p++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			v->p++;
			if (v->p >= v->end)
				return 0;
			c = (unsigned char)*v->p;
			if (c == 'u') {
				for (int i = 1; i <= 4; i++) {
					if (v->p + i >= v->end ||
					    !strchr("0123456789abcdefABCDEF", v->p[i]) || !v->p[i])
						return 0;
				}
				v->p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || !c)
				return 0;
			v->p++;
			continue;
		}
		if (c >= 0x80) {
			size_t l = text_utf8_len((const unsigned char *)v->p, (size_t)(v->end - v->p));
			if (!l)
				return 0;
			v->p += l;
			continue;
		}
		v->p++;
	}
	return 0;
}

static int jv_digits(struct jv *v)
{
	const char *s = v->p;
	while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
		v->p++;
	return v->p > s;
}

static int jv_number(struct jv *v)
{
	if (v->p < v->end && *v->p == '-')
		v->p++;
	if (v->p < v->end && *v->p == '0')
		v->p++;
	else if (!jv_digits(v))
		return 0;
	if (v->p < v->end && *v->p == '.') {
		v->p++;
		if (!jv_digits(v))
			return 0;
	}
	if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
		v->p++;
		if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
			v->p++;
		if (!jv_digits(v))
			return 0;
	}
	return 1;
}

static int jv_value(struct jv *v, int depth)
{
	jv_ws(v);
	if (v->p >= v->end)
		return 0;
	switch (*v->p) {
	case '{':
	case '[': {
		char close = *v->p == '{' ? '}' : ']';
		int obj = close == '}';
		if (depth >= JSON_MAX_DEPTH)
			return 0;
		v->p++;
		jv_ws(v);
		if (v->p < v->end && *v->p == close) {
			v->p++;
			return 1;
		}
		for (;;) {
			if (obj) {
				jv_ws(v);
				if (!jv_string(v))
					return 0;
				jv_ws(v);
				if (v->p >= v->end || *v->p != ':')
					return 0;
				v->p++;
			}
			if (!jv_value(v, depth + 1))
				return 0;
			jv_ws(v);
			if (v->p >= v->end)
				return 0;
			if (*v->p == ',') {
				v->p++;
				continue;
			}
			if (*v->p == close) {
				v->p++;
				return 1;
			}
			return 0;
		}
	}
	case '"': return jv_string(v);
	case 't': return jv_lit(v, "true");
	case 'f': return jv_lit(v, "false");
	case 'n': return jv_lit(v, "null");
	default: return jv_number(v);
	}
}

int json_valid(const char *s, size_t n)
{
	struct jv v = {s, s + n};
	if (!jv_value(&v, 0))
		return 0;
	jv_ws(&v);
	return v.p == v.end;
}

void json_kstr(struct json *j, const char *k, const char *s)
{
	json_key(j, k);
	json_str(j, s);
}

void json_kint(struct json *j, const char *k, long long v)
{
	json_key(j, k);
	json_int(j, v);
}

void json_kuint(struct json *j, const char *k, unsigned long long v)
{
	json_key(j, k);
	json_uint(j, v);
}

void json_kdouble(struct json *j, const char *k, double v)
{
	json_key(j, k);
	json_double(j, v);
}

void json_kbool(struct json *j, const char *k, int v)
{
	json_key(j, k);
	json_bool(j, v);
}
