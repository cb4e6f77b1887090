/* test_proxy.c - table-driven tests of the proxy's toxics: --toxic specs, JSON bodies, presets, toxiproxy's
 * JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/json.h"
#include "proxy/internal.h"
#include "proxy/jin.h"

struct spec_row {
	const char *spec;
	int ok;
	const char *want; /* toxiproxy's JSON of the toxic, or a substring of the reason */
};

static const struct spec_row spec_rows[] = {
        {"latency", 1,
         "{\"attributes\":{\"latency\":0,\"jitter\":0},\"name\":\"latency_downstream\",\"type\":\"latency\","
         "\"stream\":\"downstream\",\"toxicity\":1}"},
        {"latency,latency=100,jitter=10,stream=upstream", 1,
         "{\"attributes\":{\"latency\":100,\"jitter\":10},\"name\":\"latency_upstream\",\"type\":\"latency\","
         "\"stream\":\"upstream\",\"toxicity\":1}"},
        {"bandwidth:slow,rate=64,toxicity=0.25", 1,
         "{\"attributes\":{\"rate\":64},\"name\":\"slow\",\"type\":\"bandwidth\",\"stream\":\"downstream\","
         "\"toxicity\":0.25}"},
        {"slicer,average_size=10,size_variation=3,delay=500", 1,
         "{\"attributes\":{\"average_size\":10,\"size_variation\":3,\"delay\":500},\"name\":\"slicer_"
         "downstream\","
         "\"type\":\"slicer\",\"stream\":\"downstream\",\"toxicity\":1}"},
        {"http_header,action=drop,name=ETag", 1,
         "{\"attributes\":{\"action\":\"drop\",\"name\":\"ETag\",\"value\":\"\"},\"name\":\"http_header_"
         "downstream\","
         "\"type\":\"http_header\",\"stream\":\"downstream\",\"toxicity\":1}"},
        {"http_fail,first=2,status=502", 1,
         "{\"attributes\":{\"first\":2,\"probability\":0,\"status\":502},\"name\":\"http_fail_downstream\","
         "\"type\":\"http_fail\",\"stream\":\"downstream\",\"toxicity\":1}"},
        {"loss,probability=0.5", 1,
         "{\"attributes\":{\"probability\":0.5,\"rto\":200},\"name\":\"loss_downstream\",\"type\":\"loss\","
         "\"stream\":\"downstream\",\"toxicity\":1}"},
        {"", 0, "unknown toxic type ''"},
        {"latencyy", 0, "unknown toxic type 'latencyy'; the types are latency, bandwidth"},
        {"latency,latency", 0, "'latency' is not ATTR=VALUE"},
        {"latency,latency=-1", 0, "latency.latency must be between 0 and 3600000 (ms)"},
        {"latency,latency=3600001", 0, "must be between 0 and 3600000 (ms)"},
        {"latency,latency=1.5", 0, "must be a whole number (ms)"},
        {"latency,latency=abc", 0, "'abc' is not a number"},
        {"latency,stream=sideways", 0, "stream must be upstream or downstream"},
        {"latency,toxicity=1.5", 0, "more than 1"},
        {"latency,name=x", 0, "latency has no attribute 'name' (name a toxic with TYPE:NAME)"},
        {"latency:,latency=1", 0, "the name after latency: must be 1 to 63 bytes"},
        {"slicer,average_size=0", 0, "slicer.average_size must be between 1"},
        {"slicer,average_size=5,size_variation=5", 0, "size_variation must be smaller than average_size"},
        {"http_header,action=add,name=X", 0, "http_header.value is needed"},
        {"http_header,action=add,name=A B,value=1", 0, "http_header.name must be a header name"},
        {"http_header,action=merge,name=A", 0, "http_header.action must be one of add|drop|replace"},
        {"http_fail,status=99", 0, "http_fail.status must be between 200 and 599"},
        {"corrupt,probability=2", 0, "corrupt.probability must be between 0 and 1"},
};

static void render(const struct toxic *t, char *out, size_t len)
{
	struct buf b;
	struct json j;
	buf_init(&b, 4096);
	json_init(&j, &b, 0);
	toxic_json(&j, t);
	snprintf(out, len, "%.*s", (int)buf_used(&b), buf_start(&b));
	buf_free(&b);
}

static void test_specs(void **state)
{
	for (size_t i = 0; i < sizeof(spec_rows) / sizeof(spec_rows[0]); i++) {
		const struct spec_row *r = &spec_rows[i];
		struct toxic t;
		char why[256] = "";
		int rc = toxic_from_spec(&t, r->spec, why, sizeof why);
		if (r->ok) {
			char out[1024];
			if (rc != 0)
				fail_msg("row %zu (%s): refused: %s", i, r->spec, why);
			render(&t, out, sizeof out);
			if (strcmp(out, r->want))
				fail_msg("row %zu (%s):\n got %s\nwant %s", i, r->spec, out, r->want);
		} else {
			if (rc == 0)
				fail_msg("row %zu (%s): accepted", i, r->spec);
			if (!strstr(why, r->want))
				fail_msg("row %zu (%s): reason '%s' lacks '%s'", i, r->spec, why, r->want);
		}
	}
}

struct json_row {
	const char *body;
	int update;
	enum lk_err want_err;
	const char *want; /* the JSON of the result, or a substring of the reason */
};

static const struct json_row json_rows[] = {
        {"{\"type\":\"timeout\"}", 0, LK_E_OK,
         "{\"attributes\":{\"timeout\":0},\"name\":\"timeout_downstream\",\"type\":\"timeout\","
         "\"stream\":\"downstream\",\"toxicity\":1}"},
        {"{\"type\":\"reset_peer\",\"name\":\"r\",\"stream\":\"upstream\",\"toxicity\":0.5,"
         "\"attributes\":{\"timeout\":20}}",
         0, LK_E_OK,
         "{\"attributes\":{\"timeout\":20},\"name\":\"r\",\"type\":\"reset_peer\",\"stream\":\"upstream\","
         "\"toxicity\":0.5}"},
        {"{\"type\":\"latency\",\"name\":null,\"stream\":null,\"attributes\":null}", 0, LK_E_OK,
         "\"name\":\"latency_downstream\""},
        {"{\"type\":\"nope\"}", 0, LK_E_P_BAD_TYPE, "'nope'"},
        {"{\"attributes\":{}}", 0, LK_E_P_BAD_TYPE, "''"},
        {"[1]", 0, LK_E_P_BAD_BODY, "a toxic is a JSON object"},
        {"{\"type\":\"latency\",\"stream\":5}", 0, LK_E_P_BAD_STREAM, ""},
        {"{\"type\":\"latency\",\"attributes\":[]}", 0, LK_E_P_BAD_BODY, "attributes must be an object"},
        {"{\"type\":\"latency\",\"attributes\":{\"latency\":true}}", 0, LK_E_P_BAD_ATTR, "must be a number"},
        {"{\"type\":\"http_header\",\"attributes\":{\"name\":\"A\",\"value\":\"x\\r\\nEvil: 1\"}}", 0,
         LK_E_P_BAD_ATTR, "without CR, LF or NUL"},
        {"{\"type\":\"latency\",\"toxicity\":\"1\"}", 0, LK_E_P_BAD_BODY,
         "toxicity must be a number from 0 to 1"},
        {"{\"type\":\"latency\",\"name\":\"" /* 64 bytes */
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         0, LK_E_P_BAD_BODY, "under 64 bytes"},
        {"{\"attributes\":{\"jitter\":7}}", 1, LK_E_OK, "\"attributes\":{\"latency\":100,\"jitter\":7}"},
        {"{\"toxicity\":0}", 1, LK_E_OK, "\"toxicity\":0}"},
        {"{\"attributes\":{\"rate\":1}}", 1, LK_E_P_BAD_ATTR,
         "latency has no attribute 'rate'; it has latency jitter"},
};

static void test_json_bodies(void **state)
{
	for (size_t i = 0; i < sizeof(json_rows) / sizeof(json_rows[0]); i++) {
		const struct json_row *r = &json_rows[i];
		char why[512] = "";
		struct toxic t;
		toxic_defaults(&t, toxic_type_find("latency"), PROXY_DOWN);
		t.num[0] = 100; /* an existing toxic, for updates */
		struct jin *v = jin_parse(r->body, strlen(r->body), why, sizeof why);
		if (!v)
			fail_msg("row %zu: the test's JSON does not parse: %s", i, why);
		enum lk_err e = toxic_from_json(&t, v, r->update, why, sizeof why);
		jin_free(v);
		if (e != r->want_err)
			fail_msg("row %zu (%s): error %d, want %d (%s)", i, r->body, e, r->want_err, why);
		if (e == LK_E_OK) {
			char out[1024];
			render(&t, out, sizeof out);
			if (!strstr(out, r->want))
				fail_msg("row %zu (%s):\n got %s\nwant %s", i, r->body, out, r->want);
		} else if (!strstr(why, r->want)) {
			fail_msg("row %zu (%s): reason '%s' lacks '%s'", i, r->body, why, r->want);
		}
	}
}

static void test_json_refuses_nul_and_duplicates(void **state)
{
	char why[256];
	const char *nul = "{\"type\":\"latency\",\"name\":\"a\\u0000b\"}";
	const char *dup = "{\"type\":\"latency\",\"type\":\"timeout\"}";
	assert_null(jin_parse(nul, strlen(nul), why, sizeof why));
	assert_non_null(strstr(why, "\\u0000 is not allowed"));
	assert_null(jin_parse(dup, strlen(dup), why, sizeof why));
	assert_non_null(strstr(why, "duplicate object key"));
}

static void test_presets(void **state)
{
	const char *names[] = {"gprs", "edge", "3g", "dialup", "dsl-poor", "dsl", "wifi", "satellite"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct proxy_preset *p = proxy_preset_find(names[i]);
		assert_non_null(p);
		assert_non_null(strstr(proxy_preset_names(), names[i]));
		struct toxic t[8];
		size_t n = proxy_preset_toxics(p, t);
		double lat = 0;
		for (size_t k = 0; k < n; k++) {
			if (t[k].type->kind == TK_LATENCY)
				lat += t[k].num[0];
			if (t[k].type->kind == TK_BANDWIDTH)
				assert_int_equal((long)t[k].num[0], (long)(p->kbit / 8));
			for (size_t m = 0; m < k; m++)
				assert_string_not_equal(t[k].name, t[m].name); /* addable to one proxy */
		}
		assert_int_equal((long)lat, (long)p->latency_ms); /* the round trip, split both ways */
	}
	assert_null(proxy_preset_find("5g"));
}

/* A name of n - 1 bytes that the JSON writer escapes longest ('<' becomes \u003c), the
 * last bytes distinct (k) so names differ. */
static void longest_name(char *name, size_t n, size_t k)
{
	memset(name, '<', n - 1);
	snprintf(name + n - 6, 6, "%05zu", k);
}

/* A proxy at every bound: the longest names, 32 live toxics, 32 named tallies and one per
 * type and stream beyond, counters at their largest. */
static struct proxy *fullest_proxy(struct proxy_server *s, int k)
{
	size_t ntypes = 0;
	while (toxic_type_at(ntypes))
		ntypes++;
	struct proxy *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->srv = s;
	longest_name(p->name, sizeof p->name, (size_t)k);
	memset(p->listen, '<', sizeof p->listen - 1);
	memset(p->upstream, '<', sizeof p->upstream - 1);
	p->conns_total = p->refused = p->bytes[0] = p->bytes[1] = UINT64_MAX;
	for (size_t i = 0; i < PROXY_MAX_TOXICS; i++) {
		struct toxic *t = calloc(1, sizeof(*t));
		assert_non_null(t);
		toxic_defaults(t, toxic_type_at(i % ntypes), i % 2 ? PROXY_UP : PROXY_DOWN);
		longest_name(t->name, sizeof t->name, i);
		t->applied = UINT64_MAX;
		p->toxics[p->ntoxics++] = t;
	}
	p->ngone = PROXY_TALLY_NAMES + 2 * ntypes;
	p->gone = calloc(p->ngone, sizeof(*p->gone));
	assert_non_null(p->gone);
	for (size_t i = 0; i < p->ngone; i++) {
		struct toxic_tally *g = &p->gone[i];
		if (i < PROXY_TALLY_NAMES)
			longest_name(g->name, sizeof g->name, i);
		g->type = toxic_type_at(i % ntypes);
		g->dir = i % 2 ? PROXY_UP : PROXY_DOWN;
		g->applied = UINT64_MAX;
	}
	return p;
}

/* The summary of a server at every bound fits PROXY_SUMMARY_MAX whole, both renderings. */
static void test_the_fullest_summary_fits(void **state)
{
	(void)state;
	struct proxy_server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	for (int i = 0; i < PROXY_MAX_PROXIES; i++) {
		s->proxies[s->nproxies++] = fullest_proxy(s, i);
		s->deleted[s->ndeleted++] = fullest_proxy(s, PROXY_MAX_PROXIES + i);
	}
	s->deleted_unlisted = UINT64_MAX;
	for (int json = 0; json < 2; json++) {
		struct buf out;
		buf_init(&out, PROXY_SUMMARY_MAX);
		proxy_server_summary(s, json, &out);
		const char *end = json ? "\"deleted_unlisted\":18446744073709551615}\n"
		                       : "18446744073709551615 more deleted proxies, not listed\n";
		assert_true(buf_used(&out) > strlen(end));
		assert_memory_equal(buf_start(&out) + buf_used(&out) - strlen(end), end, strlen(end));
		printf("summary at every bound (%s): %zu bytes, cap %d\n", json ? "json" : "text",
		       buf_used(&out), PROXY_SUMMARY_MAX);
		buf_free(&out);
	}
	struct proxy *all[2 * PROXY_MAX_PROXIES];
	memcpy(all, s->proxies, sizeof s->proxies);
	memcpy(all + PROXY_MAX_PROXIES, s->deleted, sizeof s->deleted);
	for (size_t i = 0; i < 2 * PROXY_MAX_PROXIES; i++) {
		for (size_t k = 0; k < all[i]->ntoxics; k++)
			free(all[i]->toxics[k]);
		free(all[i]->gone);
		free(all[i]);
	}
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_specs),
	        cmocka_unit_test(test_json_bodies),
	        cmocka_unit_test(test_json_refuses_nul_and_duplicates),
	        cmocka_unit_test(test_presets),
	        cmocka_unit_test(test_the_fullest_summary_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
