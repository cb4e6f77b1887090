/* check.c - what decides a probe's answer: FTP replies, JSON fields, statuses (pure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/jansson_lib.h"
#include "watch/internal.h"

#define JSON_SHOW_MAX 60 /* bytes of a value quoted in a failure */

const char *watch_memmem(const char *hay, size_t n, const char *needle, size_t k)
{
	if (!k)
		return hay;
	return memmem(hay, n, needle, k);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int watch_ftp_reply(const char *b, size_t n, int *code, size_t *len)
{
	if (n < 4)
		return n && !is_digit(b[0]) ? -1 : 0;
	if (!is_digit(b[0]) || !is_digit(b[1]) || !is_digit(b[2]) || (b[3] != ' ' && b[3] != '-'))
		return -1;
	size_t pos = 0;
	for (;;) {
		const char *nl = memchr(b + pos, '\n', n - pos);
		if (!nl)
			return 0;
		size_t line = pos, end = (size_t)(nl - b) + 1;
		/* The last line repeats the code followed by a space (RFC 959 4.2). */
		if (b[3] == ' ' || (end - line >= 4 && !memcmp(b + line, b, 3) && b[line + 3] == ' ')) {
			*code = (b[0] - '0') * 100 + (b[1] - '0') * 10 + (b[2] - '0');
			*len = end;
			return 1;
		}
		pos = end;
	}
}

int watch_status_ok(const struct watch_target *t, int status)
{
	if (!t->nstatus)
		return status >= HTTP_OK && status < HTTP_MULTIPLE_CHOICES;
	for (unsigned i = 0; i < t->nstatus; i++)
		if (status >= t->status[i].lo && status <= t->status[i].hi)
			return 1;
	return 0;
}

/* A value as a failure quotes it: compact JSON, cut to JSON_SHOW_MAX. */
static void show(const json_t *v, char *out, size_t len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	snprintf(out, len, "%.*s%s", JSON_SHOW_MAX, s ? s : "?", s && strlen(s) > JSON_SHOW_MAX ? "..." : "");
	free(s);
}

static int values_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return json_equal((json_t *)a, (json_t *)b);
}

/* Walks path ("a.b[0].c", "$.a.b", "items.0") from root. Returns the value, or NULL
 * with the part that is missing in why. */
static json_t *walk(json_t *root, const char *path, char *why, size_t whylen)
{
	json_t *v = root;
	const char *p = path;
	if (*p == '$')
		p++;
	while (*p) {
		if (*p == '.') {
			p++;
			continue;
		}
		char key[256];
		size_t k = 0;
		int index = *p == '[';
		if (index)
			p++;
		while (*p && *p != '.' && *p != '[' && *p != ']' && k < sizeof(key) - 1)
			key[k++] = *p++;
		key[k] = 0;
		if (index && *p++ != ']') {
			snprintf(why, whylen, "malformed path %s", path);
			return NULL;
		}
		char *end;
		unsigned long i = strtoul(key, &end, 10);
		if (json_is_array(v) && k && !*end) {
			v = json_array_get(v, i);
		} else if (json_is_object(v) && !index) {
			v = json_object_get(v, key);
		} else {
			v = NULL;
		}
		if (!v) {
			snprintf(why, whylen, "the JSON body has no %s (%s missing)", path, key);
			return NULL;
		}
	}
	return v;
}

int watch_json_check(const char *body, size_t len, const char *path, const char *want, char *why,
                     size_t whylen)
{
	json_error_t e;
	if (jansson_need(why, whylen) < 0)
		return 0;
	json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &e);
	if (!root) {
		snprintf(why, whylen, "the body is not JSON: %s at line %d column %d", e.text, e.line,
		         e.column);
		return 0;
	}
	int ok = 0;
	json_t *v = walk(root, path, why, whylen);
	if (v && !want) {
		ok = 1;
	} else if (v) {
		json_t *w = json_loads(want, JSON_DECODE_ANY, &e);
		if (w && values_equal(v, w)) {
			ok = 1;
		} else {
			char got[JSON_SHOW_MAX + 8];
			show(v, got, sizeof(got));
			snprintf(why, whylen, "%s is %s, want %s", path, got, want);
		}
		json_decref(w);
	}
	json_decref(root);
	return ok;
}
