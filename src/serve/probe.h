/* probe.h - the sniffer's table: which protocol a connection's first bytes name. */
#ifndef LOOPKIT_SERVE_PROBE_H
#define LOOPKIT_SERVE_PROBE_H

#include <stddef.h>

#define SNIFF_NEED_MORE (-1) /* no bytes yet */
#define SNIFF_UNKNOWN   (-2) /* no row matches: neither HTTP nor TLS (nor FTP, whose clients wait) */

enum sniff_proto {
	SNIFF_HTTP, /* printable text or line ends: the HTTP parser takes it */
	SNIFF_TLS,  /* a TLS handshake record (ClientHello) */
};

/* One row: a pure test of the first bytes, in table order, like sslh's probes. */
struct sniff_probe {
	const char *name;
	/* 1: these bytes are this protocol's; 0: they are not; -1: more bytes needed. */
	int (*match)(const unsigned char *p, size_t n);
	enum sniff_proto proto;
};

extern const struct sniff_probe sniff_probes[];
extern const size_t sniff_nprobes;

/* Classifies the first n bytes a client sent, p[0..n). FTP clients send nothing
 * first, so silence is the caller's business, not this table's. Pure: reads at most
 * the first two bytes, no allocation. Returns the index of the matching row,
 * SNIFF_NEED_MORE or SNIFF_UNKNOWN. */
int sniff_classify(const unsigned char *p, size_t n);

#endif
