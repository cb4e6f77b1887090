/* scan.c - `loopkit scan`: which local ports answer, what runs there, and who holds them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "diag/ports.h"
#include "scan/scan.h"

#define SCAN_OUT_MAX (64u << 20) /* JSON or XML of 65,535 open ports fits */

struct scan_args {
	struct scan_config cfg; /* the library's defaults, then the table's */
	const char *host;
	int ipv6, allow_remote, json, no_service;
	const char *xml;
	char argv_text[512];
};
#define AT(f)  CMD_AT(struct scan_args, f)
#define MIN_MS 1
#define MAX_MS 60000

static int set_ports(void *p, const char *val, char *err, size_t errlen)
{
	return scan_ports_parse(val, &((struct scan_args *)p)->cfg.ports, err, errlen);
}

static int set_udp(void *p, const char *val, char *err, size_t errlen)
{
	struct scan_args *a = p;
	if (scan_ports_parse(val, &a->cfg.udp, err, errlen) < 0)
		return -1;
	if (a->cfg.udp.count > SCAN_UDP_MAX) {
		snprintf(err, errlen, "%u ports; at most %d UDP ports per scan", a->cfg.udp.count,
		         SCAN_UDP_MAX);
		return -1;
	}
	return 0;
}

/* clang-format off */
static const struct cmd_flag scan_flags[] = {
	{ "HOST", 0, NULL, "127.0.0.1", "address to scan (loopback unless --allow-remote)", CMD_STR, AT(host), .attr = CMD_ARG },
	{ "port", 'p', "LIST", "1-65535", "TCP ports: 80, 8000-9000, 22,80,443; open ends as nmap's: - (all), 1024-, -1023", CMD_CALL, .set = set_ports },
	{ "udp", 0, "LIST", NULL, "also probe these UDP ports (at most " CMD_STR_OF(SCAN_UDP_MAX) ")", CMD_CALL, .set = set_udp },
	{ "ipv6", '6', NULL, NULL, "scan ::1 instead of 127.0.0.1", CMD_SWITCH, AT(ipv6) },
	{ "no-service", 0, NULL, NULL, "open ports only: no banners or probes", CMD_SWITCH, AT(no_service) },
	{ "json", 0, NULL, NULL, "one JSON document", CMD_SWITCH, AT(json) },
	{ "nmap-xml", 0, "FILE", NULL, "also write nmap's XML output format to FILE ('-': stdout, instead of the table)", CMD_STR, AT(xml) },
	{ "max-inflight", 0, "N", CMD_STR_OF(SCAN_INFLIGHT_DEFAULT), "connects in flight at once (also bound by the descriptor limit)", CMD_UINT, AT(cfg.inflight), .min = 1, .max = SCAN_INFLIGHT_MAX },
	{ "threads", 't', "N", NULL, "connect-scan threads taking ports from one queue (one when --rate limits); one per CPU this process may use when not given", CMD_UINT, AT(cfg.threads), .min = 1, .max = PROCFS_THREADS_MAX },
	{ "rate", 0, "N", NULL, "new connections per second (0: no limit); no limit on loopback when not given, " CMD_STR_OF(SCAN_REMOTE_RATE) " toward other hosts", CMD_UINT, AT(cfg.rate), .max = 1000000 },
	{ "connect-timeout", 0, "SECS", CMD_STR_OF(SCAN_CONNECT_MS_DEFAULT) "ms", "a port that does not answer a connect within this is filtered", CMD_MS, AT(cfg.connect_ms), .min = MIN_MS, .max = MAX_MS },
	{ "banner-wait", 0, "SECS", CMD_STR_OF(SCAN_BANNER_MS_DEFAULT) "ms", "how long to wait for a greeting before the first probe", CMD_MS, AT(cfg.banner_ms), .min = MIN_MS, .max = MAX_MS },
	{ "probe-timeout", 0, "SECS", CMD_STR_OF(SCAN_PROBE_MS_DEFAULT) "ms", "most a probe waits for its answer", CMD_MS, AT(cfg.probe_ms), .min = MIN_MS, .max = MAX_MS },
	{ "parallel", 0, "N", CMD_STR_OF(SCAN_PARALLEL_DEFAULT), "ports probed at once", CMD_UINT, AT(cfg.parallel), .min = 1, .max = SCAN_PARALLEL_MAX },
	{ "rounds", 0, "N", "1", "repeat the connect scan N times (benchmarks); each round's time, descriptors and RSS are shown", CMD_UINT, AT(cfg.rounds), .min = 1, .max = SCAN_ROUNDS_MAX },
	{ "allow-remote", 0, NULL, NULL, "allow a HOST beyond loopback (rate-limited; scan only hosts you may)", CMD_SWITCH, AT(allow_remote) },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint scan_hints[] = {
        {"-s", "nmap's -sT -sV is what loopkit scan does: a connect scan, service detection on by default "
               "(--no-service turns it off)"},
        {"-o", "nmap's -oX FILE is --nmap-xml FILE here"},
        {0},
};

static void scan_init(void *p)
{
	scan_config_default(&((struct scan_args *)p)->cfg);
}

static int write_out(FILE *f, const char *path, const struct buf *b)
{
	fwrite(buf_start(b), 1, buf_used(b), f);
	int rc = f == stdout ? fflush(f) : fclose(f);
	if (rc != 0)
		fprintf(stderr, "loopkit scan: %s: %s\n", path, strerror(errno));
	return rc ? -1 : 0;
}

static int scan_main(void *p)
{
	struct scan_args *a = p;
	struct scan_result r;
	char err[512];
	struct buf b;
	int rc = 0;

	if (scan_config_target(&a->cfg, a->ipv6 ? "::1" : a->host, a->allow_remote, err, sizeof(err)) < 0) {
		cmd_error("scan", err);
		return 2;
	}
	if (a->ipv6 && strcmp(a->host, "127.0.0.1") != 0) {
		fprintf(stderr, "loopkit scan: give either HOST or --ipv6, not both\n");
		return 2;
	}
	if (a->json && a->xml && strcmp(a->xml, "-") == 0) {
		fprintf(stderr, "loopkit scan: give --json or --nmap-xml -, not both on stdout "
		                "(--nmap-xml FILE writes the XML to a file beside the JSON)\n");
		return 2;
	}
	a->cfg.service = !a->no_service;
	/* The output file is opened before the scan: a path that cannot be written fails
	 * at once, not after the scan's work. */
	FILE *xf = !a->xml ? NULL : strcmp(a->xml, "-") == 0 ? stdout : fopen(a->xml, "w");
	if (a->xml && !xf) {
		fprintf(stderr, "loopkit scan: --nmap-xml %s: %s\n", a->xml, strerror(errno));
		return 1;
	}
	if (scan_run(&a->cfg, &r, err, sizeof(err)) < 0) {
		cmd_error("scan", err);
		if (xf && xf != stdout)
			fclose(xf);
		return 1;
	}
	buf_init(&b, SCAN_OUT_MAX);
	if (a->xml) {
		char ports[256];
		snprintf(a->argv_text, sizeof(a->argv_text), "loopkit scan %s -p %s%s", r.host,
		         scan_ports_text(&a->cfg.ports, ports, sizeof(ports)),
		         a->no_service ? " --no-service" : "");
		if (scan_nmap_xml(&b, &r, a->argv_text) < 0) {
			fprintf(stderr, "loopkit scan: output larger than %u bytes\n", SCAN_OUT_MAX);
			rc = 1;
			if (xf != stdout)
				fclose(xf);
		} else if (write_out(xf, a->xml, &b) < 0) {
			rc = 1;
		}
		b.off = b.len = 0;
	}
	if (a->json) {
		if (scan_json(&b, &r) < 0 || buf_puts(&b, "\n") < 0) {
			fprintf(stderr, "loopkit scan: output larger than %u bytes\n", SCAN_OUT_MAX);
			rc = 1;
		} else {
			fwrite(buf_start(&b), 1, buf_used(&b), stdout);
		}
	} else if (!a->xml || strcmp(a->xml, "-") != 0) {
		scan_print(stdout, &r, diag_color_ok(stdout));
	}
	buf_free(&b);
	scan_result_free(&r);
	return fflush(stdout) != 0 ? 1 : rc;
}

const struct cmd_verb cmd_scan = {
        .name = "scan",
        .summary = "which local ports answer, what runs there, and who holds them",
        .about = "A TCP connect scan of 127.0.0.1 (or ::1) with many connects in flight and no privileges;\n"
                 "each open port gets a service guess from its greeting or a safe read-only probe, and\n"
                 "the process that holds it.\n",
        .flags = scan_flags,
        .size = sizeof(struct scan_args),
        .init = scan_init,
        .run = scan_main,
        .hints = scan_hints,
        .examples = "$ loopkit scan\n$ loopkit scan -p 8000-9000 --json\n$ loopkit scan --nmap-xml scan.xml\n"
                    "$ loopkit scan -6 --udp 53,123\n",
};
