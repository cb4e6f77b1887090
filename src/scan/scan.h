/* scan.h - `loopkit scan`: a connect scan on the event loop, service detection, owners, and its renderings.
 */
#ifndef LOOPKIT_SCAN_SCAN_H
#define LOOPKIT_SCAN_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/procfs.h"

/* Limits and defaults (docs/scan.md gives the reasoning of each). */
#define SCAN_INFLIGHT_DEFAULT   4096  /* connects in flight at once */
#define SCAN_INFLIGHT_MAX       32768 /* --max-inflight bound; also capped by RLIMIT_NOFILE */
#define SCAN_FD_RESERVE         64    /* descriptors kept free for everything else */
#define SCAN_CONNECT_MS_DEFAULT 1000  /* no answer to a SYN within this: "filtered" */
#define SCAN_BANNER_MS_DEFAULT  300   /* silence after connect before the first probe is sent */
#define SCAN_PROBE_MS_DEFAULT   1000  /* most a probe waits for its answer */
#define SCAN_PARALLEL_DEFAULT   16    /* ports probed at once (service detection, audit) */
#define SCAN_PARALLEL_MAX       256
#define SCAN_READ_MAX           16384 /* bytes kept of one answer; the rest is not read */
#define SCAN_REMOTE_RATE        1000  /* connects/s toward a non-loopback target unless --rate */
#define SCAN_UDP_MS_DEFAULT     500   /* wait for a UDP answer or ICMP port unreachable */
#define SCAN_UDP_MAX            1024  /* ports one --udp list may name */
#define SCAN_PORTS              65536 /* size of a port bitmap (port 0 never set) */
#define SCAN_FILTERED_LIST_MAX  100   /* filtered ports listed one by one (more: counted only) */

/* A set of ports: "22,80,8000-9000" (pure parser; see scan_ports_parse). */
struct scan_ports {
	uint64_t bits[SCAN_PORTS / 64];
	unsigned count;
};

/* Parses a list of ports and ranges ("80", "8000-9000", "22,80,443-445") into *out.
 * Pure. Returns 0, or -1 with the reason in err ("'70000' is more than 65535"). */
int scan_ports_parse(const char *s, struct scan_ports *out, char *err, size_t errlen);
static inline int scan_ports_has(const struct scan_ports *p, unsigned port)
{
	return port < SCAN_PORTS && (p->bits[port / 64] >> (port % 64) & 1);
}
/* Adds port (< SCAN_PORTS) to the set, counted once. */
static inline void scan_ports_add(struct scan_ports *p, unsigned port)
{
	if (!scan_ports_has(p, port)) {
		p->bits[port / 64] |= UINT64_C(1) << (port % 64);
		p->count++;
	}
}
/* Writes the set back in its shortest form ("22,80,8000-9000"); returns out. */
char *scan_ports_text(const struct scan_ports *p, char *out, size_t len);

/* What a port runs, as far as banners and probes tell. */
struct scan_service {
	char name[24];    /* nmap's service names: http, ftp, ssh, redis, ... ; "unknown" */
	char product[48]; /* "nginx", "vsftpd", "Redis", "loopkit serve", "Chrome DevTools" */
	char version[32]; /* "1.22.1", or "" */
	char info[96];    /* extra facts: "HTTP and FTP on one port", "auth required" */
	int tls;          /* the port answered a TLS ClientHello */
	int app;          /* enum scan_app below */
	int conf;         /* nmap's confidence: 10 from a probe answer, 3 from the port alone */
	char banner[128]; /* the first line the service sent unasked, log-safe; or "" */
	char how[24];     /* the probe that told: "banner", "http-get", "redis-ping", ... */
	/* Facts the audit reads (filled while identifying, so no probe runs twice). */
	int http_status;    /* status of GET / (0: not HTTP) */
	char http_path[32]; /* a path that answered 2xx (the rebinding test repeats it); "" */
	int noauth;         /* the service answered a read command without credentials */
	char noauth_evidence[160];
};

/* Applications recognised on top of a protocol (each is a row in the probe tables). */
enum scan_app {
	SCAN_APP_NONE,
	SCAN_APP_DOCKER,
	SCAN_APP_DEVTOOLS,
	SCAN_APP_JUPYTER,
	SCAN_APP_ELASTIC,
	SCAN_APP_REDIS,
	SCAN_APP_MEMCACHED,
	SCAN_APP_LOOPKIT,
};

/* One open (or, with UDP, open|filtered) port. */
struct scan_port {
	uint16_t port;
	int udp;                   /* 0 tcp, 1 udp */
	const char *state;         /* "open", "filtered" (tcp, no answer), "open|filtered" (udp) */
	struct scan_service svc;   /* filled with --service (the default) */
	int exposed;               /* a listener on this port is bound beyond loopback */
	char bound[64];            /* the listener's own address: "0.0.0.0:8000", or "" */
	struct procfs_owner owner; /* pid 0: unknown */
	int nowners;               /* processes holding the listener (TCP) or bound socket (UDP) */
};

struct scan_config {
	struct sockaddr_storage addr; /* the target (port ignored) */
	socklen_t addrlen;
	char host[64];           /* as given, for the renderings */
	struct scan_ports ports; /* TCP ports to try */
	struct scan_ports udp;   /* UDP ports to try (count 0: none) */
	unsigned inflight;       /* connects in flight, all threads together */
	unsigned threads; /* connect-scan threads (procfs_cpus() by default); a rate-limited scan uses one */
	unsigned connect_ms, banner_ms, probe_ms, udp_ms;
	unsigned parallel; /* ports probed at once */
	unsigned rate;     /* new connections per second; 0: no limit */
	unsigned rounds;   /* connect scans to run (benchmarks); services after the last */
	int service;       /* identify services (banner + probes) */
	int owners;        /* look up owning processes */
};

/* Fills cfg with the defaults: 127.0.0.1, every port, services and owners on. */
void scan_config_default(struct scan_config *cfg);
/* Sets the target from text ("127.0.0.1", "::1", "localhost"). Refuses a non-loopback
 * address unless allow_remote (then the default rate becomes SCAN_REMOTE_RATE when
 * cfg->rate is 0). Returns 0, or -1 with the reason and the fix in err. */
int scan_config_target(struct scan_config *cfg, const char *host, int allow_remote, char *err, size_t errlen);

/* One round of a repeated connect scan, and what the process held after it. */
struct scan_round {
	double seconds;
	unsigned fds;         /* open descriptors */
	unsigned long rss_kb; /* resident set size */
};

#define SCAN_ROUNDS_MAX 1000

struct scan_result {
	struct scan_port *ports; /* ascending: tcp, then udp; port */
	size_t n;
	unsigned closed;     /* refused (RST) */
	unsigned filtered;   /* no answer within connect_ms */
	unsigned tried;      /* TCP ports tried */
	unsigned udp_tried;  /* UDP ports tried (--udp) */
	unsigned udp_closed; /* UDP ports that answered port unreachable (not listed) */
	double scan_s;       /* wall time of the connect scan */
	double service_s;    /* wall time of service detection */
	uint64_t started;    /* unix time */
	char host[64];
	int family;                /* AF_INET or AF_INET6 */
	struct scan_round *rounds; /* cfg->rounds of them when more than one */
	char *services;            /* the TCP ports tried, as scan_ports_text writes them */
	size_t nrounds;
};

/* Runs the scan cfg describes: the connect scan (and UDP list), then owners and
 * services of the open ports. Returns 0 with *r filled (free with scan_result_free), or
 * -1 with err filled ("cannot create an event loop: ...") and *r empty. */
int scan_run(const struct scan_config *cfg, struct scan_result *r, char *err, size_t errlen);
/* Frees what scan_run allocated and empties *r; safe on an empty result. */
void scan_result_free(struct scan_result *r);

/* The connect scan alone: marks in *open the TCP ports of cfg->ports that accepted a
 * connection and in *filt those that did not answer; counts refused and unanswered
 * ports in *closed (filt->count counts the others). Returns 0, or -1 with err filled. */
int scan_connect_run(const struct scan_config *cfg, struct scan_ports *open, struct scan_ports *filt,
                     unsigned *closed, char *err, size_t errlen);

/* Identifies the service on port (TCP) of the target in cfg, filling *svc. Blocking,
 * bounded by cfg's banner and probe times per probe. Thread-safe. */
void scan_service_detect(const struct scan_config *cfg, uint16_t port, struct scan_service *svc);

/* Renderings of one result: the table (color: ANSI colour for EXPOSED), and JSON into b
 * (returns 0, or -1 when b's limit was hit). */
void scan_print(FILE *f, const struct scan_result *r, int color);
int scan_json(struct buf *b, const struct scan_result *r);
/* nmap's XML output format (nmap.dtd, xmloutputversion 1.05) into b; args is the command
 * line it names. Returns 0, or -1 when b's limit was hit. */
int scan_nmap_xml(struct buf *b, const struct scan_result *r, const char *args);

/* Runs fn(i, arg) for i in [0, n) on at most parallel threads at once; returns when
 * all are done. Used by service detection and the audit. */
void scan_pool_run(size_t n, unsigned parallel, void (*fn)(size_t i, void *arg), void *arg);

#endif
