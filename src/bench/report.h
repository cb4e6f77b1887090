/* report.h - the one renderer of bench results: each mode's report is written once, field
 * by field, and comes out as human text, as one JSON document, or as a plot's title. */
#ifndef LOOPKIT_BENCH_REPORT_H
#define LOOPKIT_BENCH_REPORT_H

#include "bench/bench.h"

/* Each mode's renderer (struct bench_render in bench.h): its report, and svg(), which
 * writes its plot (tcp: throughput over time; the others: latency by percentile) titled
 * with the report's first line and returns 0 or -1 with errno. */
extern const struct bench_render bench_render_tcp, bench_render_rr, bench_render_crr, bench_render_http;

/* Writes a finished run's result (the struct bench_X_result of rd's mode) to f as human
 * text, or with json as one JSON document (schema in docs/bench.md). Returns 0, or -1
 * when the JSON outgrew its bound or f failed. */
int bench_report_write(FILE *f, int json, const struct bench_render *rd, const void *result);

#endif
