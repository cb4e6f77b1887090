/* test_isolate.c - tables: isolate's forward specs, and which control nsprobe blames for a step. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/net.h"
#include "diag/nsprobe.h"
#include "isolate/isolate.h"

/* ---- -p and --out ---- */

struct spec_row {
	enum isolate_dir dir;
	const char *in;
	const char *host;  /* isolate_end_text of the host end ("127.0.0.1:8080"), NULL: error */
	const char *inner; /* ... of the inside end */
	const char *why;   /* a substring of the error */
};

static const struct spec_row spec_rows[] = {
        {ISOLATE_IN, "8080", "127.0.0.1:8080", "127.0.0.1:8080", NULL},
        {ISOLATE_IN, "0:62893", "127.0.0.1:0", "127.0.0.1:62893", NULL},
        {ISOLATE_IN, "8080:80", "127.0.0.1:8080", "127.0.0.1:80", NULL},
        {ISOLATE_IN, "127.0.0.2:8080", "127.0.0.2:8080", "127.0.0.1:8080", NULL},
        {ISOLATE_IN, "127.0.0.2:0:80", "127.0.0.2:0", "127.0.0.1:80", NULL},
        {ISOLATE_IN, "localhost:9000:90", "127.0.0.1:9000", "127.0.0.1:90", NULL},
        {ISOLATE_IN, "[::1]:8080", "[::1]:8080", "[::1]:8080", NULL},
        {ISOLATE_IN, "[::1]:0:443", "[::1]:0", "[::1]:443", NULL},
        {ISOLATE_IN, "0", NULL, NULL, "host port 0 picks a free port"},
        {ISOLATE_IN, "127.0.0.1:0", NULL, NULL, "host port 0 picks a free port"},
        {ISOLATE_IN, "8080:0", NULL, NULL, "inner port '0': less than 1"},
        {ISOLATE_IN, "65536", NULL, NULL, "more than 65535"},
        {ISOLATE_IN, "abc", NULL, NULL, "host port 'abc'"},
        {ISOLATE_IN, "", NULL, NULL, "expected [ADDR:]HOSTPORT[:INNERPORT]"},
        {ISOLATE_IN, "1:2:3:4", NULL, NULL, "too many ':'"},
        {ISOLATE_IN, "::1:80", NULL, NULL, "too many ':'"},
        {ISOLATE_IN, "[::1]80", NULL, NULL, "written [::1]:PORT"},
        {ISOLATE_IN, "[::1:80", NULL, NULL, "written [::1]:PORT"},
        {ISOLATE_IN, "10.0.0.1:80", NULL, NULL, "not a loopback address"},
        {ISOLATE_IN, "[::]:80", NULL, NULL, "not a loopback address"},
        {ISOLATE_IN, "0.0.0.0:80", NULL, NULL, "not a loopback address"},
        {ISOLATE_IN, "example.com:80", NULL, NULL, "not an IP address"},
        {ISOLATE_IN, "8080-8090:80", NULL, NULL, "a range forwards each port to the same port inside"},
        {ISOLATE_IN, "127.0.0.1:8080-8090:80", NULL, NULL, "it takes no inner port: -p 127.0.0.1:8080-8090"},
        {ISOLATE_IN, "[::ffff:127.0.0.1]:8080", NULL, NULL, "an IPv4 address in IPv6 form"},
        {ISOLATE_IN, "[::1]:8000-8001:80", NULL, NULL, "it takes no inner port: -p [::1]:8000-8001"},
        {ISOLATE_IN, "8080:", NULL, NULL, "inner port ''"},
        {ISOLATE_IN, "123456789012345678901234567890123456789012345678901234567890123456789", NULL, NULL,
         "expected"},
        {ISOLATE_OUT, "5432", "127.0.0.1:5432", "127.0.0.1:5432", NULL},
        {ISOLATE_OUT, "127.0.0.3:5432", "127.0.0.3:5432", "127.0.0.3:5432", NULL},
        {ISOLATE_OUT, "[::1]:6379", "[::1]:6379", "[::1]:6379", NULL},
        {ISOLATE_OUT, "0", NULL, NULL, "port '0': less than 1"},
        {ISOLATE_OUT, "5432:80", NULL, NULL, "expected [ADDR:]PORT"},
        {ISOLATE_OUT, "192.168.1.1:5432", NULL, NULL, "not a loopback address"},
};

static void test_specs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof spec_rows / sizeof spec_rows[0]; i++) {
		const struct spec_row *r = &spec_rows[i];
		struct isolate_config c;
		char err[256] = "", h[64], in[64];
		isolate_config_init(&c);
		int rc = isolate_config_add(&c, r->dir, r->in, err, sizeof err);
		if (!r->host) {
			if (rc != -1 || !strstr(err, r->why))
				fail_msg("row %zu '%s': want an error with '%s', got rc %d '%s'", i, r->in,
				         r->why, rc, err);
			if (c.nfwd != 0)
				fail_msg("row %zu '%s': a failed spec was added", i, r->in);
			isolate_config_free(&c);
			continue;
		}
		if (rc != 0)
			fail_msg("row %zu '%s': %s", i, r->in, err);
		isolate_end_text(&c.fwd[0].host, h, sizeof h);
		isolate_end_text(&c.fwd[0].inner, in, sizeof in);
		if (strcmp(h, r->host) || strcmp(in, r->inner))
			fail_msg("row %zu '%s': got %s -> %s, want %s -> %s", i, r->in, h, in, r->host,
			         r->inner);
		if (c.fwd[0].dir != r->dir || c.fwd[0].fd != -1 || strcmp(c.fwd[0].spec, r->in))
			fail_msg("row %zu '%s': dir, fd or spec not kept", i, r->in);
		isolate_config_free(&c);
	}
}

/* A host port given twice is refused by the second spec, naming the first; a free port
 * (0) may come any number of times, and one port on two addresses is two forwards. */
static void test_given_twice(void **state)
{
	static const struct {
		enum isolate_dir d1;
		const char *a;
		enum isolate_dir d2;
		const char *b;
		const char *why; /* NULL: both are taken */
	} rows[] = {
	        {ISOLATE_IN, "8091", ISOLATE_IN, "8091", "host port 8091 is already given by '8091'"},
	        {ISOLATE_IN, "8090:80", ISOLATE_IN, "8090:81",
	         "host port 8090 is already given by '8090:80'"},
	        {ISOLATE_IN, "50000-50002", ISOLATE_IN, "50001", "host port 50001 is already given"},
	        {ISOLATE_IN, "50001", ISOLATE_IN, "50000-50002",
	         "host port 50001 is already given by '50001'"},
	        {ISOLATE_IN, "[::1]:8080", ISOLATE_IN, "[::1]:8080:81", "already given by '[::1]:8080'"},
	        {ISOLATE_OUT, "5432", ISOLATE_OUT, "5432", "--out port 5432 is already given"},
	        {ISOLATE_IN, "0:80", ISOLATE_IN, "0:80", NULL},
	        {ISOLATE_IN, "127.0.0.2:8091", ISOLATE_IN, "8091", NULL},
	        {ISOLATE_IN, "8091", ISOLATE_IN, "[::1]:8091", NULL},
	        {ISOLATE_IN, "5432", ISOLATE_OUT, "5432",
	         "-p '5432' would reach --out '5432' inside, which leads back out to it: a loop"},
	        {ISOLATE_OUT, "5432", ISOLATE_IN, "5432:5432",
	         "-p '5432:5432' would reach --out '5432' inside"},
	        {ISOLATE_IN, "9000:5432", ISOLATE_OUT, "5432",
	         NULL},                                             /* through to the host's 5432: no loop */
	        {ISOLATE_IN, "5432:80", ISOLATE_OUT, "5432", NULL}, /* different ports inside */
	};
	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct isolate_config c;
		char err[256] = "";
		isolate_config_init(&c);
		assert_int_equal(isolate_config_add(&c, rows[i].d1, rows[i].a, err, sizeof err), 0);
		size_t n = c.nfwd;
		int rc = isolate_config_add(&c, rows[i].d2, rows[i].b, err, sizeof err);
		if (!rows[i].why) {
			if (rc != 0)
				fail_msg("row %zu: '%s' then '%s': %s", i, rows[i].a, rows[i].b, err);
			isolate_config_free(&c);
			continue;
		}
		if (rc != -1 || !strstr(err, rows[i].why) || c.nfwd != n)
			fail_msg("row %zu: '%s' then '%s': want '%s', got rc %d '%s', %zu forwards", i,
			         rows[i].a, rows[i].b, rows[i].why, rc, err, c.nfwd);
		isolate_config_free(&c);
	}
}

/* The limit: ISOLATE_MAX_FORWARDS, and the next one is refused by name. */
static void test_forward_limit(void **state)
{
	struct isolate_config c;
	char err[256];
	(void)state;
	isolate_config_init(&c);
	assert_int_equal(c.max_conns, ISOLATE_MAX_CONNS);
	for (int i = 0; i < ISOLATE_MAX_FORWARDS; i++) {
		char spec[16];
		snprintf(spec, sizeof spec, "%d", 1234 + i);
		assert_int_equal(
		        isolate_config_add(&c, i % 2 ? ISOLATE_OUT : ISOLATE_IN, spec, err, sizeof err), 0);
	}
	assert_int_equal(isolate_config_add(&c, ISOLATE_IN, "4321", err, sizeof err), -1);
	assert_non_null(strstr(err, "more than 32 forwards"));
	assert_int_equal(c.nfwd, ISOLATE_MAX_FORWARDS);
	isolate_config_free(&c);
	/* a range that would pass the limit is refused whole, and takes no room */
	isolate_config_init(&c);
	assert_int_equal(isolate_config_add(&c, ISOLATE_IN, "2000-2029", err, sizeof err), 0);
	assert_int_equal(isolate_config_add(&c, ISOLATE_IN, "3000-3002", err, sizeof err), -1);
	assert_non_null(strstr(err, "at most 32 forwards"));
	assert_int_equal(isolate_config_add(&c, ISOLATE_IN, "3000-3001", err, sizeof err), 0);
	assert_int_equal(c.nfwd, ISOLATE_MAX_FORWARDS);
	assert_int_equal(c.fwd[31].host.ss_family, AF_INET);
	isolate_config_free(&c);
}

/* ---- which control blocked which step ---- */

struct explain_row {
	const char *name;
	struct nsprobe_controls c;
	enum netns_step step;
	int err;
	int userns;
	const char *control; /* "" : none named */
	long value;
	const char *fix; /* substring */
};

#define CTL(unpriv, maxuser, maxnet, maxpid, aa, sec, uid, cap)                                           \
	{                                                                                                 \
		.unprivileged_userns_clone = unpriv, .max_user_namespaces = maxuser,                      \
		.max_net_namespaces = maxnet, .max_pid_namespaces = maxpid, .max_mnt_namespaces = 1000,   \
		.apparmor_restrict = aa, .seccomp = sec, .euid = uid, .cap_sys_admin = cap, .dumpable = 1 \
	}
#define A NSPROBE_ABSENT

static const struct explain_row explain_rows[] = {
        {"works", CTL(A, 1000, 1000, 1000, A, 0, 1000, 0), NETNS_OK, 0, 1, "", A, ""},
        {"max_user 0", CTL(A, 0, 1000, 1000, A, 0, 1000, 0), NETNS_USERNS, ENOSPC, 0,
         "user.max_user_namespaces", 0, "sysctl -w user.max_user_namespaces=15000"},
        {"max_user used up", CTL(A, 3, 1000, 1000, A, 0, 1000, 0), NETNS_USERNS, ENOSPC, 0,
         "user.max_user_namespaces", 3, "user.max_user_namespaces="},
        {"debian switch", CTL(0, 1000, 1000, 1000, A, 0, 1000, 0), NETNS_USERNS, EPERM, 0,
         "kernel.unprivileged_userns_clone", 0, "sysctl -w kernel.unprivileged_userns_clone=1"},
        {"ubuntu unshare", CTL(A, 1000, 1000, 1000, 1, 0, 1000, 0), NETNS_USERNS, EPERM, 0,
         "kernel.apparmor_restrict_unprivileged_userns", 1, "apparmor_restrict_unprivileged_userns=0"},
        {"ubuntu uid_map", CTL(A, 1000, 1000, 1000, 1, 0, 1000, 0), NETNS_UIDMAP, EPERM, 1,
         "kernel.apparmor_restrict_unprivileged_userns", 1, "AppArmor profile"},
        {"ubuntu rtnetlink", CTL(A, 1000, 1000, 1000, 1, 0, 1000, 0), NETNS_LO, EPERM, 1,
         "kernel.apparmor_restrict_unprivileged_userns", 1, "apparmor_restrict_unprivileged_userns=0"},
        {"apparmor off is not blamed", CTL(A, 1000, 1000, 1000, 0, 0, 1000, 0), NETNS_LO, EPERM, 1, "", A,
         "loopkit isolate --check --json"},
        {"max_net 0", CTL(A, 1000, 0, 1000, A, 0, 0, 1), NETNS_NETNS, ENOSPC, 0, "user.max_net_namespaces", 0,
         "sysctl -w user.max_net_namespaces=15000"},
        {"max_pid 0", CTL(A, 1000, 1000, 0, A, 0, 0, 1), NETNS_PIDNS, ENOSPC, 0, "user.max_pid_namespaces", 0,
         "sysctl -w user.max_pid_namespaces=15000"},
        {"seccomp as user", CTL(A, 1000, 1000, 1000, A, 2, 1000, 0), NETNS_USERNS, EPERM, 0, "seccomp", 2,
         "--security-opt seccomp=unconfined"},
        {"seccomp as root", CTL(A, 1000, 1000, 1000, A, 2, 0, 1), NETNS_NETNS, EPERM, 0, "seccomp", 2,
         "--security-opt seccomp=unconfined"},
        {"seccomp on clone", CTL(A, 1000, 1000, 1000, A, 2, 0, 1), NETNS_PIDNS, EPERM, 0, "seccomp", 2,
         "--security-opt seccomp=unconfined"},
        {"root without the capability", CTL(A, 1000, 1000, 1000, A, 0, 0, 0), NETNS_USERNS, EPERM, 0,
         "CAP_SYS_ADMIN", A, "--cap-add SYS_ADMIN"},
        {"nested too deep", CTL(A, 1000, 1000, 1000, A, 0, 1000, 0), NETNS_USERNS, EUSERS, 0,
         "user namespace depth", A, "fewer nested namespaces"},
        {"unknown", CTL(A, 1000, 1000, 1000, A, 0, 1000, 0), NETNS_FORK, EAGAIN, 0, "", A, "docs/isolate.md"},
};

static void test_explain(void **state)
{
	(void)state;
	{
		/* An unreadable executable: non-dumpable, its own maps refused. */
		struct nsprobe_controls c = CTL(A, 1000, 1000, 1000, A, 0, 1000, 0);
		struct netns_state st = {.step = NETNS_SETGROUPS, .err = EACCES, .userns = 1};
		struct nsprobe_verdict v;
		c.dumpable = 0;
		nsprobe_explain(&c, &st, &v);
		assert_string_equal(v.control, "dumpable");
		assert_int_equal(v.value, 0);
		assert_non_null(strstr(v.fix, "chmod a+r"));
		c.dumpable = 1; /* dumpable: not the cause */
		nsprobe_explain(&c, &st, &v);
		assert_string_equal(v.control, "");
	}
	for (size_t i = 0; i < sizeof explain_rows / sizeof explain_rows[0]; i++) {
		const struct explain_row *r = &explain_rows[i];
		struct netns_state st = {.step = r->step, .err = r->err, .userns = r->userns};
		struct nsprobe_verdict v;
		nsprobe_explain(&r->c, &st, &v);
		if (v.works != (r->step == NETNS_OK))
			fail_msg("%s: works %d", r->name, v.works);
		if (strcmp(v.control, r->control) || v.value != r->value)
			fail_msg("%s: blamed '%s' = %ld, want '%s' = %ld", r->name, v.control, v.value,
			         r->control, r->value);
		if (!strstr(v.fix, r->fix))
			fail_msg("%s: fix '%s' lacks '%s'", r->name, v.fix, r->fix);
		if (r->step != NETNS_OK &&
		    (!strstr(v.cause, netns_step_name(r->step)) || !strstr(v.cause, strerror(r->err))))
			fail_msg("%s: cause '%s' names neither the step nor the error", r->name, v.cause);
	}
}

/* The renderings agree: the JSON is valid and names what the text names. */
static void test_renderings(void **state)
{
	struct nsprobe p;
	struct buf b;
	char text[4096];
	(void)state;
	memset(&p, 0, sizeof p);
	p.c = (struct nsprobe_controls)CTL(A, 0, 1000, 1000, A, 0, 1000, 0);
	p.st.step = NETNS_USERNS;
	p.st.err = ENOSPC;
	nsprobe_explain(&p.c, &p.st, &p.v);
	buf_init(&b, 1 << 16);
	assert_int_equal(nsprobe_json(&b, &p), 0);
	assert_true(json_valid(buf_start(&b), buf_used(&b)));
	assert_int_equal(buf_append(&b, "", 1), 0); /* a NUL: strstr below */
	const char *js = buf_start(&b);
	assert_non_null(strstr(js, "\"blocked_by\":\"user.max_user_namespaces\""));
	assert_non_null(strstr(js, "\"errno\":\"ENOSPC\""));
	assert_non_null(strstr(js, "\"kernel.unprivileged_userns_clone\":null"));
	FILE *f = fmemopen(text, sizeof text, "w");
	nsprobe_print(f, &p);
	fclose(f);
	assert_non_null(strstr(text, "isolation does NOT work here: unshare(CLONE_NEWUSER)"));
	assert_non_null(strstr(text, "blocked by: user.max_user_namespaces = 0"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_specs),       cmocka_unit_test(test_forward_limit),
	        cmocka_unit_test(test_given_twice), cmocka_unit_test(test_explain),
	        cmocka_unit_test(test_renderings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
