/* audit_render.c - an audit's three renderings: the report, JSON, and SARIF 2.1.0. */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "scan/audit.h"

#define C_RED    "\033[31m"
#define C_YELLOW "\033[33m"
#define C_BOLD   "\033[1m"
#define C_OFF    "\033[0m"

#define SARIF_SCHEMA "https://json.schemastore.org/sarif-2.1.0.json"

/* SARIF's level and GitHub code scanning's security-severity score of each level. */
static const struct {
	const char *level;
	const char *score;
} sarif_sev[AUDIT_SEV_COUNT] = {{"note", "3.0"}, {"warning", "5.5"}, {"error", "8.0"}, {"error", "9.5"}};

static void target_text(const struct audit_target *t, char *out, size_t len)
{
	snprintf(out, len, "%s:%u", t->probe[0] ? (strchr(t->probe, ':') ? "[::1]" : t->probe) : t->bound,
	         t->port);
	if (!t->probe[0])
		snprintf(out, len, "%s", t->bound);
	else if (strchr(t->probe, ':'))
		snprintf(out, len, "[%s]:%u", t->probe, t->port);
}

/* Where a finding is: the bound address for exposure, the probed one otherwise. */
static void finding_target(const struct audit_finding *x, const struct audit_target *t, char *out, size_t len)
{
	if (strcmp(x->rule->id, "exposed") == 0)
		snprintf(out, len, "%s", t->bound);
	else
		target_text(t, out, len);
}

static void owner_text(const struct audit_target *t, char *out, size_t len)
{
	if (t->owner.pid)
		snprintf(out, len, "%s (pid %d)", t->owner.comm, (int)t->owner.pid);
	else
		snprintf(out, len, "-");
}

static void service_text(const struct audit_target *t, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s%s", t->svc.name, t->svc.product[0] ? " " : "", t->svc.product,
	         t->svc.version[0] ? " " : "", t->svc.version);
}

void audit_print(FILE *f, const struct audit_result *r, int color)
{
	char tgt[96], own[PROCFS_COMM_MAX + 32], svc[160];

	fprintf(f, "%-6s %-24s %-40s %s\n", "PORT", "BOUND", "SERVICE", "PROCESS");
	for (size_t i = 0; i < r->ntargets; i++) {
		const struct audit_target *t = &r->targets[i];
		service_text(t, svc, sizeof(svc));
		owner_text(t, own, sizeof(own));
		fprintf(f, "%-6u %-24s %-40s %s\n", t->port, t->bound, svc, own);
	}
	fputc('\n', f);
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct audit_finding *x = &r->findings[i];
		const struct audit_target *t = &r->targets[x->target];
		const char *on = "", *off = "";
		if (color) {
			on = x->rule->sev >= AUDIT_HIGH ? C_BOLD C_RED : C_YELLOW;
			off = C_OFF;
		}
		finding_target(x, t, tgt, sizeof(tgt));
		owner_text(t, own, sizeof(own));
		fprintf(f, "%s%-8s%s %-22s %-22s %s\n", on, audit_sev_name(x->rule->sev), off, x->rule->id,
		        tgt, own);
		fprintf(f, "         %s\n         evidence: %s\n         fix: %s\n", x->rule->title,
		        x->evidence, x->rule->fix);
	}
	fprintf(f,
	        "%s%zu listener%s audited in %.2f s: %zu finding%s (%zu critical, %zu high, %zu medium, %zu "
	        "low)\n",
	        r->nfindings ? "\n" : "", r->ntargets, r->ntargets == 1 ? "" : "s", r->seconds, r->nfindings,
	        r->nfindings == 1 ? "" : "s", r->count[AUDIT_CRITICAL], r->count[AUDIT_HIGH],
	        r->count[AUDIT_MEDIUM], r->count[AUDIT_LOW]);
}

static void json_owner(struct json *j, const struct audit_target *t)
{
	if (!t->owner.pid) {
		json_null(j);
		return;
	}
	json_obj_begin(j);
	json_kint(j, "pid", t->owner.pid);
	json_kstr(j, "user", t->owner.user);
	json_kstr(j, "comm", t->owner.comm);
	json_kstr(j, "cmdline", t->owner.cmdline);
	json_obj_end(j);
}

int audit_json(struct buf *b, const struct audit_result *r)
{
	struct json j;
	char tgt[96];

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_kdouble(&j, "seconds", r->seconds);
	json_key(&j, "listeners");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->ntargets; i++) {
		const struct audit_target *t = &r->targets[i];
		json_obj_begin(&j);
		json_kuint(&j, "port", t->port);
		json_kstr(&j, "bound", t->bound);
		json_kstr(&j, "probed", t->probe);
		json_kbool(&j, "exposed", t->exposed);
		json_kstr(&j, "service", t->svc.name);
		json_kstr(&j, "product", t->svc.product);
		json_kstr(&j, "version", t->svc.version);
		json_kstr(&j, "info", t->svc.info);
		json_key(&j, "owner");
		json_owner(&j, t);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "findings");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct audit_finding *x = &r->findings[i];
		const struct audit_target *t = &r->targets[x->target];
		finding_target(x, t, tgt, sizeof(tgt));
		json_obj_begin(&j);
		json_kstr(&j, "id", x->rule->id);
		json_kstr(&j, "severity", audit_sev_name(x->rule->sev));
		json_kstr(&j, "title", x->rule->title);
		json_kstr(&j, "target", tgt);
		json_kuint(&j, "port", t->port);
		json_kstr(&j, "service", t->svc.name);
		json_kstr(&j, "product", t->svc.product);
		json_kstr(&j, "evidence", x->evidence);
		json_kstr(&j, "fix", x->rule->fix);
		json_key(&j, "owner");
		json_owner(&j, t);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "counts");
	json_obj_begin(&j);
	for (int s = AUDIT_SEV_COUNT - 1; s >= 0; s--) {
		json_key(&j, audit_sev_name((enum audit_sev)s));
		json_uint(&j, r->count[s]);
	}
	json_obj_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}

static void text_obj(struct json *j, const char *key, const char *text)
{
	json_key(j, key);
	json_obj_begin(j);
	json_kstr(j, "text", text);
	json_obj_end(j);
}

int audit_sarif(struct buf *b, const struct audit_result *r)
{
	struct json j;
	char tgt[96], uri[128], msg[1024], own[PROCFS_COMM_MAX + 32];

	json_init(&j, b, 1);
	json_obj_begin(&j);
	json_kstr(&j, "$schema", SARIF_SCHEMA);
	json_kstr(&j, "version", "2.1.0");
	json_key(&j, "runs");
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_key(&j, "tool");
	json_obj_begin(&j);
	json_key(&j, "driver");
	json_obj_begin(&j);
	json_kstr(&j, "name", "loopkit audit");
	json_kstr(&j, "version", LOOPKIT_VERSION);
	json_key(&j, "rules");
	json_arr_begin(&j);
	for (size_t i = 0; i < audit_nrules; i++) {
		const struct audit_rule *u = &audit_rules[i];
		json_obj_begin(&j);
		json_kstr(&j, "id", u->id);
		text_obj(&j, "shortDescription", u->title);
		text_obj(&j, "fullDescription", u->why);
		text_obj(&j, "help", u->fix);
		json_key(&j, "defaultConfiguration");
		json_obj_begin(&j);
		json_kstr(&j, "level", sarif_sev[u->sev].level);
		json_obj_end(&j);
		json_key(&j, "properties");
		json_obj_begin(&j);
		json_kstr(&j, "security-severity", sarif_sev[u->sev].score);
		json_kstr(&j, "severity", audit_sev_name(u->sev));
		json_key(&j, "tags");
		json_arr_begin(&j);
		json_str(&j, "security");
		json_arr_end(&j);
		json_obj_end(&j);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_obj_end(&j);
	json_key(&j, "results");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct audit_finding *x = &r->findings[i];
		const struct audit_target *t = &r->targets[x->target];
		finding_target(x, t, tgt, sizeof(tgt));
		owner_text(t, own, sizeof(own));
		snprintf(uri, sizeof(uri), "tcp://%s", tgt);
		snprintf(msg, sizeof(msg), "%s on %s (%s): %s", x->rule->title, tgt, own, x->evidence);
		json_obj_begin(&j);
		json_kstr(&j, "ruleId", x->rule->id);
		json_kuint(&j, "ruleIndex", (unsigned)(x->rule - audit_rules));
		json_kstr(&j, "level", sarif_sev[x->rule->sev].level);
		text_obj(&j, "message", msg);
		json_key(&j, "locations");
		json_arr_begin(&j);
		json_obj_begin(&j);
		json_key(&j, "physicalLocation");
		json_obj_begin(&j);
		json_key(&j, "artifactLocation");
		json_obj_begin(&j);
		json_kstr(&j, "uri", uri);
		json_obj_end(&j);
		json_obj_end(&j);
		json_key(&j, "logicalLocations");
		json_arr_begin(&j);
		json_obj_begin(&j);
		json_kstr(&j, "name", own);
		json_kstr(&j, "kind", "process");
		json_obj_end(&j);
		json_arr_end(&j);
		json_obj_end(&j);
		json_arr_end(&j);
		json_key(&j, "properties");
		json_obj_begin(&j);
		json_kstr(&j, "severity", audit_sev_name(x->rule->sev));
		json_kstr(&j, "evidence", x->evidence);
		json_kstr(&j, "fix", x->rule->fix);
		json_kstr(&j, "service", t->svc.name);
		json_kstr(&j, "product", t->svc.product);
		json_obj_end(&j);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "invocations");
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_kbool(&j, "executionSuccessful", 1);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
