/* proxy.h - `loopkit proxy`: fault-injecting TCP/HTTP proxies with toxiproxy's control API. */
#ifndef LOOPKIT_PROXY_PROXY_H
#define LOOPKIT_PROXY_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define PROXY_API_DEFAULT   "127.0.0.1:8474" /* toxiproxy's API address */
#define PROXY_NAME_MAX      64               /* a proxy's or a toxic's name, bytes */
#define PROXY_ADDR_MAX      272              /* "host:port" of a listen or upstream address */
#define PROXY_BARE_HOST     "127.0.0.1"      /* the host of an address given as a port alone */
#define PROXY_ERR_MAX       2048             /* an error message with its addresses and a port's holders */
#define PROXY_MAX_PROXIES   256              /* proxies one server holds */
#define PROXY_MAX_TOXICS    32               /* toxics on one proxy (both directions) */
#define PROXY_MAX_CONNS     100000           /* proxied connection pairs, all proxies */
#define PROXY_CHAIN_MAX     (256 * 1024)     /* bytes held per direction when toxics need them */
#define PROXY_READ_MAX      (32 * 1024)      /* bytes read as one chunk (toxiproxy's copy buffer) */
#define PROXY_LINGER_MS     2000        /* after a toxic closes a connection, input is drained this long */
#define PROXY_CONNECT_MS    10000       /* an upstream that does not answer is given up after this */
#define PROXY_HALF_CLOSE_MS 10000       /* half-closed and quiet this long: ends if the FIN's sender closed */
#define PROXY_HAR_BODY_MAX  (64 * 1024) /* body bytes kept per HAR entry; longer ones are cut and marked */
#define PROXY_CONFIG_MAX    (1024 * 1024) /* largest --config file */
/* The summary at exit, bytes: at most 512 proxies (live and deleted) of under 100 toxic
 * entries (32 live, 32 removed names, one per type and stream beyond), each under 500
 * bytes once a name's every byte is escaped (\u003c); test_proxy fills every bound with
 * such names (18 MB of JSON) and checks it fits. */
#define PROXY_SUMMARY_MAX   (32 * 1024 * 1024)
#define PROXY_BUSY_POLL_US  200    /* default of --busy-poll (see loop_set_busy_poll) */
#define PROXY_BUSY_POLL_MAX 100000 /* the most --busy-poll allows, µs */

/* What the verb asks for. Strings are borrowed for the server's life. */
struct proxy_opts {
	const char *api;           /* control API "host:port"; NULL or "" for none */
	const char *config;        /* toxiproxy -config file (a JSON array of proxies); NULL */
	const char *name;          /* the command-line proxy's name */
	const char *listen;        /* its listen address; NULL: 127.0.0.1 and a free port */
	const char *upstream;      /* its upstream; NULL: no command-line proxy */
	const char *const *toxics; /* --toxic SPECs for it */
	size_t ntoxics;
	const char *preset;      /* --preset NAME for it; NULL */
	const char *const *more; /* --proxy NAME=[LISTEN,]UPSTREAM: more proxies */
	size_t nmore;
	int http;              /* treat every proxy's traffic as HTTP/1.x without detecting it */
	int public;            /* listen addresses beyond loopback allowed */
	int allow_remote;      /* upstreams beyond loopback allowed */
	const char *record;    /* HAR file; NULL */
	const char *pcap;      /* pcap file; NULL */
	int hexdump;           /* both directions, live, on stdout */
	int quiet;             /* no connection log on stderr */
	uint64_t seed;         /* random seed (0: from the clock) */
	unsigned busy_poll_us; /* loop_set_busy_poll: polls this long before sleeping once busy (0: off) */
};

struct proxy_server;

/* Creates the server: opens the API listener, loads the config file, creates the
 * command-line proxy. Returns NULL with the reason and the fix in err (exit status
 * in *code: 2 for bad input, 1 when something could not be opened). */
struct proxy_server *proxy_server_new(const struct proxy_opts *o, char *err, size_t errlen, int *code);
/* Writes one line per proxy ("name  listen -> upstream") and the API URL to buf. */
void proxy_server_describe(const struct proxy_server *s, int json, struct buf *out);
/* Runs until SIGINT or SIGTERM. Returns 0, or -1 when the loop failed. */
int proxy_server_run(struct proxy_server *s);
/* The summary: per proxy, connections, bytes each way and toxics applied (removed
 * toxics and deleted proxies too, bounded); human text or one JSON document (two
 * renderings of one result). */
void proxy_server_summary(const struct proxy_server *s, int json, struct buf *out);
/* Closes every connection and listener and frees the server. */
void proxy_server_free(struct proxy_server *s);

/* The names of the presets and toxic types, for --help: "gprs, edge, ...". */
const char *proxy_preset_names(void);
const char *proxy_toxic_names(void);

#endif
