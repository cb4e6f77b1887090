/* fuzz_json.c - json_valid on raw input, and on whatever the writer makes of the input. */
#include "fuzz.h"

#include "core/json.h"

struct reader {
	const uint8_t *p;
	size_t n;
};

static uint8_t take_byte(struct reader *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

/* Up to 255 bytes, length first. */
static const char *take_bytes(struct reader *r, size_t *len)
{
	size_t l = take_byte(r);
	if (l > r->n)
		l = r->n;
	const char *s = (const char *)r->p;
	r->p += l;
	r->n -= l;
	*len = l;
	return s;
}

static uint64_t take_u64(struct reader *r)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | take_byte(r);
	return v;
}

/* How deep raw JSON text nests by itself ([ and { outside strings). */
static int raw_depth(const char *s, size_t n)
{
	int d = 0, max = 0, in_str = 0;
	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = 0;
		} else if (s[i] == '"') {
			in_str = 1;
		} else if (s[i] == '[' || s[i] == '{') {
			if (++d > max)
				max = d;
		} else if (s[i] == ']' || s[i] == '}') {
			d--;
		}
	}
	return max;
}

/* Drives the writer with the input as a program: each byte an operation, its
 * operands after it. Containers are tracked so the calls are always a legal
 * sequence (a key before each value inside an object); what the writer produces
 * must then be valid JSON, unless it reported an error (depth, size). */
static void fuzz_writer(const uint8_t *data, size_t n)
{
	struct reader rd = {data, n};
	struct buf b;
	struct json j;
	int is_obj[64], depth = 0, raw_used = 0;
	size_t len;
	const char *s;

	buf_init(&b, 1 << 20);
	json_init(&j, &b, take_byte(&rd) & 1);
	json_arr_begin(&j);
	is_obj[depth++] = 0;
	while (rd.n) {
		uint8_t op = take_byte(&rd) % 11;
		if (op == 2) {
			if (depth > 1) {
				depth--;
				if (is_obj[depth])
					json_obj_end(&j);
				else
					json_arr_end(&j);
			}
			continue;
		}
		if (is_obj[depth - 1]) {
			s = take_bytes(&rd, &len);
			json_key_n(&j, s, len);
		}
		switch (op) {
		case 0:
		case 1:
			if (depth == 64) {
				json_null(&j);
				break;
			}
			is_obj[depth++] = op == 0;
			if (op == 0)
				json_obj_begin(&j);
			else
				json_arr_begin(&j);
			break;
		case 3:
		case 4:
			s = take_bytes(&rd, &len);
			json_str_n(&j, s, len);
			break;
		case 5: json_int(&j, (long long)take_u64(&rd)); break;
		case 6: json_uint(&j, take_u64(&rd)); break;
		case 7: {
			uint64_t u = take_u64(&rd);
			double d;
			memcpy(&d, &u, sizeof(d));
			json_double(&j, d);
			break;
		}
		case 8: json_bool(&j, take_byte(&rd) & 1); break;
		case 9: json_null(&j); break;
		default:
			s = take_bytes(&rd, &len);
			/* Raw text brings its own nesting, which the writer does not count: it is
			 * used only where it cannot push the whole past JSON_MAX_DEPTH (32 levels
			 * of raw text inside the outer array made 33: a harness bug, found by CI). */
			if (depth <= 1 && json_valid(s, len) && depth + raw_depth(s, len) <= JSON_MAX_DEPTH) {
				json_raw(&j, s, len);
				raw_used = 1;
			} else {
				json_str_n(&j, s, len);
			}
			break;
		}
	}
	while (depth > 0) {
		depth--;
		if (is_obj[depth])
			json_obj_end(&j);
		else
			json_arr_end(&j);
	}
	if (!j.err) {
		const char *o = buf_start(&b);
		size_t ol = buf_used(&b);
		FUZZ_CHECK(json_valid(o, ol), "writer output is not valid JSON: %.*s",
		           (int)(ol < 400 ? ol : 400), o);
		/* Strings are safe inside HTML: no '<', '>' or '&' unless raw text put them there. */
		if (!raw_used)
			FUZZ_CHECK(!memchr(o, '<', ol) && !memchr(o, '>', ol) && !memchr(o, '&', ol),
			           "HTML metacharacter in output");
	}
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *p = fuzz_dup(data, n);
	int v = json_valid(p, n);
	FUZZ_CHECK(v == 0 || v == 1, "json_valid %d", v);
	if (v) {
		/* Surrounding whitespace does not matter; a cut-off value is never valid
		 * (except where a number's digits end early: "12" cut to "1"). */
		char *w = malloc(n + 2);
		w[0] = ' ';
		memcpy(w + 1, p, n);
		w[n + 1] = '\n';
		FUZZ_CHECK(json_valid(w, n + 2), "whitespace made it invalid");
		free(w);
		size_t end = n;
		while (end && strchr(" \t\r\n", p[end - 1]))
			end--;
		char last = end ? p[end - 1] : 0;
		if (end > 1 && (last == '}' || last == ']' || last == '"'))
			FUZZ_CHECK(!json_valid(p, end - 1), "valid without its last byte");
	}
	fuzz_writer(data, n);
	free(p);
	return 0;
}
