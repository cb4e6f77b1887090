/* test_cmd.c - the flag-table framework (src/cmd/cmd.c) on a verb of its own: every kind,
 * every way of giving a value, defaults, positionals, subcommands, errors and hints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmd/cmd.h"

struct t_args {
	int flag, other;
	uint8_t small;
	uint16_t port;
	uint64_t size;
	unsigned ms;
	double secs;
	const char *name, *dir;
	int mode;
	struct strparse_range range;
	struct cmd_list list;
	char called[16];
	struct cmd_rest rest;
};
#define AT(f) CMD_AT(struct t_args, f)

static int set_called(void *p, const char *val, char *err, size_t errlen)
{
	if (!strcmp(val, "bad")) {
		snprintf(err, errlen, "the setter says no");
		return -1;
	}
	snprintf(((struct t_args *)p)->called, sizeof((struct t_args *)p)->called, "%s", val);
	return 0;
}

static const char *const modes[] = {"alpha", "beta", "gamma", NULL};

/* clang-format off */
static const struct cmd_flag t_flags[] = {
	{ "DIR", 0, NULL, ".", "a directory", CMD_STR, AT(dir), .attr = CMD_ARG },
	{ "flag", 'f', NULL, NULL, "a switch", CMD_SWITCH, AT(flag) },
	{ "other", 'o', NULL, NULL, "another switch", CMD_SWITCH, AT(other) },
	{ "small", 0, "N", "7", "into one byte; no max given", CMD_UINT, AT(small) },
	{ "port", 'p', "N", "80", "a port", CMD_UINT, AT(port), .max = 65535 },
	{ "size", 0, "SIZE", "1K", "a size", CMD_SIZE, AT(size), .max = 1 << 20 },
	{ "wait", 'W', "SECS", "1.5", "milliseconds", CMD_MS, AT(ms), .min = 1, .max = 60000 },
	{ "secs", 0, "SECS", "0.25", "seconds", CMD_SECS, AT(secs), .max = 3600000 },
	{ "name", 'n', "NAME", "anon", "text", CMD_STR, AT(name) },
	{ "mode", 'm', NULL, "beta", "an enum", CMD_ENUM, AT(mode), .choices = modes },
	{ "range", 0, "A-B", "10-20", "a range", CMD_RANGE, AT(range), .min = 1, .max = 100 },
	{ "item", 'I', "X", NULL, "repeatable", CMD_LIST, AT(list) },
	{ "call", 0, "V", NULL, "a setter", CMD_CALL, .set = set_called },
	{ "secret", 0, "S", NULL, "hidden", CMD_STR, AT(name), .attr = CMD_HIDDEN },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint t_hints[] = {
        {"-t", "say -W for {} here"},
        {CMD_HINT_NUMBER, "numbers go to --port {}"},
        {0},
};

static struct t_args got; /* what the last run saw */
static int runs;

static int t_run(void *p)
{
	got = *(struct t_args *)p;
	runs++;
	return 42;
}

static const struct cmd_verb t_leaf = {
        .name = "leaf",
        .summary = "a leaf",
        .about = "A leaf.\n",
        .flags = t_flags,
        .size = sizeof(struct t_args),
        .run = t_run,
        .hints = t_hints,
};
static const struct cmd_flag one_arg[] = {
        {"N", 0, NULL, NULL, "a number", CMD_UINT, AT(port), .max = 9, .attr = CMD_ARG | CMD_NEED},
        {0},
};
static const struct cmd_verb t_need = {
        .name = "need",
        .summary = "needs N",
        .flags = one_arg,
        .size = sizeof(struct t_args),
        .run = t_run,
};
static const struct cmd_flag rest_flags[] = {
        {"CMD", 0, NULL, NULL, "a command", CMD_STR, AT(rest), .attr = CMD_ARG | CMD_REST},
        {"flag", 'f', NULL, NULL, "a switch", CMD_SWITCH, AT(flag)},
        {0},
};
static const struct cmd_verb t_exec = {
        .name = "exec",
        .summary = "runs CMD",
        .flags = rest_flags,
        .size = sizeof(struct t_args),
        .run = t_run,
};
static const struct cmd_verb *const t_subs[] = {&t_leaf, &t_need, &t_exec, NULL};
static const struct cmd_verb t_root = {
        .name = "tool",
        .summary = "the root",
        .about = "Root.\n",
        .subs = t_subs,
        .sub_noun = "mode",
};

/* Runs `tool ARGS...` with stdout and stderr captured; (const char *)NULL ends ARGS (a bare
 * NULL may be an int, which a variadic call does not convert). */
static char out[8192], err[8192];
static int tool(const char *first, ...)
{
	char *argv[64] = {"tool"};
	int argc = 1;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	FILE *o = tmpfile(), *e = tmpfile();
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	dup2(fileno(o), 1);
	dup2(fileno(e), 2);
	memset(&got, 0, sizeof got);
	int rc = cmd_main(&t_root, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	size_t n;
	rewind(o);
	n = fread(out, 1, sizeof out - 1, o);
	out[n] = '\0';
	rewind(e);
	n = fread(err, 1, sizeof err - 1, e);
	err[n] = '\0';
	fclose(o);
	fclose(e);
	return rc;
}

#define ERR_HAS(s)                                                    \
	do {                                                          \
		if (!strstr(err, s))                                  \
			fail_msg("stderr lacks \"%s\":\n%s", s, err); \
	} while (0)

static void test_defaults(void **state)
{
	assert_int_equal(tool("leaf", (const char *)NULL), 42);
	assert_string_equal(got.dir, ".");
	assert_int_equal(got.flag, 0);
	assert_int_equal(got.small, 7);
	assert_int_equal(got.port, 80);
	assert_int_equal(got.size, 1024);
	assert_int_equal(got.ms, 1500);
	assert_true(got.secs == 0.25);
	assert_string_equal(got.name, "anon");
	assert_int_equal(got.mode, 1);
	assert_int_equal(got.range.lo, 10);
	assert_int_equal(got.range.hi, 20);
	assert_int_equal(got.list.n, 0);
	assert_string_equal(err, "");
}

static void test_every_way_to_give_a_value(void **state)
{
	const char *forms[][3] = {
	        {"-p", "8080", NULL},     {"-p8080", NULL, NULL},      {"-p=8080", NULL, NULL},
	        {"--port", "8080", NULL}, {"--port=8080", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		assert_int_equal(tool("leaf", forms[i][0], forms[i][1], (const char *)NULL), 42);
		if (got.port != 8080)
			fail_msg("form %zu (%s %s): port %u", i, forms[i][0], forms[i][1] ? forms[i][1] : "",
			         got.port);
	}
	/* clustered switches, then a letter that takes the rest */
	assert_int_equal(tool("leaf", "-fop99", (const char *)NULL), 42);
	assert_true(got.flag && got.other && got.port == 99);
	assert_int_equal(tool("leaf", "-fo", "-n", "x", (const char *)NULL), 42);
	assert_true(got.flag && got.other && !strcmp(got.name, "x"));
	/* an empty value is a value */
	assert_int_equal(tool("leaf", "--name=", (const char *)NULL), 42);
	assert_string_equal(got.name, "");
	/* the last one wins */
	assert_int_equal(tool("leaf", "-p1", "-p2", (const char *)NULL), 42);
	assert_int_equal(got.port, 2);
}

static void test_kinds(void **state)
{
	int krc = tool("leaf", "--size", "64K", "-W", "30s", "--secs", "500ms", "-m", "gamma", "--range", "5",
	               "-I", "a", "--item=b", "-Ic", "--call", "hello", "--small", "255", (const char *)NULL);
	if (krc != 42)
		fail_msg("rc %d: %s", krc, err);
	assert_int_equal(got.size, 65536);
	assert_int_equal(got.ms, 30000);
	assert_true(got.secs == 0.5);
	assert_int_equal(got.mode, 2);
	assert_true(got.range.lo == 5 && got.range.hi == 5);
	assert_int_equal(got.list.n, 3);
	assert_string_equal(got.list.v[2], "c");
	assert_string_equal(got.called, "hello");
	assert_int_equal(got.small, 255);
	/* a field's width bounds it when the row gives no max */
	assert_int_equal(tool("leaf", "--small", "256", (const char *)NULL), 2);
	ERR_HAS("tool leaf: --small 256: more than 255");
	assert_int_equal(tool("leaf", "--call", "bad", (const char *)NULL), 2);
	ERR_HAS("--call bad: the setter says no");
	assert_int_equal(tool("leaf", "-m", "delta", (const char *)NULL), 2);
	ERR_HAS("-m delta: not one of alpha|beta|gamma");
	assert_int_equal(tool("leaf", "-W", "0", (const char *)NULL), 2);
	ERR_HAS("-W 0: less than 1ms");
}

static void test_list_limit(void **state)
{
	char *argv[2 * CMD_LIST_MAX + 8] = {"tool", "leaf"};
	int argc = 2;
	for (int i = 0; i <= CMD_LIST_MAX; i++) {
		argv[argc++] = "-I";
		argv[argc++] = "x";
	}
	FILE *e = tmpfile();
	int se = dup(2);
	dup2(fileno(e), 2);
	int rc = cmd_main(&t_root, argc, argv);
	fflush(stderr);
	dup2(se, 2);
	close(se);
	fclose(e);
	assert_int_equal(rc, 2);
	argc -= 2; /* exactly CMD_LIST_MAX */
	assert_int_equal(cmd_main(&t_root, argc, argv), 42);
	assert_int_equal(got.list.n, CMD_LIST_MAX);
}

static void test_positionals_and_double_dash(void **state)
{
	assert_int_equal(tool("leaf", "-f", "somewhere", (const char *)NULL), 42);
	assert_string_equal(got.dir, "somewhere");
	assert_int_equal(tool("leaf", "--", "-f", (const char *)NULL), 42);
	assert_string_equal(got.dir, "-f");
	assert_int_equal(got.flag, 0);
	assert_int_equal(tool("leaf", "-", (const char *)NULL), 42);
	assert_string_equal(got.dir, "-");
	assert_int_equal(tool("leaf", "a", "b", (const char *)NULL), 2);
	ERR_HAS("tool leaf: unexpected argument 'b'\nusage: tool leaf [DIR] [OPTIONS]");
	assert_int_equal(tool("need", (const char *)NULL), 2);
	ERR_HAS("tool need: which N?");
	assert_int_equal(tool("need", "5", (const char *)NULL), 42);
	assert_int_equal(got.port, 5);
	assert_int_equal(tool("need", "10", (const char *)NULL), 2);
	ERR_HAS("tool need: N 10: more than 9");
}

/* CMD_REST: the first argument that is not an option, and all after it, verbatim. */
static void test_rest(void **state)
{
	(void)state;
	assert_int_equal(tool("exec", "-f", "--", "-ls", "-f", "--flag", (const char *)NULL), 42);
	assert_int_equal(got.flag, 1);
	assert_int_equal(got.rest.argc, 3);
	assert_string_equal(got.rest.argv[0], "-ls");
	assert_string_equal(got.rest.argv[2], "--flag");
	assert_null(got.rest.argv[3]);
	assert_int_equal(tool("exec", "ls", "-f", (const char *)NULL), 42);
	assert_int_equal(got.flag, 0);
	assert_int_equal(got.rest.argc, 2);
	assert_int_equal(tool("exec", "-f", (const char *)NULL), 42);
	assert_int_equal(got.rest.argc, 0);
	assert_int_equal(tool("exec", "--help", (const char *)NULL), 0);
	assert_non_null(strstr(out, "usage: tool exec [OPTIONS] [[--] CMD [ARG...]]"));
}

static void test_errors_and_suggestions(void **state)
{
	int before = runs;
	assert_int_equal(tool("leaf", "--prot", "1", (const char *)NULL), 2);
	ERR_HAS("tool leaf: unknown option --prot; did you mean --port?\nusage: tool leaf [DIR] [OPTIONS]  "
	        "(tool leaf --help for more)\n");
	assert_int_equal(tool("leaf", "--por=3", (const char *)NULL), 2);
	ERR_HAS("unknown option --por; did you mean --port?");
	assert_int_equal(tool("leaf", "--zzzzzz", (const char *)NULL), 2);
	assert_null(strstr(err, "did you mean"));
	assert_int_equal(tool("leaf", "--secre", (const char *)NULL),
	                 2); /* hidden rows are never suggested */
	assert_null(strstr(err, "--secret"));
	assert_int_equal(tool("leaf", "-fx", (const char *)NULL), 2);
	ERR_HAS("unknown option -x");
	assert_int_equal(tool("leaf", "--flag=1", (const char *)NULL), 2);
	ERR_HAS("--flag takes no value");
	assert_int_equal(tool("leaf", "-p", (const char *)NULL), 2);
	ERR_HAS("-p needs a value (N)");
	assert_int_equal(tool("lefa", (const char *)NULL), 2);
	ERR_HAS("tool: unknown mode 'lefa'; did you mean 'leaf'?");
	assert_int_equal(runs, before); /* no run on a usage error */
}

static void test_hints(void **state)
{
	assert_int_equal(tool("leaf", "-t", "5", (const char *)NULL), 2);
	ERR_HAS("tool leaf: unknown option -t: say -W for -t here");
	assert_int_equal(tool("need", "1", "2", (const char *)NULL), 2);
	ERR_HAS("unexpected argument '2'"); /* need has no number hint */
}

static void test_help(void **state)
{
	assert_int_equal(tool("leaf", "--help", (const char *)NULL), 0);
	char help[8192];
	snprintf(help, sizeof help, "%s", out);
	assert_non_null(strstr(help, "usage: tool leaf [DIR] [OPTIONS]\n"));
	assert_non_null(strstr(help, "  -p, --port N                  a port (0-65535; default 80)\n"));
	assert_non_null(strstr(help, "  -m, --mode alpha|beta|gamma   an enum (default beta)\n"));
	assert_non_null(strstr(help, "  -W, --wait SECS               milliseconds (1ms-1m; default 1.5)\n"));
	assert_null(strstr(help, "secret"));
	assert_int_equal(tool("leaf", "-h", (const char *)NULL), 0);
	assert_string_equal(out, help);
	assert_int_equal(tool("leaf", "-fh", (const char *)NULL), 0);
	assert_string_equal(out, help);
	assert_int_equal(tool("help", "leaf", (const char *)NULL), 0);
	assert_string_equal(out, help);
	assert_int_equal(tool("--help", (const char *)NULL), 0);
	assert_non_null(strstr(out, "modes:\n  leaf     a leaf\n  need     needs N\n"));
	assert_int_equal(tool(NULL), 2); /* no mode: the help, on stderr */
	ERR_HAS("usage: tool MODE [OPTIONS]");
}

static void test_render(void **state)
{
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(cmd_render(f, &t_root, CMD_MARKDOWN, "leaf"), 0);
	fclose(f);
	assert_non_null(strstr(buf, "| `-p`, `--port N` | a port (0-65535) | `80` |\n"));
	assert_non_null(strstr(buf, "| `-m`, `--mode alpha\\|beta\\|gamma` | an enum | `beta` |\n"));
	assert_non_null(strstr(buf, "| `DIR` | a directory | `.` |\n"));
	free(buf);
	f = open_memstream(&buf, &len);
	assert_int_equal(cmd_render(f, &t_root, CMD_MAN, "leaf"), 0);
	fclose(f);
	assert_non_null(strstr(
	        buf, ".TP\n\\fB\\-p\\fR, \\fB\\-\\-port\\fR \\fIN\\fR\na port (0-65535; default 80)\n"));
	free(buf);
	f = open_memstream(&buf, &len);
	assert_int_equal(cmd_render(f, &t_root, CMD_MAN, "nosuch"), -1);
	fclose(f);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_every_way_to_give_a_value),
	        cmocka_unit_test(test_kinds),
	        cmocka_unit_test(test_list_limit),
	        cmocka_unit_test(test_positionals_and_double_dash),
	        cmocka_unit_test(test_rest),
	        cmocka_unit_test(test_errors_and_suggestions),
	        cmocka_unit_test(test_hints),
	        cmocka_unit_test(test_help),
	        cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
