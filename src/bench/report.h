/* report.h - the one renderer of bench results: each mode's report is written once, field
 * by field, and comes out as human text, as one JSON document, or as a plot's title. */
#ifndef LOOPKIT_BENCH_REPORT_H
#define LOOPKIT_BENCH_REPORT_H

#include <stdio.h>

#include "bench/bench.h"

/* Each writes the report of a finished run to f: human text, or with json one JSON
 * document (schema in docs/bench.md). Returns 0, or -1 when the JSON outgrew its
 * bound or f failed. */
int bench_report_tcp(FILE *f, int json, const struct bench_tcp_result *r);
int bench_report_rr(FILE *f, int json, const struct bench_rr_result *r);
int bench_report_crr(FILE *f, int json, const struct bench_crr_result *r);
int bench_report_http(FILE *f, int json, const struct bench_http_result *r);

/* Each writes the plot of a run to path (tcp: throughput over time; the others:
 * latency by percentile), titled with the report's first line. Returns 0 or -1 with
 * errno. */
int bench_report_svg_tcp(const char *path, const struct bench_tcp_result *r);
int bench_report_svg_rr(const char *path, const struct bench_rr_result *r);
int bench_report_svg_crr(const char *path, const struct bench_crr_result *r);
int bench_report_svg_http(const char *path, const struct bench_http_result *r);

#endif
