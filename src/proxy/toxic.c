/* toxic.c - the toxic types (toxiproxy's, then ours), their attributes, parsing and JSON; presets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/strparse.h"
#include "core/text.h"
#include "proxy/internal.h"
#include "proxy/jin.h"

static const char *const header_actions[] = {"add", "drop", "replace", NULL};

#define MS(n)                                               \
	{                                                   \
		n, TA_INT, 0, 0, TOXIC_TIME_MAX, NULL, "ms" \
	}
#define BIG 9007199254740992.0 /* 2^53: the largest integer a JSON number keeps exactly */
#define PROB(n, d)                                      \
	{                                               \
		n, TA_NUM, d, 0, 1, NULL, "probability" \
	}

/* toxiproxy's types keep its attribute names, defaults and units (its toxics directory). */
static const struct toxic_type types[] = {
        {"latency", TK_LATENCY, 0, 1, 2, {MS("latency"), MS("jitter")}},
        {"bandwidth", TK_BANDWIDTH, 0, 1, 1, {{"rate", TA_INT, 0, 0, 1e9, NULL, "KB/s"}}},
        {"slow_close", TK_SLOW_CLOSE, 0, 1, 1, {MS("delay")}},
        {"timeout", TK_TIMEOUT, 0, 1, 1, {MS("timeout")}},
        {"reset_peer", TK_RESET_PEER, 0, 1, 1, {MS("timeout")}},
        {"slicer",
         TK_SLICER,
         0,
         1,
         3,
         {{"average_size", TA_INT, 1, 1, 1e9, NULL, "bytes"},
          {"size_variation", TA_INT, 0, 0, 1e9, NULL, "bytes"},
          {"delay", TA_INT, 0, 0, TOXIC_TIME_MAX * 1000, NULL, "us"}}},
        {"limit_data", TK_LIMIT_DATA, 0, 1, 1, {{"bytes", TA_INT, 0, 0, BIG, NULL, "bytes"}}},
        {"loss", TK_LOSS, 0, 1, 2, {PROB("probability", 0), {"rto", TA_INT, 200, 1, 60000, NULL, "ms"}}},
        {"corrupt", TK_CORRUPT, 0, 1, 1, {PROB("probability", 0)}},
        {"http_fail",
         TK_HTTP_FAIL,
         1,
         1,
         3,
         {{"first", TA_INT, 0, 0, 1e9, NULL, "requests"},
          PROB("probability", 0),
          {"status", TA_INT, 503, 200, 599, NULL, "HTTP status"}}},
        {"http_delay", TK_HTTP_DELAY, 1, 1, 1, {MS("delay")}},
        {"http_header",
         TK_HTTP_HEADER,
         1,
         1,
         3,
         {{"action", TA_ENUM, 0, 0, 2, header_actions, "add|drop|replace"},
          {"name", TA_STR, 0, 0, 0, NULL, "header name"},
          {"value", TA_STR, 0, 0, 0, NULL, "header value"}}},
        {"http_cut",
         TK_HTTP_CUT,
         1,
         1,
         2,
         {{"after", TA_INT, 0, 0, BIG, NULL, "body bytes"}, {"reset", TA_INT, 0, 0, 1, NULL, "0 or 1"}}},
};

const struct toxic_type *toxic_type_at(size_t i)
{
	return i < sizeof(types) / sizeof(types[0]) ? &types[i] : NULL;
}

const struct toxic_type *toxic_type_find(const char *name)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	return NULL;
}

const char *proxy_toxic_names(void)
{
	return "latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, loss, corrupt, "
	       "http_fail, http_delay, http_header, http_cut";
}

static const char *const streams[] = {"upstream", "downstream"}; /* enum proxy_dir order */

const char *proxy_stream_name(enum proxy_dir d)
{
	return streams[d];
}

void toxic_defaults(struct toxic *t, const struct toxic_type *type, enum proxy_dir dir)
{
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->dir = dir;
	t->toxicity = 1.0;
	size_t si = 0;
	for (size_t i = 0; i < type->nattrs; i++) {
		if (type->attrs[i].kind == TA_STR)
			t->str[si++][0] = 0;
		else
			t->num[i] = type->attrs[i].def;
	}
	snprintf(t->name, sizeof t->name, "%s_%s", type->name, streams[dir]);
}

static int attr_index(const struct toxic_type *type, const char *name, size_t *stri)
{
	size_t si = 0;
	for (size_t i = 0; i < type->nattrs; i++) {
		if (!strcmp(type->attrs[i].name, name)) {
			if (stri)
				*stri = si;
			return (int)i;
		}
		si += type->attrs[i].kind == TA_STR;
	}
	return -1;
}

double toxic_num(const struct toxic *t, const char *name)
{
	int i = attr_index(t->type, name, NULL);
	return i < 0 ? 0 : t->num[i];
}

const char *toxic_str(const struct toxic *t, const char *name)
{
	size_t si = 0;
	return attr_index(t->type, name, &si) < 0 ? "" : t->str[si];
}

/* A header name is a token (RFC 9110 5.6.2); a value has no CR, LF or NUL. */
static int is_token(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *s))
			return 0;
	return 1;
}

/* Sets attribute i from text (spec) or a JSON value (jv); exactly one is given. */
static int attr_set(struct toxic *t, size_t i, size_t si, const char *text, const struct jin *jv, char *why,
                    size_t whylen)
{
	const struct toxic_attr_def *a = &t->type->attrs[i];
	if (a->kind == TA_STR || a->kind == TA_ENUM) {
		const char *s = text;
		if (jv) {
			if (!jin_is_string(jv)) {
				snprintf(why, whylen, "%s.%s must be a string (%s)", t->type->name, a->name,
				         a->unit);
				return -1;
			}
			s = jin_str(jv);
		}
		if (a->kind == TA_ENUM) {
			for (size_t k = 0; a->choices[k]; k++) {
				if (!strcmp(a->choices[k], s)) {
					t->num[i] = (double)k;
					return 0;
				}
			}
			snprintf(why, whylen, "%s.%s must be one of %s", t->type->name, a->name, a->unit);
			return -1;
		}
		if (strlen(s) >= TOXIC_STR_MAX || strpbrk(s, "\r\n") || (jv && strlen(s) != jin_strlen(jv))) {
			snprintf(why, whylen, "%s.%s must be under %d bytes, without CR, LF or NUL",
			         t->type->name, a->name, TOXIC_STR_MAX);
			return -1;
		}
		memcpy(t->str[si], s, strlen(s) + 1);
		return 0;
	}
	double v;
	if (jv) {
		if (!jin_is_number(jv)) {
			snprintf(why, whylen, "%s.%s must be a number (%s)", t->type->name, a->name, a->unit);
			return -1;
		}
		v = jin_num(jv);
	} else {
		char *end;
		v = strtod(text, &end);
		if (!*text || *end) {
			snprintf(why, whylen, "%s.%s: '%s' is not a number", t->type->name, a->name, text);
			return -1;
		}
	}
	if (!isfinite(v) || v < a->min || v > a->max) {
		snprintf(why, whylen, "%s.%s must be between %.15g and %.15g (%s)", t->type->name, a->name,
		         a->min, a->max, a->unit);
		return -1;
	}
	if (a->kind == TA_INT && v != floor(v)) {
		snprintf(why, whylen, "%s.%s must be a whole number (%s)", t->type->name, a->name, a->unit);
		return -1;
	}
	t->num[i] = v;
	return 0;
}

/* Checks what one attribute alone cannot. */
static int toxic_check(const struct toxic *t, char *why, size_t whylen)
{
	if (t->type->kind == TK_SLICER && toxic_num(t, "size_variation") >= toxic_num(t, "average_size")) {
		snprintf(why, whylen, "slicer.size_variation must be smaller than average_size");
		return -1;
	}
	if (t->type->kind == TK_HTTP_HEADER) {
		if (!is_token(toxic_str(t, "name"))) {
			snprintf(why, whylen, "http_header.name must be a header name (a token)");
			return -1;
		}
		if (toxic_num(t, "action") != 1 && !toxic_str(t, "value")[0]) {
			snprintf(why, whylen, "http_header.value is needed to add or replace a header");
			return -1;
		}
	}
	return proxy_name_check("toxic", t->name, why, whylen);
}

int proxy_name_check(const char *what, const char *name, char *why, size_t whylen)
{
	const unsigned char *u = (const unsigned char *)name;
	size_t n = strlen(name);
	int bad = !n || n >= PROXY_NAME_MAX || strchr(name, '/');
	/* A name is printed in logs, the summary and stdout: no C0 or C1 control, no line
	 * separator (U+2028, U+2029: lines to Unicode-aware readers), no bidi control
	 * (U+200E/F, U+202A-E, U+2066-9: they reorder what a line shows), valid UTF-8. */
	for (size_t i = 0, l; i < n && !bad; i += l) {
		l = u[i] < 0x80 ? 1 : text_utf8_len(u + i, n - i);
		bad = !l || u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 && u[i + 1] < 0xa0) ||
		      (l == 3 && u[i] == 0xe2 && u[i + 1] == 0x80 &&
		       (u[i + 2] == 0x8e || u[i + 2] == 0x8f || (u[i + 2] >= 0xa8 && u[i + 2] <= 0xae))) ||
		      (l == 3 && u[i] == 0xe2 && u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9);
	}
	if (bad)
		snprintf(
		        why, whylen,
		        "a %s's name must be 1 to %d bytes of UTF-8, without '/', control characters or line "
		        "separators",
		        what, PROXY_NAME_MAX - 1);
	return bad ? -1 : 0;
}

struct attr_ctx {
	struct toxic *t;
	char *why;
	size_t whylen;
	enum lk_err e;
};

/* "latency has no attribute 'latncy'; it has latency jitter": for the API and the flags. */
static void no_attr(const struct toxic_type *type, const char *k, char *why, size_t whylen)
{
	int n = snprintf(why, whylen, "%s has no attribute '%s'; it has", type->name, k);
	for (size_t x = 0; x < type->nattrs && n > 0 && (size_t)n < whylen; x++)
		n += snprintf(why + n, whylen - (size_t)n, " %s", type->attrs[x].name);
}

static int attr_one(void *arg, const char *k, const struct jin *av)
{
	struct attr_ctx *a = arg;
	struct toxic *t = a->t;
	size_t si = 0;
	int i = attr_index(t->type, k, &si);
	if (i < 0) {
		no_attr(t->type, k, a->why, a->whylen);
		a->e = LK_E_P_BAD_ATTR;
		return 1;
	}
	if (attr_set(t, (size_t)i, si, NULL, av, a->why, a->whylen) < 0) {
		a->e = LK_E_P_BAD_ATTR;
		return 1;
	}
	return 0;
}

enum lk_err toxic_from_json(struct toxic *t, const void *objp, int update, char *why, size_t whylen)
{
	const struct jin *obj = objp, *v;
	if (!jin_is_object(obj)) {
		snprintf(why, whylen, "a toxic is a JSON object");
		return LK_E_P_BAD_BODY;
	}
	if (!update) {
		v = jin_get(obj, "type");
		const char *tn = jin_str(v) ? jin_str(v) : "";
		const struct toxic_type *type = toxic_type_find(tn);
		if (!type) {
			snprintf(why, whylen, "'%s'; the types are %s", tn, proxy_toxic_names());
			return LK_E_P_BAD_TYPE;
		}
		v = jin_get(obj, "stream");
		enum proxy_dir dir = PROXY_DOWN; /* toxiproxy's default */
		if (v && !jin_is_null(v)) {
			if (!jin_str(v))
				return LK_E_P_BAD_STREAM;
			if (!strcmp(jin_str(v), "upstream"))
				dir = PROXY_UP;
			else if (strcmp(jin_str(v), "downstream") && jin_str(v)[0])
				return LK_E_P_BAD_STREAM;
		}
		toxic_defaults(t, type, dir);
		v = jin_get(obj, "name");
		if (v && !jin_is_null(v)) {
			if (!jin_is_string(v)) {
				snprintf(why, whylen, "name must be a string");
				return LK_E_P_BAD_BODY;
			}
			if (jin_strlen(v)) {
				if (jin_strlen(v) >= PROXY_NAME_MAX) {
					snprintf(why, whylen, "a toxic's name must be under %d bytes",
					         PROXY_NAME_MAX);
					return LK_E_P_BAD_BODY;
				}
				snprintf(t->name, sizeof t->name, "%s", jin_str(v));
			}
		}
	}
	v = jin_get(obj, "toxicity");
	if (v && !jin_is_null(v)) {
		double x = jin_is_number(v) ? jin_num(v) : -1;
		if (!(x >= 0 && x <= 1)) {
			snprintf(why, whylen, "toxicity must be a number from 0 to 1");
			return LK_E_P_BAD_BODY;
		}
		t->toxicity = x;
	}
	v = jin_get(obj, "attributes");
	if (v && !jin_is_null(v)) {
		if (!jin_is_object(v)) {
			snprintf(why, whylen, "attributes must be an object");
			return LK_E_P_BAD_BODY;
		}
		struct attr_ctx a = {t, why, whylen, LK_E_OK};
		if (jin_each(v, attr_one, &a))
			return a.e;
	}
	if (proxy_name_check("toxic", t->name, why, whylen) < 0)
		return LK_E_P_BAD_NAME; /* not an attribute */
	if (toxic_check(t, why, whylen) < 0)
		return LK_E_P_BAD_ATTR;
	return LK_E_OK;
}

int toxic_from_spec(struct toxic *t, const char *spec, char *why, size_t whylen)
{
	char copy[1024];
	if (strlen(spec) >= sizeof copy) {
		snprintf(why, whylen, "longer than %zu bytes", sizeof copy - 1);
		return -1;
	}
	memcpy(copy, spec, strlen(spec) + 1);
	char *save = NULL, *tok = strtok_r(copy, ",", &save);
	char *tname = tok ? strchr(tok, ':') : NULL; /* TYPE:NAME names the toxic */
	if (tname)
		*tname++ = 0;
	const struct toxic_type *type = tok ? toxic_type_find(tok) : NULL;
	if (!type) {
		snprintf(why, whylen, "unknown toxic type '%s'; the types are %s", tok ? tok : "",
		         proxy_toxic_names());
		return -1;
	}
	toxic_defaults(t, type, PROXY_DOWN);
	int named = 0;
	if (tname) {
		if (!*tname || strlen(tname) >= PROXY_NAME_MAX) {
			snprintf(why, whylen, "the name after %s: must be 1 to %d bytes", type->name,
			         PROXY_NAME_MAX - 1);
			return -1;
		}
		snprintf(t->name, sizeof t->name, "%s", tname);
		named = 1;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			snprintf(why, whylen, "'%s' is not ATTR=VALUE", tok);
			return -1;
		}
		*eq++ = 0;
		if (!strcmp(tok, "stream")) {
			if (!strcmp(eq, "upstream") || !strcmp(eq, "downstream")) {
				t->dir = !strcmp(eq, "upstream") ? PROXY_UP : PROXY_DOWN;
				continue;
			}
			snprintf(why, whylen, "stream must be upstream or downstream");
			return -1;
		}
		if (!strcmp(tok, "toxicity")) {
			if (strparse_decimal(eq, 0, 1, &t->toxicity, why, whylen) < 0)
				return -1;
			continue;
		}
		size_t si = 0;
		int i = attr_index(type, tok, &si);
		if (i < 0) {
			if (!strcmp(tok, "name"))
				snprintf(why, whylen,
				         "%s has no attribute 'name' (name a toxic with TYPE:NAME)",
				         type->name);
			else
				no_attr(type, tok, why, whylen);
			return -1;
		}
		if (attr_set(t, (size_t)i, si, eq, NULL, why, whylen) < 0)
			return -1;
	}
	if (!named)
		snprintf(t->name, sizeof t->name, "%s_%s", type->name, streams[t->dir]);
	return toxic_check(t, why, whylen);
}

void toxic_json(struct json *j, const struct toxic *t)
{
	json_obj_begin(j);
	json_key(j, "attributes");
	json_obj_begin(j);
	size_t si = 0;
	for (size_t i = 0; i < t->type->nattrs; i++) {
		const struct toxic_attr_def *a = &t->type->attrs[i];
		json_key(j, a->name);
		if (a->kind == TA_STR)
			json_str(j, t->str[si++]);
		else if (a->kind == TA_ENUM)
			json_str(j, a->choices[(size_t)t->num[i]]);
		else if (a->kind == TA_INT)
			json_int(j, (long long)t->num[i]);
		else
			json_double(j, t->num[i]);
	}
	json_obj_end(j);
	json_kstr(j, "name", t->name);
	json_kstr(j, "type", t->type->name);
	json_kstr(j, "stream", streams[t->dir]);
	json_kdouble(j, "toxicity", t->toxicity);
	json_obj_end(j);
}

/* ---- presets ----
 * comcast's table of network profiles (github.com/tylertreat/comcast, README:
 * "Network Condition Profiles"): latency in ms, bandwidth in kbit/s, packet loss.
 * Satellite has no bandwidth there; 1000 kbit/s is our choice (a consumer GEO link's
 * upload order of magnitude). Sources in docs/proxy.md. */
static const struct proxy_preset presets[] = {
        {"gprs", 500, 50, 0.02, "comcast: GPRS (good) 500 ms, 50 kbit/s, 2% loss"},
        {"edge", 300, 250, 0.015, "comcast: EDGE (good) 300 ms, 250 kbit/s, 1.5% loss"},
        {"3g", 250, 750, 0.015, "comcast: 3G/HSDPA (good) 250 ms, 750 kbit/s, 1.5% loss"},
        {"dialup", 185, 40, 0.02, "comcast: dial-up (good) 185 ms, 40 kbit/s, 2% loss"},
        {"dsl-poor", 70, 2000, 0.02, "comcast: DSL (poor) 70 ms, 2 Mbit/s, 2% loss"},
        {"dsl", 40, 8000, 0.005, "comcast: DSL (good) 40 ms, 8 Mbit/s, 0.5% loss"},
        {"wifi", 40, 30000, 0.002, "comcast: Wi-Fi (good) 40 ms, 30 Mbit/s, 0.2% loss"},
        {"satellite", 1500, 1000, 0.002, "comcast: satellite 1500 ms, 0.2% loss; 1 Mbit/s is ours"},
};

const struct proxy_preset *proxy_preset_find(const char *name)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (!strcmp(presets[i].name, name))
			return &presets[i];
	return NULL;
}

const char *proxy_preset_names(void)
{
	return "gprs, edge, 3g, dialup, dsl-poor, dsl, wifi, satellite";
}

size_t proxy_preset_toxics(const struct proxy_preset *p, struct toxic *out)
{
	size_t n = 0;
	for (int d = PROXY_UP; d <= PROXY_DOWN; d++) {
		struct toxic *t = &out[n++];
		toxic_defaults(t, toxic_type_find("latency"), (enum proxy_dir)d);
		t->num[0] = (double)(p->latency_ms / 2 + (d == PROXY_DOWN ? p->latency_ms % 2 : 0));
		if (p->kbit) {
			t = &out[n++];
			toxic_defaults(t, toxic_type_find("bandwidth"), (enum proxy_dir)d);
			t->num[0] = (double)(p->kbit / 8 ? p->kbit / 8 : 1); /* kbit/s -> KB/s */
		}
		if (p->loss > 0) {
			t = &out[n++];
			toxic_defaults(t, toxic_type_find("loss"), (enum proxy_dir)d);
			t->num[0] = p->loss;
		}
	}
	return n;
}
