/* ping.c - `loopkit ping`: TCP, UDP or ICMP round trips with ping(8)-style statistics. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/json.h"
#include "diag/ping.h"
#include "diag/sock.h"

static const struct cmd_old_flag ping_flags[] = {
	{ "--tcp", NULL, "TCP (default): connect + echo to its own responder, or connect to TARGET" },
	{ "--udp", NULL, "UDP: a datagram out, its echo back" },
	{ "--icmp", NULL, "ICMP echo (raw socket, or datagram socket per net.ipv4.ping_group_range)" },
	{ "-c", "N", "number of probes (default 5, at most 100000)" },
	{ "-i", "SECS", "interval between probes (default 0.2; at least 0.001)" },
	{ "-s", "BYTES", "payload bytes (default 56, at most 65507; TCP to a TARGET sends none)" },
	{ "--json", NULL, "one JSON document at the end: probes and summary" },
	{ "--help", NULL, "this text" },
	{ NULL, NULL, NULL },
};

static volatile sig_atomic_t ping_stop;

static void on_sigint(int sig)
{
	(void)sig;
	ping_stop = 1;
}

static void ping_usage(FILE *f)
{
	fprintf(f, "usage: loopkit ping [--tcp|--udp|--icmp] [-c N] [-i SECS] [-s BYTES] [--json] "
	           "[TARGET]\n\n"
	           "Round trips with ping(8)-style statistics and percentiles. Without TARGET it\n"
	           "runs its own responder on 127.0.0.1 and measures the loopback stack; TARGET is\n"
	           "HOST:PORT for TCP and UDP, HOST for ICMP. Ctrl-C prints the summary.\n\n"
	           "options:\n");
	cmd_old_print_flags(f, ping_flags);
}

struct probe_rec {
	double ms;
	int ok;
	char why[40];
};

/* Milliseconds to the microsecond, for JSON that people read too. */
static double ms3(double ms)
{
	return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0;
}

static const char *mode_name(enum ping_mode m)
{
	return m == PING_UDP ? "udp" : m == PING_ICMP ? "icmp" : "tcp";
}

int cmd_old_ping(int argc, char **argv)
{
	struct ping_cfg cfg = { .mode = PING_TCP, .family = AF_INET, .size = 56 };
	unsigned long count = 5;
	double interval = 0.2;
	int json = 0, nmodes = 0;
	const char *target = NULL;

	for (int i = 1; i < argc; i++) {
		const char *val;
		char *end;
		if (argv[i][0] != '-' || !argv[i][1]) {
			if (target) {
				fprintf(stderr, "loopkit ping: one TARGET only, got '%s' and '%s'\n", target,
				        argv[i]);
				return 2;
			}
			target = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "-h")) {
			ping_usage(stdout);
			return 0;
		}
		const struct cmd_old_flag *f = cmd_old_match(ping_flags, argc, argv, &i, &val, "ping");
		if (!f) {
			ping_usage(stderr);
			return 2;
		}
		const char *n = f->name;
		if (!strcmp(n, "--help")) {
			ping_usage(stdout);
			return 0;
		} else if (!strcmp(n, "--tcp")) {
			cfg.mode = PING_TCP;
			nmodes++;
		} else if (!strcmp(n, "--udp")) {
			cfg.mode = PING_UDP;
			nmodes++;
		} else if (!strcmp(n, "--icmp")) {
			cfg.mode = PING_ICMP;
			nmodes++;
		} else if (!strcmp(n, "-c")) {
			errno = 0;
			count = strtoul(val, &end, 10);
			if (errno || *end || val[0] == '-' || count < 1 || count > PING_MAX_COUNT) {
				fprintf(stderr, "loopkit ping: -c %s: a number from 1 to %d\n", val,
				        PING_MAX_COUNT);
				return 2;
			}
		} else if (!strcmp(n, "-i")) {
			errno = 0;
			interval = strtod(val, &end);
			if (errno || *end || end == val || !(interval >= 0.001) || interval > 3600) {
				fprintf(stderr, "loopkit ping: -i %s: seconds, 0.001 to 3600\n", val);
				return 2;
			}
		} else if (!strcmp(n, "-s")) {
			errno = 0;
			unsigned long s = strtoul(val, &end, 10);
			if (errno || *end || val[0] == '-' || s > PING_MAX_SIZE) {
				fprintf(stderr, "loopkit ping: -s %s: bytes, 0 to %d\n", val, PING_MAX_SIZE);
				return 2;
			}
			cfg.size = s;
		} else if (!strcmp(n, "--json")) {
			json = 1;
		}
	}
	if (nmodes > 1) {
		fprintf(stderr, "loopkit ping: choose one of --tcp, --udp and --icmp\n");
		return 2;
	}
	if (target) {
		if (ping_parse_target(target, cfg.mode != PING_ICMP, &cfg.target, &cfg.target_len) < 0) {
			fprintf(stderr, "loopkit ping: TARGET '%s': want %s\n", target,
			        cfg.mode == PING_ICMP ? "a host (127.0.0.1, ::1, localhost)"
			                              : "HOST:PORT (127.0.0.1:8080, [::1]:8080)");
			return 2;
		}
		cfg.has_target = 1;
	}

	struct ping p;
	char err[256];
	int rc = ping_open(&p, &cfg, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "loopkit ping: %s%s\n", rc == PING_ENOPERM ? "SKIP: " : "", err);
		return 1;
	}
	struct probe_rec *rec = calloc(count, sizeof *rec);
	double *rtt = calloc(count, sizeof *rtt);
	if (!rec || !rtt) {
		fprintf(stderr, "loopkit ping: out of memory\n");
		free(rec);
		free(rtt);
		ping_close(&p);
		return 1;
	}
	char dst[80];
	if (cfg.mode == PING_ICMP) {
		char a[64];
		const void *ad = p.dst.ss_family == AF_INET6
			? (const void *)&((struct sockaddr_in6 *)&p.dst)->sin6_addr
			: (const void *)&((struct sockaddr_in *)&p.dst)->sin_addr;
		inet_ntop(p.dst.ss_family, ad, a, sizeof a);
		snprintf(dst, sizeof dst, "%s", a);
	} else {
		diag_addr_text(&p.dst, dst, sizeof dst);
	}
	/* TCP to a target sends nothing; a UDP probe carries at least its 2-byte sequence. */
	size_t sent_bytes = cfg.mode == PING_TCP && cfg.has_target ? 0 :
		cfg.mode == PING_UDP && cfg.size < 2 ? 2 : cfg.size;
	if (!json) {
		printf("PING %s (%s, %s): %zu data bytes\n", dst, mode_name(cfg.mode), p.method, sent_bytes);
		fflush(stdout);
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: Ctrl-C cuts the wait short */

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t sent = 0, nrtt = 0;
	int fatal = 0;
	for (unsigned long k = 0; k < count && !ping_stop; k++) {
		uint16_t seq = (uint16_t)(k + 1);
		double us = 0;
		struct probe_rec *r = &rec[sent];
		int ok = ping_probe(&p, seq, &us, r->why, sizeof r->why);
		if (ok < 0) {
			fprintf(stderr, "loopkit ping: %s\n", r->why);
			fatal = 1;
			break;
		}
		sent++;
		r->ok = ok;
		r->ms = us / 1000.0;
		if (ok)
			rtt[nrtt++] = r->ms;
		if (!json) {
			if (ok)
				printf("%zu bytes from %s: seq=%u time=%.3f ms\n", sent_bytes, dst, seq, r->ms);
			else
				printf("no answer from %s: seq=%u %s\n", dst, seq, r->why);
			fflush(stdout);
		}
		if (k + 1 < count && !ping_stop) {
			struct timespec ts = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
			nanosleep(&ts, NULL); /* EINTR on Ctrl-C: the loop condition ends it */
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	signal(SIGINT, SIG_DFL);
	ping_close(&p);
	double total_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;

	struct ping_summary s;
	ping_summarize(rtt, nrtt, sent, &s);
	if (json) {
		struct buf b;
		struct json j;
		buf_init(&b, 64u << 20);
		json_init(&j, &b, 0);
		json_obj_begin(&j);
		json_key(&j, "mode");
		json_str(&j, mode_name(cfg.mode));
		json_key(&j, "target");
		json_str(&j, dst);
		json_key(&j, "method");
		json_str(&j, p.method);
		json_key(&j, "size");
		json_uint(&j, sent_bytes);
		json_key(&j, "probes");
		json_arr_begin(&j);
		for (size_t i = 0; i < sent; i++) {
			json_obj_begin(&j);
			json_key(&j, "seq");
			json_uint(&j, i + 1);
			json_key(&j, "ok");
			json_bool(&j, rec[i].ok);
			json_key(&j, "ms");
			if (rec[i].ok)
				json_double(&j, ms3(rec[i].ms));
			else
				json_null(&j);
			json_key(&j, "error");
			if (rec[i].ok)
				json_null(&j);
			else
				json_str(&j, rec[i].why);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_key(&j, "summary");
		json_obj_begin(&j);
		json_key(&j, "sent");
		json_uint(&j, s.sent);
		json_key(&j, "received");
		json_uint(&j, s.received);
		json_key(&j, "loss_pct");
		json_double(&j, s.loss_pct);
		json_key(&j, "time_ms");
		json_double(&j, ms3(total_ms));
		static const char *names[] = { "min_ms", "avg_ms", "max_ms", "mdev_ms", "p50_ms",
		                               "p90_ms", "p99_ms" };
		double vals[] = { s.min, s.avg, s.max, s.mdev, s.p50, s.p90, s.p99 };
		for (size_t i = 0; i < 7; i++) {
			json_key(&j, names[i]);
			if (s.received)
				json_double(&j, ms3(vals[i]));
			else
				json_null(&j);
		}
		json_obj_end(&j);
		json_obj_end(&j);
		fwrite(buf_start(&b), 1, buf_used(&b), stdout);
		fputc('\n', stdout);
		buf_free(&b);
	} else {
		printf("\n--- %s %s ping statistics ---\n", dst, mode_name(cfg.mode));
		printf("%zu sent, %zu received, %g%% loss, time %.0fms\n", s.sent, s.received,
		       s.loss_pct, total_ms);
		if (s.received) {
			printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", s.min, s.avg, s.max, s.mdev);
			printf("rtt p50/p90/p99 = %.3f/%.3f/%.3f ms\n", s.p50, s.p90, s.p99);
		}
	}
	free(rec);
	free(rtt);
	fflush(stdout);
	return fatal || s.received == 0 ? 1 : 0;
}

const struct cmd_verb cmd_ping = { .name = "ping", .summary = "TCP/UDP/ICMP round trips with statistics and percentiles", .legacy = cmd_old_ping };
