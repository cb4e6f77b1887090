/* audit.c - `loopkit audit`: each local listener's exposure to the network, to web pages and to local users.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/ports.h"
#include "scan/audit.h"

#define AUDIT_OUT_MAX (64u << 20)
#define MIN_MS        1
#define MAX_MS        60000

struct audit_args {
	struct audit_config cfg; /* the library's defaults, then the table's */
	int json, sarif, fail_on;
	const char *out;
};
#define AT(f) CMD_AT(struct audit_args, f)

static const char *const levels[] = {"low", "medium", "high", "critical", NULL}; /* enum audit_sev order */

static int set_ports(void *p, const char *val, char *err, size_t errlen)
{
	return scan_ports_parse(val, &((struct audit_args *)p)->cfg.ports, err, errlen);
}

/* clang-format off */
static const struct cmd_flag audit_flags[] = {
	{ "port", 'p', "LIST", "1-65535", "audit listeners on these TCP ports only: 80, 8000-9000, 22,80,443", CMD_CALL, .set = set_ports },
	{ "json", 0, NULL, NULL, "one JSON document: listeners, findings, counts", CMD_SWITCH, AT(json) },
	{ "sarif", 0, NULL, NULL, "SARIF 2.1.0 (what code-scanning dashboards read)", CMD_SWITCH, AT(sarif) },
	{ "output", 0, "FILE", NULL, "write the report (--json, --sarif or the table) to FILE instead of stdout", CMD_STR, AT(out) },
	{ "fail-on", 0, NULL, "low", "exit 1 when a finding at or above this severity exists", CMD_ENUM, AT(fail_on), .choices = levels },
	{ "banner-wait", 0, "SECS", CMD_STR_OF(SCAN_BANNER_MS_DEFAULT) "ms", "how long to wait for a greeting before the first probe", CMD_MS, AT(cfg.scan.banner_ms), .min = MIN_MS, .max = MAX_MS },
	{ "probe-timeout", 0, "SECS", CMD_STR_OF(SCAN_PROBE_MS_DEFAULT) "ms", "most a probe waits for its answer", CMD_MS, AT(cfg.scan.probe_ms), .min = MIN_MS, .max = MAX_MS },
	{ "parallel", 0, "N", CMD_STR_OF(SCAN_PARALLEL_DEFAULT), "listeners probed at once", CMD_UINT, AT(cfg.scan.parallel), .min = 1, .max = SCAN_PARALLEL_MAX },
	{ "allow-remote", 0, NULL, NULL, "also probe listeners bound to a non-loopback address of this machine", CMD_SWITCH, AT(cfg.allow_remote) },
	{ 0 },
};
/* clang-format on */

static void audit_init(void *p)
{
	audit_config_default(&((struct audit_args *)p)->cfg);
}

static int audit_main(void *p)
{
	struct audit_args *a = p;
	struct audit_result r;
	char err[512];
	struct buf b;
	int rc;

	if (a->json && a->sarif) {
		fprintf(stderr, "loopkit audit: give --json or --sarif, not both\n");
		return 2;
	}
	if (audit_run(&a->cfg, &r, err, sizeof(err)) < 0) {
		cmd_error("audit", err);
		return 1;
	}
	FILE *f = a->out ? fopen(a->out, "w") : stdout;
	if (!f) {
		perror(a->out);
		audit_result_free(&r);
		return 1;
	}
	rc = audit_failed(&r, (enum audit_sev)a->fail_on);
	if (a->json || a->sarif) {
		buf_init(&b, AUDIT_OUT_MAX);
		if ((a->json ? audit_json(&b, &r) : audit_sarif(&b, &r)) < 0 || buf_puts(&b, "\n") < 0) {
			fprintf(stderr, "loopkit audit: output larger than %u bytes\n", AUDIT_OUT_MAX);
			rc = 1;
		} else {
			fwrite(buf_start(&b), 1, buf_used(&b), f);
		}
		buf_free(&b);
	} else {
		audit_print(f, &r, !a->out && diag_color_ok(f));
	}
	audit_result_free(&r);
	if ((f == stdout ? fflush(f) : fclose(f)) != 0) {
		perror(a->out ? a->out : "stdout");
		return 1;
	}
	return rc;
}

const struct cmd_verb cmd_audit = {
        .name = "audit",
        .summary = "what the network, a web page or a local user can do to each local listener",
        .about = "Finds every TCP listener, identifies it with safe read-only probes, and reports what\n"
                 "is reachable beyond loopback, what answers any Host (DNS rebinding), permissive CORS\n"
                 "and private-network preflights, services without authentication, home-directory\n"
                 "listings and anonymous FTP write. Exit 1 when a finding at or above --fail-on exists.\n",
        .flags = audit_flags,
        .size = sizeof(struct audit_args),
        .init = audit_init,
        .run = audit_main,
        .examples = "$ loopkit audit\n$ loopkit audit --fail-on high --sarif --output audit.sarif\n"
                    "$ loopkit audit -p 3000-9000 --json\n",
};
