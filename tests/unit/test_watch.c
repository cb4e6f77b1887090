/* test_watch.c - table-driven tests of watch's pure parts: URLs, config, FTP replies, JSON checks, stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/text.h"
#include "watch/internal.h"

/* ---- target URLs ---- */

struct url_row {
	const char *url;
	int ok;
	enum watch_kind kind;
	const char *host;
	unsigned port;
	const char *path, *host_header; /* http */
	const char *user, *pass;        /* ftp */
	const char *why;                /* a substring of the error */
};

static const struct url_row url_rows[] = {
        {"tcp://127.0.0.1:5432", 1, WATCH_TCP, "127.0.0.1", 5432, NULL, NULL, NULL, NULL, NULL},
        {"127.0.0.1:5432", 1, WATCH_TCP, "127.0.0.1", 5432, NULL, NULL, NULL, NULL, NULL},
        {"TCP://[::1]:80", 1, WATCH_TCP, "::1", 80, NULL, NULL, NULL, NULL, NULL},
        {"http://localhost:3000/health?x=1#frag", 1, WATCH_HTTP, "localhost", 3000, "/health?x=1",
         "localhost:3000", NULL, NULL, NULL},
        {"http://127.0.0.1", 1, WATCH_HTTP, "127.0.0.1", 80, "/", "127.0.0.1", NULL, NULL, NULL},
        {"http://127.0.0.1?q", 1, WATCH_HTTP, "127.0.0.1", 80, "/?q", "127.0.0.1", NULL, NULL, NULL},
        {"http://[::1]:8080/a", 1, WATCH_HTTP, "::1", 8080, "/a", "[::1]:8080", NULL, NULL, NULL},
        {"ftp://127.0.0.1/", 1, WATCH_FTP, "127.0.0.1", 21, NULL, NULL, NULL, NULL, NULL},
        {"ftp://bob:p%40ss@127.0.0.1:2121", 1, WATCH_FTP, "127.0.0.1", 2121, NULL, NULL, "bob", "p@ss", NULL},
        {"udp://127.0.0.1:53", 1, WATCH_UDP, "127.0.0.1", 53, NULL, NULL, NULL, NULL, NULL},
        {"cmd:true", 1, WATCH_CMD, NULL, 0, NULL, NULL, NULL, NULL, NULL},
        {"cmd:   ", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "no command"},
        {"https://127.0.0.1/", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "https targets are not supported yet"},
        {"ws://127.0.0.1/", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "unknown kind of target"},
        {"localhost", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "not a target"},
        {"tcp://127.0.0.1", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "needs a port"},
        {"tcp://127.0.0.1:0", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "the port must be 1-65535"},
        {"tcp://127.0.0.1:65536", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "the port must be 1-65535"},
        {"tcp://127.0.0.1:80x", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "the port must be 1-65535"},
        {"tcp://:80", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "no host"},
        {"tcp://[::1:80", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "closing ']'"},
        {"tcp://127.0.0.1:80/x", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "has no path"},
        {"http://u:p@127.0.0.1/", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "credentials"},
        {"ftp://bob:%4@127.0.0.1/", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "malformed user or password"},
        {"http://127.0.0.1/a b", 0, 0, NULL, 0, NULL, NULL, NULL, NULL, "percent-encode"},
};

static void test_urls(void **state)
{
	for (size_t i = 0; i < sizeof(url_rows) / sizeof(url_rows[0]); i++) {
		const struct url_row *r = &url_rows[i];
		struct watch_config c;
		char err[512] = "";
		watch_config_init(&c);
		int rc = watch_config_add_url(&c, r->url, err, sizeof(err));
		if ((rc == 0) != r->ok || (!r->ok && !strstr(err, r->why))) {
			print_error("row %zu (%s): rc %d, err '%s'\n", i, r->url, rc, err);
			fail();
		}
		if (r->ok) {
			const struct watch_target *t = &c.targets[0];
			assert_int_equal(c.ntargets, 1);
			assert_int_equal(t->kind, r->kind);
			/* The name is the URL as shown: a password in it is written xxxxx. */
			if (r->pass)
				assert_string_equal(t->name, "ftp://bob:xxxxx@127.0.0.1:2121");
			else
				assert_string_equal(t->name, r->url);
			if (r->host) {
				assert_string_equal(t->host, r->host);
				assert_int_equal(t->port, r->port);
			}
			if (r->path) {
				assert_string_equal(t->path, r->path);
				assert_string_equal(t->host_header, r->host_header);
			}
			if (r->user) {
				assert_string_equal(t->user, r->user);
				assert_string_equal(t->pass, r->pass);
			}
		} else {
			assert_int_equal(c.ntargets, 0); /* a refused target leaves nothing behind */
		}
		watch_config_free(&c);
	}
}

static void test_finish(void **state)
{
	struct watch_config c;
	char err[512] = "";
	watch_config_init(&c);
	c.interval_ms = 2000;
	assert_int_equal(watch_config_add_url(&c, "tcp://127.0.0.1:1", err, sizeof(err)), 0);
	assert_int_equal(watch_config_add_url(&c, "ftp://127.0.0.1:21", err, sizeof(err)), 0);
	assert_int_equal(watch_config_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.targets[0].interval_ms, 2000);
	assert_int_equal(c.targets[0].retries, WATCH_RETRIES_DEFAULT);
	assert_string_equal(c.targets[1].user, "anonymous");
	/* the loopback rule, before any lookup */
	assert_int_equal(watch_config_add_url(&c, "tcp://192.0.2.1:80", err, sizeof(err)), 0);
	assert_int_equal(watch_config_finish(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "192.0.2.1 is not a loopback address"));
	watch_config_free(&c);
	/* a CR LF in an FTP password would add a command */
	watch_config_init(&c);
	assert_int_equal(watch_config_add_url(&c, "ftp://a:b%0d%0aDELE%20x@127.0.0.1/", err, sizeof(err)), 0);
	assert_int_equal(watch_config_finish(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "the FTP user or password holds a control byte"));
	watch_config_free(&c);
	/* two of one name */
	watch_config_init(&c);
	assert_int_equal(watch_config_add_url(&c, "tcp://127.0.0.1:1", err, sizeof(err)), 0);
	assert_int_equal(watch_config_add_url(&c, "tcp://127.0.0.1:1", err, sizeof(err)), 0);
	assert_int_equal(watch_config_finish(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "two targets named \"tcp://127.0.0.1:1\""));
	watch_config_free(&c);
}

/* ---- the config file ---- */

struct cfg_row {
	const char *text;
	int ok;
	const char *why;
};

static const struct cfg_row cfg_rows[] = {
        {"{\"targets\": [{\"url\": \"tcp://127.0.0.1:1\", \"interval\": \"1.5s\", \"retries\": 4}]}", 1,
         NULL},
        {"{\"targets\": [{\"name\": \"n\", \"cmd\": [\"/bin/true\", \"x\"], \"timeout\": 2}]}", 1, NULL},
        {"{\"targets\": [{\"url\": \"http://127.0.0.1/\", \"status\": [200, \"3xx\", \"400-404\"]}]}", 1,
         NULL},
        {"{\"targets\": []}", 1, NULL},
        {"{\"targets\": [{\"url\": \"tcp://127.0.0.1:1\"},]}", 0, "malformed JSON at line 1, column"},
        {"{\n\n  \"targets\": [\n   x]}", 0, "malformed JSON at line 4, column 4"},
        {"{\"targets\": [], \"targets\": []}", 0, "malformed JSON"},
        {"{\"target\": []}", 0, "unknown key \"target\" at the top"},
        {"[]", 0, "want an object with a \"targets\" array"},
        {"{\"targets\": [1]}", 0, "targets[0]: a target is an object"},
        {"{\"targets\": [{\"url\": 1}]}", 0, "\"url\" is a string"},
        {"{\"targets\": [{\"name\": \"\", \"url\": \"tcp://127.0.0.1:1\"}]}", 0, "non-empty string"},
        {"{\"targets\": [{\"url\": \"tcp://127.0.0.1:1\", \"cmd\": \"true\"}]}", 0,
         "either \"url\" or \"cmd\""},
        {"{\"targets\": [{\"cmd\": [\"a\", 2]}]}", 0, "cmd[1] must be a string"},
        {"{\"targets\": [{\"url\": \"tcp://127.0.0.1:1\", \"timeout\": \"9h\"}]}", 0,
         "timeout: \"9h\": more than"},
        {"{\"targets\": [{\"url\": \"udp://127.0.0.1:1\", \"login\": true}]}", 0,
         "\"login\" does not apply to a udp"},
        {"{\"targets\": [{\"url\": \"http://127.0.0.1/\", \"status\": []}]}", 0, "status takes 1-8 values"},
        {"{\"targets\": [{\"url\": \"http://127.0.0.1/\", \"status\": \"6xx\"}]}", 0, "status: want a code"},
        {"{\"targets\": [{\"url\": \"http://127.0.0.1/\", \"json\": {\"path\": \"a\", \"x\": 1}}]}", 0,
         "json is"},
        {"{\"targets\": [{\"url\": \"ftp://127.0.0.1/\", \"login\": 1}]}", 0, "login is true or false"},
};

static void test_config(void **state)
{
	for (size_t i = 0; i < sizeof(cfg_rows) / sizeof(cfg_rows[0]); i++) {
		const struct cfg_row *r = &cfg_rows[i];
		struct watch_config c;
		char err[512] = "";
		watch_config_init(&c);
		int rc = watch_config_parse(&c, r->text, strlen(r->text), "w.json", err, sizeof(err));
		if ((rc == 0) != r->ok || (!r->ok && !strstr(err, r->why))) {
			print_error("row %zu: rc %d, err '%s'\n", i, rc, err);
			fail();
		}
		if (!r->ok)
			assert_int_equal(c.ntargets, 0);
		watch_config_free(&c);
	}
	struct watch_config c;
	char err[256];
	watch_config_init(&c);
	const char *t =
	        "{\"targets\": [{\"url\": \"http://127.0.0.1/\", \"status\": [204, \"3xx\"], \"json\": "
	        "{\"path\": \"a.b\", \"equals\": {\"k\": [1, true]}}, \"max_latency\": 0.25}]}";
	assert_int_equal(watch_config_parse(&c, t, strlen(t), "w.json", err, sizeof(err)), 0);
	assert_int_equal(c.targets[0].nstatus, 2);
	assert_true(watch_status_ok(&c.targets[0], 204) && watch_status_ok(&c.targets[0], 399));
	assert_false(watch_status_ok(&c.targets[0], 200));
	assert_string_equal(c.targets[0].json_equals, "{\"k\":[1,true]}");
	assert_int_equal(c.targets[0].max_latency_ms, 250);
	watch_config_free(&c);
}

/* ---- FTP replies ---- */

struct ftp_row {
	const char *in;
	int rc, code;
	size_t len;
};

static const struct ftp_row ftp_rows[] = {
        {"220 ready\r\n", 1, 220, 11},
        {"220 ready\n", 1, 220, 10},
        {"220-Welcome\r\n220-more\r\n220 end\r\n", 1, 220, 32},
        {"220-Welcome\r\n 221 not the end\r\n220 end\r\nleft", 1, 220, 40},
        {"230 ok\r\n331 next\r\n", 1, 230, 8},
        {"220-a\r\n230 b\r\n", 0, 0, 0},
        {"220 no end", 0, 0, 0},
        {"22", 0, 0, 0},
        {"HTTP/1.1 400 Bad\r\n", -1, 0, 0},
        {"2200 x\r\n", -1, 0, 0},
        {"x", -1, 0, 0},
};

static void test_ftp_replies(void **state)
{
	for (size_t i = 0; i < sizeof(ftp_rows) / sizeof(ftp_rows[0]); i++) {
		const struct ftp_row *r = &ftp_rows[i];
		int code = 0;
		size_t len = 0, n = strlen(r->in);
		int rc = watch_ftp_reply(r->in, n, &code, &len);
		if (rc != r->rc || (rc == 1 && (code != r->code || len != r->len))) {
			print_error("row %zu: rc %d code %d len %zu\n", i, rc, code, len);
			fail();
		}
		/* Byte by byte: every prefix shorter than the reply needs more (or is refused
		 * as early as the bytes allow). */
		if (rc == 1) {
			for (size_t k = 0; k < r->len; k++)
				assert_int_equal(watch_ftp_reply(r->in, k, &code, &len), 0);
		}
	}
}

/* ---- JSON fields ---- */

struct json_row {
	const char *body, *path, *want;
	int ok;
	const char *why;
};

static const struct json_row json_rows[] = {
        {"{\"status\":\"ok\"}", "status", "\"ok\"", 1, NULL},
        {"{\"status\":\"ok\"}", "$.status", "\"ok\"", 1, NULL},
        {"{\"a\":{\"b\":[{\"c\":3}]}}", "a.b[0].c", "3", 1, NULL},
        {"{\"a\":{\"b\":[{\"c\":3}]}}", "a.b.0.c", "3.0", 1, NULL},
        {"{\"a\":[1,2]}", "a[1]", NULL, 1, NULL},
        {"[10, 20]", "[1]", "20", 1, NULL},
        {"{\"up\":true}", "up", "true", 1, NULL},
        {"{\"status\":\"down\"}", "status", "\"ok\"", 0, "status is \"down\", want \"ok\""},
        {"{\"a\":{}}", "a.b", NULL, 0, "the JSON body has no a.b (b missing)"},
        {"{\"a\":[1]}", "a[5]", NULL, 0, "(5 missing)"},
        {"{\"a\":[1]}", "a[0", NULL, 0, "malformed path"},
        {"not json", "a", NULL, 0, "the body is not JSON: "},
        {"{\"a\":1", "a", NULL, 0, "at line 1 column"},
};

static void test_json_checks(void **state)
{
	for (size_t i = 0; i < sizeof(json_rows) / sizeof(json_rows[0]); i++) {
		const struct json_row *r = &json_rows[i];
		char why[WATCH_DETAIL_MAX] = "";
		int ok = watch_json_check(r->body, strlen(r->body), r->path, r->want, why, sizeof(why));
		if (ok != r->ok || (!ok && !strstr(why, r->why))) {
			print_error("row %zu: ok %d why '%s'\n", i, ok, why);
			fail();
		}
	}
}

/* ---- statistics ---- */

#define MIN_MS  60000ull
#define HOUR_MS 3600000ull

static void test_stats_windows(void **state)
{
	struct watch_stats *s = calloc(1, sizeof(*s));
	struct hist *h = hist_new();
	uint64_t now = 1000 * HOUR_MS + 30 * MIN_MS;    /* half past an hour */
	assert_true(watch_stats_uptime(s, now, 0) < 0); /* nothing yet */
	/* 3 days ago: 10 bad; 2 hours ago: 10 good; the last 10 minutes: 9 good, 1 bad */
	for (int i = 0; i < 10; i++) {
		watch_stats_add(s, now - 72 * HOUR_MS + (uint64_t)i * 1000, 0, 0);
		watch_stats_add(s, now - 2 * HOUR_MS + (uint64_t)i * 1000, 1, 1000);
		watch_stats_add(s, now - 10 * MIN_MS + (uint64_t)i * MIN_MS, i != 3,
		                2000 + (uint64_t)i * 100);
	}
	assert_true(watch_stats_uptime(s, now, 0) == 0.9);
	assert_true(watch_stats_uptime(s, now, 1) == 19.0 / 20);
	assert_true(watch_stats_uptime(s, now, 2) == 19.0 / 30);
	/* the hour's percentiles: the 9 good probes of the last 10 minutes */
	uint64_t p50, p95;
	assert_int_equal(watch_stats_pcts(s, now, h, &p50, &p95), 9);
	/* the 5th and 9th of 2000, 2100, 2200, 2400 ... 2900, within the histogram's 0.4% */
	assert_in_range(p50, 2490, 2510);
	assert_in_range(p95, 2888, 2912);
	/* the scratch histogram is empty again */
	assert_int_equal(h->count, 0);
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		assert_int_equal(h->counts[i], 0);
	/* the sparkline: the last ten points, one failure marked */
	double lat[WATCH_SPARK_POINTS], fail_[WATCH_SPARK_POINTS];
	watch_stats_spark(s, now, lat, fail_);
	assert_true(lat[0] < 0 && fail_[0] < 0);
	assert_true(lat[WATCH_SPARK_POINTS - 11] == 2000 && fail_[WATCH_SPARK_POINTS - 11] == 0);
	assert_true(lat[WATCH_SPARK_POINTS - 8] < 0 && fail_[WATCH_SPARK_POINTS - 8] == 1);
	/* a clock set back a day: old buckets are not counted as the present */
	assert_true(watch_stats_uptime(s, now - 24 * HOUR_MS, 0) < 0);
	free(h);
	free(s);
}

static void test_html_escape(void **state)
{
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(text_html(&b, "a<b>&\"c'"), 0);
	assert_int_equal(text_html(&b, ""), 0);
	assert_int_equal(text_html(&b, "plain"), 0);
	assert_int_equal(buf_used(&b), strlen("a&lt;b&gt;&amp;&quot;c&#39;plain"));
	assert_memory_equal(buf_start(&b), "a&lt;b&gt;&amp;&quot;c&#39;plain", buf_used(&b));
	buf_free(&b);
	buf_init(&b, 4);
	assert_int_equal(text_html(&b, "<<"), -1); /* the limit is said */
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_urls),        cmocka_unit_test(test_finish),
	        cmocka_unit_test(test_config),      cmocka_unit_test(test_ftp_replies),
	        cmocka_unit_test(test_json_checks), cmocka_unit_test(test_stats_windows),
	        cmocka_unit_test(test_html_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
