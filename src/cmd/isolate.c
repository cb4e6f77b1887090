/* isolate.c - `loopkit isolate`: a command in a private network namespace; ports forwarded. */
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/nsprobe.h"
#include "isolate/isolate.h"

#define ISOLATE_JSON_MAX (64u << 10)

struct isolate_args {
	struct isolate_config cfg;
	struct cmd_rest cmd;
	int json, check;
};
#define AT(f) CMD_AT(struct isolate_args, f)

static void isolate_args_init(void *p)
{
	isolate_config_init(&((struct isolate_args *)p)->cfg);
}

static void isolate_args_fini(void *p)
{
	isolate_config_free(&((struct isolate_args *)p)->cfg);
}

static int set_port(void *p, const char *val, char *err, size_t errlen)
{
	return isolate_config_add(&((struct isolate_args *)p)->cfg, ISOLATE_IN, val, err, errlen);
}

static int set_out(void *p, const char *val, char *err, size_t errlen)
{
	return isolate_config_add(&((struct isolate_args *)p)->cfg, ISOLATE_OUT, val, err, errlen);
}

/* clang-format off */
static const struct cmd_flag isolate_flags[] = {
	{ "CMD", 0, NULL, NULL, "the command to run inside, and its arguments (put -- before it when it starts with -)", CMD_STR, AT(cmd), .attr = CMD_ARG | CMD_REST },
	{ "port", 'p', "[ADDR:]PORT[:INNER]", NULL, "forward a host loopback port to port INNER inside (repeatable; PORT 0: a free port outside the ephemeral range, printed; A-B: each port of the range to itself, as FTP's passive ports need)", CMD_CALL, .set = set_port },
	{ "out", 0, "[ADDR:]PORT", NULL, "let CMD reach the host's loopback service at ADDR:PORT at the same address inside (repeatable)", CMD_CALL, .set = set_out },
	{ "direct", 0, NULL, NULL, "hand each -p forward's host listener to the server inside that binds its inner port: no relay, native speed (the server then holds a host socket: not for untrusted code)", CMD_SWITCH, AT(cfg.direct) },
	{ "max-conns", 0, "N", CMD_STR_OF(ISOLATE_MAX_CONNS), "relayed connections at once; more wait in the listen backlog", CMD_UINT, AT(cfg.max_conns), .min = 1, .max = ISOLATE_CONNS_LIMIT },
	{ "json", 0, NULL, NULL, "print the forwards as one JSON line on stdout before CMD starts (with --check: the probe)", CMD_SWITCH, AT(json) },
	{ "check", 0, NULL, NULL, "only say whether isolation works here, and what blocks it (exit 0 or 1)", CMD_SWITCH, AT(check) },
	{ "quiet", 'q', NULL, NULL, "do not print the forwards (nor, with --direct, each listener handed over) on stderr", CMD_SWITCH, AT(cfg.quiet) },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint isolate_hints[] = {
        {"-t", "forwards are -p [ADDR:]PORT[:INNER] here (pasta's -t)"},
        {"-n", "a private network namespace is what isolate always makes (unshare's -n)"},
        {0},
};

static int emit_json(int rc, struct buf *b)
{
	if (rc == 0) {
		fwrite(buf_start(b), 1, buf_used(b), stdout);
		fputc('\n', stdout);
	}
	buf_free(b);
	return fflush(stdout) != 0 ? -1 : rc;
}

static int isolate_check(const struct isolate_args *a)
{
	struct nsprobe p;
	nsprobe_run(&p);
	if (a->json) {
		struct buf b;
		buf_init(&b, ISOLATE_JSON_MAX);
		if (emit_json(nsprobe_json(&b, &p), &b) < 0)
			return 1;
	} else {
		nsprobe_print(stdout, &p);
		fflush(stdout);
	}
	return p.v.works ? 0 : 1;
}

static int isolate_main(void *p)
{
	struct isolate_args *a = p;
	char err[ISOLATE_ERR];
	if (a->check && a->cmd.argc) {
		fprintf(stderr, "loopkit isolate: --check runs no command\n");
		return 2;
	}
	if (a->check && a->cfg.nfwd) {
		fprintf(stderr, "loopkit isolate: --check opens no forwards (-p, --out): it only probes\n");
		return 2;
	}
	if (a->check)
		return isolate_check(a);
	if (!a->cmd.argc) {
		fprintf(stderr, "loopkit isolate: which command? (loopkit isolate --help)\n");
		return 2;
	}
	int forwards_in = 0;
	for (size_t i = 0; i < a->cfg.nfwd; i++)
		forwards_in |= a->cfg.fwd[i].dir == ISOLATE_IN;
	if (a->cfg.direct && !forwards_in) {
		fprintf(stderr,
		        "loopkit isolate: --direct hands over the listeners of -p forwards: give one\n");
		return 2;
	}
	a->cfg.argv = a->cmd.argv;
	struct isolate *iso = malloc(sizeof *iso);
	if (!iso) {
		fprintf(stderr, "loopkit isolate: out of memory\n");
		return 1;
	}
	if (isolate_prepare(iso, &a->cfg, err, sizeof err) < 0) {
		/* as it is: lines of its own ("  blocked by: ..."), and what it quotes was
		 * parsed already (a -p that got here is an address and a port) */
		fprintf(stderr, "loopkit isolate: %s\n", err);
		isolate_abandon(iso);
		free(iso);
		return ISOLATE_EXIT_FAILED;
	}
	if (a->json) {
		struct buf b;
		buf_init(&b, ISOLATE_JSON_MAX);
		emit_json(isolate_json(&b, iso), &b);
	} else if (!a->cfg.quiet) {
		isolate_print(stderr, iso);
	}
	if (!a->cfg.quiet && isolate_ftp_note(&a->cfg, err, sizeof err))
		fprintf(stderr, "loopkit isolate: note: %s\n", err);
	int rc = isolate_run(iso);
	free(iso);
	return rc;
}

const struct cmd_verb cmd_isolate = {
        .name = "isolate",
        .summary =
                "run a command in a private network namespace with lo up; forward loopback ports in and out",
        .about = "Runs CMD in a new network namespace (and a user namespace when not root) whose lo is up\n"
                 "with 127.0.0.1/8 and ::1: every port of 127.0.0.0/8 is CMD's own, so parallel tests never\n"
                 "collide. -p forwards a host loopback port in (relayed; with --direct the server\n"
                 "inside takes the host listener itself); --out lets CMD reach a host service. Exit status,\n"
                 "signals and the terminal pass through; when CMD exits every process it left inside is\n"
                 "ended. Exit 1 when isolation cannot be set up (--check says which control blocks it and\n"
                 "how to allow it).\n",
        .flags = isolate_flags,
        .size = sizeof(struct isolate_args),
        .init = isolate_args_init,
        .fini = isolate_args_fini,
        .run = isolate_main,
        .hints = isolate_hints,
        .examples = "$ loopkit isolate -- sh -c 'loopkit serve & sleep 1; curl http://127.0.0.1:62893/'\n"
                    "$ loopkit isolate -p 0:62893 -- loopkit serve ./site --port 62893\n"
                    "$ loopkit isolate --out 5432 -- pytest -n 8\n"
                    "$ loopkit isolate --check\n",
};
