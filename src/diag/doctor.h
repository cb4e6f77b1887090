/* doctor.h - health checks of the loopback stack, each PASS/WARN/FAIL/SKIP with a hint. */
#ifndef LOOPKIT_DIAG_DOCTOR_H
#define LOOPKIT_DIAG_DOCTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"

#define DOCTOR_MAX_CHECKS 16
#define DOCTOR_PROBES     3   /* round trips per probe check; the first loss ends it */
#define DOCTOR_PROBE_MS   500 /* loopback answers in microseconds: 500 ms means lost */
#define DOCTOR_TEXT       320

enum doctor_status { DOCTOR_PASS, DOCTOR_WARN, DOCTOR_FAIL, DOCTOR_SKIP };

struct doctor_check {
	char name[24]; /* stable id: "lo", "tcp4", "ephemeral", ... */
	enum doctor_status status;
	char detail[DOCTOR_TEXT]; /* one line: what was found */
	char hint[DOCTOR_TEXT];   /* what to do; "" for PASS */
	double ms;                /* time the check took */
};

struct doctor_report {
	struct doctor_check checks[DOCTOR_MAX_CHECKS];
	size_t n;
	size_t count[4]; /* by status */
};

/* Runs every check; port is the one check 8 looks at (62893 by default). */
void doctor_run(uint16_t port, struct doctor_report *r);

const char *doctor_status_name(enum doctor_status s);

/* Share of a range in use -> status: WARN over 50%, FAIL over 90%. */
enum doctor_status doctor_ephemeral_status(size_t used, size_t range);

/* The two renderings of one report. */
void doctor_print(FILE *f, const struct doctor_report *r, int color);
/* {"checks":[{"name","status","detail","hint","ms"}],"summary":{"pass","warn","fail",
 * "skip"}}; returns 0, or -1 when the buffer limit was hit. */
int doctor_json(struct buf *b, const struct doctor_report *r);

#endif
