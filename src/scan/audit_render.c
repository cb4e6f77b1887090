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
	json_key(j, "pid");
	json_int(j, t->owner.pid);
	json_key(j, "user");
	json_str(j, t->owner.user);
	json_key(j, "comm");
	json_str(j, t->owner.comm);
	json_key(j, "cmdline");
	json_str(j, t->owner.cmdline);
	json_obj_end(j);
}

int audit_json(struct buf *b, const struct audit_result *r)
{
	struct json j;
	char tgt[96];

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_key(&j, "seconds");
	json_double(&j, r->seconds);
	json_key(&j, "listeners");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->ntargets; i++) {
		const struct audit_target *t = &r->targets[i];
		json_obj_begin(&j);
		json_key(&j, "port");
		json_uint(&j, t->port);
		json_key(&j, "bound");
		json_str(&j, t->bound);
		json_key(&j, "probed");
		json_str(&j, t->probe);
		json_key(&j, "exposed");
		json_bool(&j, t->exposed);
		json_key(&j, "service");
		json_str(&j, t->svc.name);
		json_key(&j, "product");
		json_str(&j, t->svc.product);
		json_key(&j, "version");
		json_str(&j, t->svc.version);
		json_key(&j, "info");
		json_str(&j, t->svc.info);
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
		json_key(&j, "id");
		json_str(&j, x->rule->id);
		json_key(&j, "severity");
		json_str(&j, audit_sev_name(x->rule->sev));
		json_key(&j, "title");
		json_str(&j, x->rule->title);
		json_key(&j, "target");
		json_str(&j, tgt);
		json_key(&j, "port");
		json_uint(&j, t->port);
		json_key(&j, "service");
		json_str(&j, t->svc.name);
		json_key(&j, "product");
		json_str(&j, t->svc.product);
		json_key(&j, "evidence");
		json_str(&j, x->evidence);
		json_key(&j, "fix");
		json_str(&j, x->rule->fix);
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
	json_key(j, "text");
	json_str(j, text);
	json_obj_end(j);
}

int audit_sarif(struct buf *b, const struct audit_result *r)
{
	struct json j;
	char tgt[96], uri[128], msg[1024], own[PROCFS_COMM_MAX + 32];

	json_init(&j, b, 1);
	json_obj_begin(&j);
	json_key(&j, "$schema");
	json_str(&j, SARIF_SCHEMA);
	json_key(&j, "version");
	json_str(&j, "2.1.0");
	json_key(&j, "runs");
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_key(&j, "tool");
	json_obj_begin(&j);
	json_key(&j, "driver");
	json_obj_begin(&j);
	json_key(&j, "name");
	json_str(&j, "loopkit audit");
	json_key(&j, "version");
	json_str(&j, LOOPKIT_VERSION);
	json_key(&j, "rules");
	json_arr_begin(&j);
	for (size_t i = 0; i < audit_nrules; i++) {
		const struct audit_rule *u = &audit_rules[i];
		json_obj_begin(&j);
		json_key(&j, "id");
		json_str(&j, u->id);
		text_obj(&j, "shortDescription", u->title);
		text_obj(&j, "fullDescription", u->why);
		text_obj(&j, "help", u->fix);
		json_key(&j, "defaultConfiguration");
		json_obj_begin(&j);
		json_key(&j, "level");
		json_str(&j, sarif_sev[u->sev].level);
		json_obj_end(&j);
		json_key(&j, "properties");
		json_obj_begin(&j);
		json_key(&j, "security-severity");
		json_str(&j, sarif_sev[u->sev].score);
		json_key(&j, "severity");
		json_str(&j, audit_sev_name(u->sev));
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
		json_key(&j, "ruleId");
		json_str(&j, x->rule->id);
		json_key(&j, "ruleIndex");
		json_uint(&j, (unsigned)(x->rule - audit_rules));
		json_key(&j, "level");
		json_str(&j, sarif_sev[x->rule->sev].level);
		text_obj(&j, "message", msg);
		json_key(&j, "locations");
		json_arr_begin(&j);
		json_obj_begin(&j);
		json_key(&j, "physicalLocation");
		json_obj_begin(&j);
		json_key(&j, "artifactLocation");
		json_obj_begin(&j);
		json_key(&j, "uri");
		json_str(&j, uri);
		json_obj_end(&j);
		json_obj_end(&j);
		json_key(&j, "logicalLocations");
		json_arr_begin(&j);
		json_obj_begin(&j);
		json_key(&j, "name");
		json_str(&j, own);
		json_key(&j, "kind");
		json_str(&j, "process");
		json_obj_end(&j);
		json_arr_end(&j);
		json_obj_end(&j);
		json_arr_end(&j);
		json_key(&j, "properties");
		json_obj_begin(&j);
		json_key(&j, "severity");
		json_str(&j, audit_sev_name(x->rule->sev));
		json_key(&j, "evidence");
		json_str(&j, x->evidence);
		json_key(&j, "fix");
		json_str(&j, x->rule->fix);
		json_key(&j, "service");
		json_str(&j, t->svc.name);
		json_key(&j, "product");
		json_str(&j, t->svc.product);
		json_obj_end(&j);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "invocations");
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_key(&j, "executionSuccessful");
	json_bool(&j, 1);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
