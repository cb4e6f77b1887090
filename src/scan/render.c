/* render.c - a scan's three renderings: the table, JSON, and nmap's XML output format. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "scan/scan.h"

#define C_RED  "\033[31m"
#define C_BOLD "\033[1m"
#define C_OFF  "\033[0m"

/* "nginx 1.22.1 (extra)" */
static void product_text(const struct scan_service *s, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s%s%s", s->product, s->product[0] && s->version[0] ? " " : "", s->version,
	         s->info[0] ? (s->product[0] || s->version[0] ? " (" : "(") : "", s->info,
	         s->info[0] ? ")" : "");
}

/* The PRODUCT column: product, version, info, and "no auth" when it answered without. */
static void product_cell(const struct scan_port *p, char *out, size_t len)
{
	product_text(&p->svc, out, len);
	if (p->svc.noauth)
		strncat(out, out[0] ? ", no auth" : "no auth", len - strlen(out) - 1);
	if (!out[0])
		snprintf(out, len, "-");
}

void scan_print(FILE *f, const struct scan_result *r, int color)
{
	/* the service and product columns are as wide as their widest cell, so that PID and
	 * PROCESS stay in line whatever a product's name (loopkit serve's is 44 wide) */
	int wsvc = 12, wprod = 40;
	char prod[200];
	for (size_t i = 0; i < r->n; i++) {
		int ns = (int)strlen(r->ports[i].svc.name[0] ? r->ports[i].svc.name : "-");
		product_cell(&r->ports[i], prod, sizeof(prod));
		wsvc = ns > wsvc ? ns : wsvc;
		wprod = (int)strlen(prod) > wprod ? (int)strlen(prod) : wprod;
	}
	fprintf(f, "%-10s %-14s %-*s %-*s %-8s %s\n", "PORT", "STATE", wsvc, "SERVICE", wprod, "PRODUCT",
	        "PID", "PROCESS");
	for (size_t i = 0; i < r->n; i++) {
		const struct scan_port *p = &r->ports[i];
		char port[16], pid[16];
		snprintf(port, sizeof(port), "%u/%s", p->port, p->udp ? "udp" : "tcp");
		product_cell(p, prod, sizeof(prod));
		snprintf(pid, sizeof(pid), "%d", (int)p->owner.pid);
		fprintf(f, "%-10s %-14s %-*s %-*s %-8s %s%s%s%s\n", port, p->state, wsvc,
		        p->svc.name[0] ? p->svc.name : "-", wprod, prod, p->owner.pid ? pid : "-",
		        p->owner.pid ? p->owner.comm : "-",
		        p->exposed ? (color ? "  " C_BOLD C_RED "EXPOSED" C_OFF : "  EXPOSED") : "",
		        p->exposed ? " " : "", p->exposed ? p->bound : "");
	}
	for (size_t i = 0; i < r->nrounds; i++)
		fprintf(f, "round %zu: %.3f s, %u descriptors, %lu kB resident\n", i + 1,
		        r->rounds[i].seconds, r->rounds[i].fds, r->rounds[i].rss_kb);
	size_t open[2] = {0, 0}, udp_silent = 0;
	for (size_t i = 0; i < r->n; i++) {
		int u = r->ports[i].udp, answered = strcmp(r->ports[i].state, "open") == 0;
		open[u] += answered;
		udp_silent += u && !answered;
	}
	fprintf(f, "%s: %u TCP port%s in %.3f s: %zu open, %u closed, %u filtered", r->host, r->tried,
	        r->tried == 1 ? "" : "s", r->scan_s, open[0], r->closed, r->filtered);
	if (r->udp_tried)
		fprintf(f, "; %u UDP port%s: %zu open, %zu open|filtered, %u closed", r->udp_tried,
		        r->udp_tried == 1 ? "" : "s", open[1], udp_silent, r->udp_closed);
	if (r->service_s > 0)
		fprintf(f, "; services in %.3f s", r->service_s);
	fputc('\n', f);
}

int scan_json(struct buf *b, const struct scan_result *r)
{
	struct json j;
	size_t open = 0;

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_kstr(&j, "host", r->host);
	json_kstr(&j, "family", r->family == AF_INET6 ? "ipv6" : "ipv4");
	json_kuint(&j, "started", r->started);
	json_key(&j, "scan_seconds");
	json_double_dec(&j, r->scan_s, 3);
	json_key(&j, "service_seconds");
	json_double_dec(&j, r->service_s, 3);
	json_kuint(&j, "tried", r->tried);
	for (size_t i = 0; i < r->n; i++)
		open += !r->ports[i].udp && strcmp(r->ports[i].state, "open") == 0;
	json_kuint(&j, "open", open);
	json_kuint(&j, "closed", r->closed);
	json_kuint(&j, "filtered", r->filtered);
	json_key(&j, "udp");
	if (r->udp_tried) {
		size_t uopen = 0;
		for (size_t i = 0; i < r->n; i++)
			uopen += r->ports[i].udp && strcmp(r->ports[i].state, "open") == 0;
		json_obj_begin(&j);
		json_kuint(&j, "tried", r->udp_tried);
		json_kuint(&j, "open", uopen);
		json_kuint(&j, "open_filtered", (r->udp_tried - r->udp_closed) - uopen);
		json_kuint(&j, "closed", r->udp_closed);
		json_obj_end(&j);
	} else {
		json_null(&j);
	}
	if (r->nrounds) {
		json_key(&j, "rounds");
		json_arr_begin(&j);
		for (size_t i = 0; i < r->nrounds; i++) {
			json_obj_begin(&j);
			json_key(&j, "seconds");
			json_double_dec(&j, r->rounds[i].seconds, 3);
			json_kuint(&j, "fds", r->rounds[i].fds);
			json_kuint(&j, "rss_kb", r->rounds[i].rss_kb);
			json_obj_end(&j);
		}
		json_arr_end(&j);
	}
	json_key(&j, "ports");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->n; i++) {
		const struct scan_port *p = &r->ports[i];
		const struct scan_service *s = &p->svc;
		json_obj_begin(&j);
		json_kuint(&j, "port", p->port);
		json_kstr(&j, "proto", p->udp ? "udp" : "tcp");
		json_kstr(&j, "state", p->state);
		json_kstr(&j, "service", s->name);
		json_kstr(&j, "product", s->product);
		json_kstr(&j, "version", s->version);
		json_kstr(&j, "info", s->info);
		json_kbool(&j, "tls", s->tls);
		json_kbool(&j, "no_auth", s->noauth);
		json_kstr(&j, "method", s->how);
		json_kstr(&j, "banner", s->banner);
		json_kbool(&j, "exposed", p->exposed);
		json_kstr(&j, "bound", p->bound);
		json_key(&j, "owner");
		if (p->owner.pid) {
			json_obj_begin(&j);
			json_kint(&j, "pid", p->owner.pid);
			json_kstr(&j, "user", p->owner.user);
			json_kstr(&j, "comm", p->owner.comm);
			json_kstr(&j, "cmdline", p->owner.cmdline);
			json_kuint(&j, "processes", (unsigned)p->nowners);
			json_obj_end(&j);
		} else {
			json_null(&j);
		}
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}

/* XML attribute text: markup characters escaped, control bytes dropped (XML 1.0
 * cannot carry them at all). */
static int xml_attr(struct buf *b, const char *s)
{
	int rc = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '&')
			rc |= buf_puts(b, "&amp;");
		else if (c == '<')
			rc |= buf_puts(b, "&lt;");
		else if (c == '>')
			rc |= buf_puts(b, "&gt;");
		else if (c == '"')
			rc |= buf_puts(b, "&quot;");
		else if (c >= 0x20 || c == '\t')
			rc |= buf_append(b, s, 1);
	}
	return rc;
}

/* name="value", escaped; failures accumulate in the caller's rc */
#define ATTR(b, name, val) (rc |= buf_puts(b, " " name "=\"") | xml_attr(b, val) | buf_puts(b, "\""))

int scan_nmap_xml(struct buf *b, const struct scan_result *r, const char *args)
{
	char t[64], num[32];
	time_t start = (time_t)r->started, end = start + (time_t)(r->scan_s + r->service_s);
	struct tm tm;
	int rc = 0;

	localtime_r(&start, &tm);
	strftime(t, sizeof(t), "%a %b %e %H:%M:%S %Y", &tm);
	rc |= buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n<nmaprun "
	                  "scanner=\"loopkit\"");
	ATTR(b, "args", args);
	rc |= buf_printf(b, " start=\"%lld\"", (long long)start);
	ATTR(b, "startstr", t);
	rc |= buf_puts(b, " version=\"" LOOPKIT_VERSION "\" xmloutputversion=\"1.05\">\n");
	rc |= buf_printf(b, "<scaninfo type=\"connect\" protocol=\"tcp\" numservices=\"%u\"", r->tried);
	ATTR(b, "services", r->services ? r->services : "");
	rc |= buf_puts(b, "/>\n");
	rc |= buf_printf(b,
	                 "<host starttime=\"%lld\" endtime=\"%lld\"><status state=\"up\" "
	                 "reason=\"localhost-response\" "
	                 "reason_ttl=\"0\"/>\n",
	                 (long long)start, (long long)end);
	rc |= buf_puts(b, "<address");
	ATTR(b, "addr", r->host);
	rc |= buf_printf(b, " addrtype=\"%s\"/>\n<hostnames>\n</hostnames>\n<ports>",
	                 r->family == AF_INET6 ? "ipv6" : "ipv4");
	if (r->closed)
		rc |= buf_printf(
		        b,
		        "<extraports state=\"closed\" count=\"%u\">\n<extrareasons reason=\"conn-refused\" "
		        "count=\"%u\"/>\n</extraports>\n",
		        r->closed, r->closed);
	unsigned listed = 0; /* filtered ports with rows of their own */
	for (size_t i = 0; i < r->n; i++)
		listed += !r->ports[i].udp && strcmp(r->ports[i].state, "filtered") == 0;
	if (r->filtered > listed)
		rc |= buf_printf(
		        b,
		        "<extraports state=\"filtered\" count=\"%u\">\n<extrareasons reason=\"no-responses\" "
		        "count=\"%u\"/>\n</extraports>\n",
		        r->filtered - listed, r->filtered - listed);
	for (size_t i = 0; i < r->n; i++) {
		const struct scan_port *p = &r->ports[i];
		const struct scan_service *s = &p->svc;
		rc |= buf_printf(b,
		                 "<port protocol=\"%s\" portid=\"%u\"><state state=\"%s\" reason=\"%s\" "
		                 "reason_ttl=\"0\"/>",
		                 p->udp ? "udp" : "tcp", p->port, p->state,
		                 strcmp(p->state, "open") != 0 ? "no-response"
		                 : p->udp                      ? "udp-response"
		                                               : "syn-ack");
		if (p->owner.pid) {
			char o[PROCFS_COMM_MAX + 32];
			snprintf(o, sizeof(o), "%s (pid %d)", p->owner.comm, (int)p->owner.pid);
			rc |= buf_puts(b, "<owner");
			ATTR(b, "name", o);
			rc |= buf_puts(b, "/>");
		}
		rc |= buf_puts(b, "<service");
		ATTR(b, "name", s->name[0] ? s->name : "unknown");
		if (s->product[0])
			ATTR(b, "product", s->product);
		if (s->version[0])
			ATTR(b, "version", s->version);
		if (s->info[0])
			ATTR(b, "extrainfo", s->info);
		if (s->tls)
			rc |= buf_puts(b, " tunnel=\"ssl\"");
		snprintf(num, sizeof(num), "%d", s->conf ? s->conf : 3);
		rc |= buf_printf(b, " method=\"%s\" conf=\"%s\"/></port>\n",
		                 s->conf >= 10 ? "probed" : "table", num);
	}
	rc |= buf_puts(b, "</ports>\n</host>\n<runstats>");
	localtime_r(&end, &tm);
	strftime(t, sizeof(t), "%a %b %e %H:%M:%S %Y", &tm);
	rc |= buf_printf(b, "<finished time=\"%lld\"", (long long)end);
	ATTR(b, "timestr", t);
	rc |= buf_printf(
	        b,
	        " elapsed=\"%.2f\" summary=\"loopkit scan done: 1 IP address (1 host up) scanned in %.2f "
	        "seconds\" exit=\"success\"/>",
	        r->scan_s + r->service_s, r->scan_s + r->service_s);
	rc |= buf_puts(b, "<hosts up=\"1\" down=\"0\" total=\"1\"/>\n</runstats>\n</nmaprun>\n");
	return rc ? -1 : 0;
}
