/* pingrun.c - a ping run: probes interval apart, statistics, and the ping(8) and JSON renderings. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/json.h"
#include "diag/ping.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "core/procfs.h"

static const char *mode_name(enum ping_mode m)
{
	return m == PING_UDP ? "udp" : m == PING_ICMP ? "icmp" : "tcp";
}

int ping_run_begin(struct ping_run *r, const struct ping *p, size_t count)
{
	memset(r, 0, sizeof *r);
	if (!(r->probes = calloc(count ? count : 1, sizeof *r->probes)))
		return -1;
	r->count = count;
	r->mode = mode_name(p->cfg.mode);
	r->method = p->method;
	if (p->cfg.mode == PING_ICMP) {
		const void *a = p->dst.ss_family == AF_INET6
		                        ? (const void *)&((const struct sockaddr_in6 *)&p->dst)->sin6_addr
		                        : (const void *)&((const struct sockaddr_in *)&p->dst)->sin_addr;
		inet_ntop(p->dst.ss_family, a, r->dst, sizeof r->dst);
	} else {
		net_ss_text(&p->dst, r->dst, sizeof r->dst);
	}
	/* TCP to a target sends nothing; a UDP probe carries at least its 2-byte sequence. */
	r->size = p->cfg.mode == PING_TCP && p->cfg.has_target ? 0
	          : p->cfg.mode == PING_UDP && p->cfg.size < 2 ? 2
	                                                       : p->cfg.size;
	return 0;
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

void ping_run_probes(struct ping *p, struct ping_run *r, double interval_s, const volatile sig_atomic_t *stop,
                     void (*each)(void *arg, const struct ping_run *r, size_t k), void *arg)
{
	struct timespec t0;
	size_t sent = 0, nrtt = 0;
	double *rtt = calloc(r->count ? r->count : 1, sizeof *rtt);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t k = 0; rtt && k < r->count && !(stop && *stop); k++) {
		struct ping_probe_rec *pr = &r->probes[k];
		double us = 0;
		int ok = ping_probe(p, (uint16_t)(k + 1), &us, pr->why, sizeof pr->why);
		if (ok < 0) {
			snprintf(r->error, sizeof r->error, "%s", pr->why);
			break;
		}
		sent++;
		pr->ok = ok;
		pr->ms = us / 1000.0;
		if (ok)
			rtt[nrtt++] = pr->ms;
		if (each)
			each(arg, r, k);
		if (k + 1 < r->count && !(stop && *stop)) {
			struct timespec ts = {(time_t)interval_s,
			                      (long)((interval_s - (double)(time_t)interval_s) * 1e9)};
			nanosleep(&ts, NULL); /* EINTR on Ctrl-C: the loop condition ends it */
		}
	}
	if (!rtt)
		snprintf(r->error, sizeof r->error, "out of memory");
	r->total_ms = elapsed_ms(&t0);
	ping_summarize(rtt, nrtt, sent, &r->s);
	free(rtt);
}

void ping_run_free(struct ping_run *r)
{
	free(r->probes);
	r->probes = NULL;
}

void ping_print_head(FILE *f, const struct ping_run *r)
{
	fprintf(f, "PING %s (%s, %s): %zu data bytes\n", r->dst, r->mode, r->method, r->size);
}

void ping_print_probe(FILE *f, const struct ping_run *r, size_t k)
{
	const struct ping_probe_rec *pr = &r->probes[k];
	if (pr->ok)
		fprintf(f, "%zu bytes from %s: seq=%zu time=%.3f ms\n", r->size, r->dst, k + 1, pr->ms);
	else
		fprintf(f, "no answer from %s: seq=%zu %s\n", r->dst, k + 1, pr->why);
}

void ping_print_summary(FILE *f, const struct ping_run *r)
{
	const struct ping_summary *s = &r->s;
	fprintf(f, "\n--- %s %s ping statistics ---\n", r->dst, r->mode);
	fprintf(f, "%zu sent, %zu received, %g%% loss, time %.0fms\n", s->sent, s->received, s->loss_pct,
	        r->total_ms);
	if (s->received) {
		fprintf(f, "rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", s->min, s->avg, s->max,
		        s->mdev);
		fprintf(f, "rtt p50/p90/p99 = %.3f/%.3f/%.3f ms\n", s->p50, s->p90, s->p99);
	}
}

/* Milliseconds to the microsecond, for JSON that people read too. */
static double ms3(double ms)
{
	return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0;
}

int ping_json(struct buf *b, const struct ping_run *r)
{
	const struct ping_summary *s = &r->s;
	struct json j;
	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_kstr(&j, "mode", r->mode);
	json_kstr(&j, "target", r->dst);
	json_kstr(&j, "method", r->method);
	json_kuint(&j, "size", r->size);
	json_key(&j, "probes");
	json_arr_begin(&j);
	for (size_t i = 0; i < s->sent; i++) {
		const struct ping_probe_rec *pr = &r->probes[i];
		json_obj_begin(&j);
		json_kuint(&j, "seq", i + 1);
		json_kbool(&j, "ok", pr->ok);
		json_key(&j, "ms");
		if (pr->ok)
			json_double(&j, ms3(pr->ms));
		else
			json_null(&j);
		json_key(&j, "error");
		if (pr->ok)
			json_null(&j);
		else
			json_str(&j, pr->why);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "summary");
	json_obj_begin(&j);
	json_kuint(&j, "sent", s->sent);
	json_kuint(&j, "received", s->received);
	json_kdouble(&j, "loss_pct", s->loss_pct);
	json_kdouble(&j, "time_ms", ms3(r->total_ms));
	static const char *const names[] = {"min_ms", "avg_ms", "max_ms", "mdev_ms",
	                                    "p50_ms", "p90_ms", "p99_ms"};
	const double vals[] = {s->min, s->avg, s->max, s->mdev, s->p50, s->p90, s->p99};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		json_key(&j, names[i]);
		if (s->received)
			json_double(&j, ms3(vals[i]));
		else
			json_null(&j);
	}
	json_obj_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
