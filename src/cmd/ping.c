/* ping.c - `loopkit ping`: TCP, UDP or ICMP round trips with ping(8)-style statistics. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/net.h"
#include "diag/ping.h"

struct ping_args {
	const char *target;
	int tcp, udp, icmp, json, allow_remote, quiet;
	unsigned count;
	double interval;
	unsigned timeout_ms;
	size_t size;
};
#define AT(f) CMD_AT(struct ping_args, f)

/* clang-format off */
static const struct cmd_flag ping_flags[] = {
	{ "TARGET", 0, NULL, NULL, "HOST:PORT (127.0.0.1:8080, [::1]:8080) or PORT (127.0.0.1:PORT) for TCP and UDP, HOST for ICMP; on loopback (see --allow-remote); without it, its own responder on 127.0.0.1", CMD_STR, AT(target), .attr = CMD_ARG },
	{ "tcp", 0, NULL, NULL, "TCP (the default): connect + echo to its own responder, or connect to TARGET", CMD_SWITCH, AT(tcp) },
	{ "udp", 'u', NULL, NULL, "UDP: a datagram out, its echo back", CMD_SWITCH, AT(udp) },
	{ "icmp", 0, NULL, NULL, "ICMP echo (raw socket, or datagram socket per net.ipv4.ping_group_range)", CMD_SWITCH, AT(icmp) },
	{ "count", 'c', "N", "5", "number of probes", CMD_UINT, AT(count), .min = 1, .max = PING_MAX_COUNT },
	{ "interval", 'i', "SECS", "0.2", "time between probes", CMD_SECS, AT(interval), .min = 1, .max = 3600 * 1000 },
	{ "timeout", 'W', "SECS", CMD_STR_OF(PING_TIMEOUT_MS) "ms", "a probe not answered within this is lost (ping's -W)", CMD_MS, AT(timeout_ms), .min = 1, .max = 60 * 1000 },
	{ "size", 's', "BYTES", "56", "payload bytes (TCP to a TARGET sends none)", CMD_UINT, AT(size), .max = PING_MAX_SIZE },
	{ "allow-remote", 0, NULL, NULL, "allow a TARGET outside loopback (127.0.0.0/8, ::1)", CMD_SWITCH, AT(allow_remote) },
	{ "json", 0, NULL, NULL, "one JSON document at the end: probes and summary", CMD_SWITCH, AT(json) },
	{ "quiet", 'q', NULL, NULL, "no line per probe: the head and the summary only (ping's -q)", CMD_SWITCH, AT(quiet) },
	{ 0 },
};
/* clang-format on */

static volatile sig_atomic_t ping_stop; /* Ctrl-C: stop probing, print the summary */

static void on_sigint(int sig)
{
	ping_stop = 1;
}

static void print_probe(void *arg, const struct ping_run *r, size_t k)
{
	ping_print_probe(stdout, r, k);
	fflush(stdout);
}

static int ping_main(void *p)
{
	const struct ping_args *a = p;
	struct ping_cfg cfg = {.mode = a->udp    ? PING_UDP
	                               : a->icmp ? PING_ICMP
	                                         : PING_TCP,
	                       .family = AF_INET,
	                       .size = a->size,
	                       .timeout_ms = a->timeout_ms};
	struct ping pg;
	struct ping_run r;
	char err[256];
	if (a->tcp + a->udp + a->icmp > 1) {
		fprintf(stderr, "loopkit ping: choose one of --tcp, --udp and --icmp\n");
		return 2;
	}
	if (a->target &&
	    ping_parse_target(a->target, cfg.mode != PING_ICMP, &cfg.target, &cfg.target_len) < 0) {
		fprintf(stderr, "loopkit ping: TARGET '%s': want %s\n", a->target,
		        cfg.mode == PING_ICMP ? "a host (127.0.0.1, ::1, localhost)"
		                              : "HOST:PORT (127.0.0.1:8080, [::1]:8080) or PORT");
		return 2;
	}
	if (a->target && net_loopback_only((struct sockaddr *)&cfg.target, a->allow_remote, a->target, err,
	                                   sizeof err) < 0) {
		cmd_error("ping", err);
		return 2;
	}
	cfg.has_target = a->target != NULL;
	int rc = ping_open(&pg, &cfg, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "loopkit ping: %s%s\n", rc == PING_ENOPERM ? "SKIP: " : "", err);
		if (a->json) { /* a script still gets a document to read, as doctor's SKIP */
			struct buf b;
			struct json j;
			static const char *const modes[] = {"tcp", "udp", "icmp"};
			buf_init(&b, 4096);
			json_init(&j, &b, 0);
			json_obj_begin(&j);
			json_kstr(&j, "mode", modes[cfg.mode]);
			json_kbool(&j, "skipped", rc == PING_ENOPERM);
			json_kstr(&j, "error", err);
			json_obj_end(&j);
			printf("%.*s\n", (int)buf_used(&b), buf_start(&b));
			buf_free(&b);
		}
		return 1;
	}
	if (ping_run_begin(&r, &pg, a->count) < 0) {
		fprintf(stderr, "loopkit ping: out of memory\n");
		ping_close(&pg);
		return 1;
	}
	if (!a->json) {
		ping_print_head(stdout, &r);
		fflush(stdout);
	}
	struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: Ctrl-C cuts a wait short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	ping_run_probes(&pg, &r, a->interval, &ping_stop, a->json || a->quiet ? NULL : print_probe, NULL);
	signal(SIGINT, SIG_DFL);
	ping_close(&pg);
	if (r.error[0])
		fprintf(stderr, "loopkit ping: %s\n", r.error);
	if (a->json) {
		struct buf b;
		buf_init(&b, 64u << 20);
		ping_json(&b, &r);
		printf("%.*s\n", (int)buf_used(&b), buf_start(&b));
		buf_free(&b);
	} else {
		ping_print_summary(stdout, &r);
	}
	rc = r.error[0] || r.s.received == 0 ? 1 : 0;
	ping_run_free(&r);
	fflush(stdout);
	return rc;
}

const struct cmd_verb cmd_ping = {
        .name = "ping",
        .summary = "TCP/UDP/ICMP round trips with statistics and percentiles",
        .about = "Round trips with ping(8)-style statistics and percentiles. Without TARGET it runs\n"
                 "its own responder on 127.0.0.1 and measures the loopback stack. Ctrl-C prints the\n"
                 "summary. Exit 1 when no probe was answered.\n",
        .flags = ping_flags,
        .size = sizeof(struct ping_args),
        .run = ping_main,
        .examples = "$ loopkit ping\n$ loopkit ping -u -c 1000 -i 1ms\n$ loopkit ping 127.0.0.1:5432\n"
                    "$ loopkit ping 8080 -W 200ms\n$ loopkit ping --icmp ::1\n",
};
