/* audit.h - `loopkit audit`: what the network, a web page or a local user can do to each local listener. */
#ifndef LOOPKIT_SCAN_AUDIT_H
#define LOOPKIT_SCAN_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "scan/scan.h"

#define AUDIT_ATTACKER_HOST   "attacker.example"        /* the Host a rebinding page sends */
#define AUDIT_ATTACKER_ORIGIN "http://attacker.example" /* the Origin of a hostile page */
#define AUDIT_FTP_GREETING_MS 2500 /* FTP greeting wait: loopkit serve greets after its 1 s sniff window */
#define AUDIT_TARGETS_MAX     4096 /* listeners one audit looks at */
#define AUDIT_HOME_MARKS_MIN  2    /* home-directory names a listing must show to count as $HOME */

enum audit_sev { AUDIT_LOW, AUDIT_MEDIUM, AUDIT_HIGH, AUDIT_CRITICAL, AUDIT_SEV_COUNT };

/* One check: what it finds, how bad, and what to do. The rows are in audit.c. */
struct audit_rule {
	const char *id; /* "dns-rebinding": stable, for scripts and SARIF ruleId */
	enum audit_sev sev;
	const char *title; /* one line */
	const char *why;   /* the reasoning, one paragraph */
	const char *fix;   /* the fix, one line */
};

extern const struct audit_rule audit_rules[];
extern const size_t audit_nrules;

/* A listener and what the audit learnt about it. */
struct audit_target {
	uint16_t port;
	char bound[64]; /* the listener's own address: "0.0.0.0:6379" */
	char probe[64]; /* the loopback address probed: "127.0.0.1"; "" when not probed */
	int exposed;
	struct procfs_owner owner; /* pid 0: unknown */
	struct scan_service svc;
};

struct audit_finding {
	const struct audit_rule *rule;
	size_t target;      /* index into audit_result.targets */
	char evidence[320]; /* what was sent and what came back */
};

struct audit_config {
	struct scan_config scan; /* probe times, parallelism (target fields unused) */
	struct scan_ports ports; /* listeners on these ports only */
	int allow_remote;        /* also probe listeners bound to a non-loopback address */
};

struct audit_result {
	struct audit_target *targets; /* ascending port */
	size_t ntargets;
	struct audit_finding *findings; /* most severe first, then port */
	size_t nfindings;
	size_t count[AUDIT_SEV_COUNT];
	double seconds;
};

/* Fills cfg with the defaults: every port, scan's probe times and parallelism. */
void audit_config_default(struct audit_config *cfg);
/* The name of a severity ("high"); audit_sev_parse reads it back. */
const char *audit_sev_name(enum audit_sev s);
/* Parses "low", "medium", "high", "critical". Returns the level or -1. */
int audit_sev_parse(const char *s);

/* Finds the TCP listeners (ports in cfg->ports), identifies each, runs every check.
 * Returns 0 with *r filled (free with audit_result_free), or -1 with err filled. */
int audit_run(const struct audit_config *cfg, struct audit_result *r, char *err, size_t errlen);
/* Frees what audit_run allocated and empties *r; safe on an empty result. */
void audit_result_free(struct audit_result *r);
/* True when a finding at or above level exists. */
int audit_failed(const struct audit_result *r, enum audit_sev level);

/* Renderings of one result: the report (color: ANSI colour by severity), and JSON into b
 * (returns 0, or -1 when b's limit was hit). */
void audit_print(FILE *f, const struct audit_result *r, int color);
int audit_json(struct buf *b, const struct audit_result *r);
/* SARIF 2.1.0 into b: one run, every rule in tool.driver.rules, one result per finding.
 * Returns 0, or -1 when b's limit was hit. */
int audit_sarif(struct buf *b, const struct audit_result *r);

/* Pure helpers the checks use (unit-tested). */
/* How many names of a home directory (.ssh, .bashrc, ...) the listing body links. */
int audit_home_marks(const char *body, size_t n, char *found, size_t len);
/* Does the MLST reply's perm fact let the session create or write ("c", "m", "a", "w")?
 * Copies the fact into perm. */
int audit_mlst_writable(const char *reply, size_t n, char *perm, size_t len);

#endif
