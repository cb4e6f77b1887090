/* proxy.c - `loopkit proxy`: flags in, proxies with toxiproxy's API out, a summary at exit. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "proxy/proxy.h"

struct proxy_args {
	struct proxy_opts o;
	const char *arg1, *arg2; /* [LISTEN] UPSTREAM */
	struct cmd_list toxics, more;
	int json;
};
#define AT(f) CMD_AT(struct proxy_args, f)

/* clang-format off */
static const struct cmd_flag proxy_flags[] = {
	{ "LISTEN", 0, NULL, NULL, "address to listen on (HOST:PORT, or PORT on 127.0.0.1); with one address given, that one is UPSTREAM and LISTEN is 127.0.0.1 and a free port outside the ephemeral range", CMD_STR, AT(arg1), .attr = CMD_ARG },
	{ "UPSTREAM", 0, NULL, NULL, "where connections go (HOST:PORT, or PORT on 127.0.0.1; a lone address is UPSTREAM); without it only --config and the API make proxies", CMD_STR, AT(arg2), .attr = CMD_ARG },
	{ "toxic", 0, "SPEC", NULL, "add a toxic: TYPE[:NAME][,ATTR=VALUE]... with stream= and toxicity= too (repeatable; the types and their attributes: docs/proxy.md, \"Toxics\")", CMD_LIST, AT(toxics) },
	{ "preset", 0, "NAME", NULL, "a measured link: gprs, edge, 3g, dialup, dsl-poor, dsl, wifi, satellite", CMD_STR, AT(o.preset) },
	{ "name", 0, "NAME", "proxy", "the name of the proxy made from LISTEN and UPSTREAM (API paths use it)", CMD_STR, AT(o.name) },
	{ "proxy", 0, "NAME=[LISTEN,]UPSTREAM", NULL, "another proxy (repeatable; --toxic and --preset act on LISTEN UPSTREAM's only)", CMD_LIST, AT(more) },
	{ "config", 0, "FILE", NULL, "proxies from a toxiproxy -config file (a JSON array of name, listen, upstream, enabled)", CMD_STR, AT(o.config) },
	{ "api", 0, "ADDR", PROXY_API_DEFAULT, "toxiproxy's control API on this loopback HOST:PORT; 'off' for none", CMD_STR, AT(o.api) },
	{ "http", 0, NULL, NULL, "frame HTTP/1.x on every connection from the start, so HTTP toxics added later act on open ones too", CMD_SWITCH, AT(o.http) },
	{ "record", 0, "FILE", NULL, "write HTTP exchanges to FILE as HAR 1.2", CMD_STR, AT(o.record) },
	{ "pcap", 0, "FILE", NULL, "write the relayed bytes to FILE as a pcap of TCP streams (tcpdump -r, tshark -r)", CMD_STR, AT(o.pcap) },
	{ "hexdump", 0, NULL, NULL, "print both directions live on stdout", CMD_SWITCH, AT(o.hexdump) },
	{ "public", 0, NULL, NULL, "allow listen addresses beyond loopback (reachable from the network)", CMD_SWITCH, AT(o.public) },
	{ "allow-remote", 0, NULL, NULL, "allow upstreams beyond loopback", CMD_SWITCH, AT(o.allow_remote) },
	{ "busy-poll", 0, "USEC", CMD_STR_OF(PROXY_BUSY_POLL_US), "once connections come this often, poll this many microseconds before sleeping: waking a sleeping proxy costs its clients' CPU more (0: always sleep)", CMD_UINT, AT(o.busy_poll_us), .max = PROXY_BUSY_POLL_MAX },
	{ "seed", 0, "N", "0", "seed of the random choices (toxicity, jitter, loss); 0 picks one", CMD_UINT, AT(o.seed) },
	{ "json", 0, NULL, NULL, "JSON lines on stdout: the proxies and the API at start, the summary at exit", CMD_SWITCH, AT(json) },
	{ "quiet", 'q', NULL, NULL, "no connection errors on stderr", CMD_SWITCH, AT(o.quiet) },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint proxy_hints[] = {
        {"-config", "toxiproxy's -config FILE is --config FILE here"},
        {"-host", "the API address is --api HOST:PORT here (toxiproxy's -host and -port)"},
        {"-port", "the API address is --api HOST:PORT here (toxiproxy's -host and -port)"},
        {0},
};

static int proxy_main(void *p)
{
	struct proxy_args *a = p;
	char err[PROXY_ERR_MAX];
	int code;
	a->o.upstream = a->arg2 ? a->arg2 : a->arg1;
	a->o.listen = a->arg2 ? a->arg1 : NULL;
	a->o.toxics = a->toxics.v;
	a->o.ntoxics = a->toxics.n;
	a->o.more = a->more.v;
	a->o.nmore = a->more.n;
	if (!strcmp(a->o.api, "off"))
		a->o.api = NULL;
	if (a->json && a->o.hexdump) {
		fprintf(stderr, "loopkit proxy: --hexdump prints on stdout, where --json's lines go: "
		                "give one of them\n");
		return 2;
	}
	if (!a->o.upstream && !a->o.config && !a->o.api && !a->o.nmore) {
		fprintf(stderr,
		        "loopkit proxy: nothing to do: give UPSTREAM, --proxy, --config FILE or an --api\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	net_raise_nofile();
	struct proxy_server *s = proxy_server_new(&a->o, err, sizeof err, &code);
	if (!s) {
		cmd_error("proxy", err);
		return code;
	}
	struct buf out;
	buf_init(&out, PROXY_SUMMARY_MAX);
	proxy_server_describe(s, a->json, &out);
	fwrite(buf_start(&out) ? buf_start(&out) : "", 1, buf_used(&out), stdout);
	fflush(stdout);
	int rc = proxy_server_run(s);
	buf_consume(&out, buf_used(&out));
	proxy_server_summary(s, a->json, &out);
	fwrite(buf_start(&out) ? buf_start(&out) : "", 1, buf_used(&out), stdout);
	fflush(stdout);
	buf_free(&out);
	proxy_server_free(s);
	return rc < 0 ? 1 : 0;
}

const struct cmd_verb cmd_proxy = {
        .name = "proxy",
        .summary = "fault-injecting TCP/HTTP proxy with toxiproxy's API, HAR and pcap recording",
        .about = "Forwards TCP from LISTEN to UPSTREAM and injects faults (toxics): latency, bandwidth,\n"
                 "resets, timeouts, slicing, data limits, loss-like stalls, corruption, and HTTP faults\n"
                 "(failed requests, delays, header changes, cut responses). toxiproxy's control API\n"
                 "listens on " PROXY_API_DEFAULT " (existing toxiproxy clients work unchanged). The first\n"
                 "lines on stdout name each proxy and the API; a summary follows at exit.\n",
        .flags = proxy_flags,
        .size = sizeof(struct proxy_args),
        .run = proxy_main,
        .hints = proxy_hints,
        .examples = "$ loopkit proxy 127.0.0.1:5432\n"
                    "$ loopkit proxy 127.0.0.1:15432 127.0.0.1:5432 --toxic latency,latency=100,jitter=10\n"
                    "$ loopkit proxy 127.0.0.1:8080 --preset 3g --record trace.har\n"
                    "$ loopkit proxy --config toxiproxy.json\n",
};
