/* ports.h - the sockets of `ports` and `who`, with owners and exposure, as one result. */
#ifndef LOOPKIT_DIAG_PORTS_H
#define LOOPKIT_DIAG_PORTS_H

#include <stdio.h>

#include "core/buf.h"
#include "core/sockdiag.h"
#include "core/procfs.h"

#define DIAG_PORTS_STATES 13 /* TCP_ESTABLISHED .. TCP_NEW_SYN_RECV, index by state */

/* One socket and who holds it. */
struct diag_port_row {
	const struct sockdiag_sock *s;      /* into diag_ports.socks */
	uint64_t key;                       /* sort key: proto, listener, port, family, address */
	int exposed;                        /* bound to a wildcard or non-loopback address */
	const struct procfs_owner **owners; /* into diag_ports.map; ascending pid */
	size_t nowners;                     /* 0: owner not visible (shown as "-") */
};

/* What `ports` and `who` show: the rows, and a count per protocol and state. */
struct diag_ports {
	struct diag_port_row *rows; /* sorted: tcp before udp, port, address */
	size_t nrows;
	size_t count[2][DIAG_PORTS_STATES];     /* [0] tcp, [1] udp; by state */
	struct sockdiag_sock *socks;            /* the kernel's listing, owned */
	const struct procfs_owner **owner_ptrs; /* backing store of rows[].owners */
	struct procfs_owner_map map;
	/* who's view: TCP sockets on the port that no process holds, what the kernel keeps
	 * of closed connections (TIME-WAIT, FIN-WAIT-2, ...): not rows */
	size_t nkernel;
	int kernel_blocks;      /* they keep a listener out: a bind with SO_REUSEADDR to the
	                           address of one failed (it does when it lacked that option) */
	int kernel_twin_blocks; /* else one on 127.0.0.1 or ::1 keeps loopkit's listeners on
	                           the other out: they hold it as their twin, without that option */
	int kernel_state;       /* the state of that one; else TIME-WAIT when one is, else one's */
	struct sockaddr_storage kernel_addr; /* and its local address (v4-mapped unmapped) */
};

#define DIAG_PORTS_TCP        1u
#define DIAG_PORTS_UDP        2u
#define DIAG_PORTS_ALL        4u /* connections too, not only listeners and unconnected UDP */
#define DIAG_PORTS_NO_SUMMARY 8u /* diag_ports_print: no machine-wide counts per state */

/* True for a wildcard or non-loopback local address: reachable from the network. */
int diag_addr_exposed(const struct sockaddr_storage *sa);

/* ss-like filters of `ports`: a local port and a set of states. */
struct diag_ports_filter {
	uint16_t sport;  /* keep sockets whose local port is this; 0: any */
	uint32_t states; /* SOCKDIAG_STATE bits to keep, in place of listeners only; 0: none */
};

/* Parses a --state name as ss(8) spells states ("listen", "established", "time-wait",
 * "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2", "close-wait", "last-ack",
 * "closing", "unconn" for unconnected UDP, "connected" for every state but listen and
 * unconn) into SOCKDIAG_STATE bits. Returns 0, or -1 with err naming the choices. */
int diag_ports_state_parse(const char *name, uint32_t *mask, char *err, size_t errlen);

/* diag_ports_collect for `ports` with filters: f->sport keeps one local port, f->states
 * the sockets in those states (listeners and connections alike). */
int diag_ports_collect_filtered(struct diag_ports *p, unsigned flags, const struct diag_ports_filter *f,
                                char *err, size_t errlen);

/* Lists sockets per flags (DIAG_PORTS_TCP and/or _UDP, neither meaning both; plus
 * DIAG_PORTS_ALL) and maps them to processes. With port nonzero keeps only sockets
 * whose local port is port, in every state that has an owner (who's view).
 * Returns 0 with *p filled (free with diag_ports_free), or -1 with err filled and
 * *p empty. */
int diag_ports_collect(struct diag_ports *p, unsigned flags, uint16_t port, char *err, size_t errlen);
void diag_ports_free(struct diag_ports *p);

/* Renderings of one result. color: ANSI colour for EXPOSED and states. */
void diag_ports_print(FILE *f, const struct diag_ports *p, unsigned flags, int color);
/* {"sockets":[...],"counts":{"tcp":{"LISTEN":n,...},"udp":{...}}}; returns 0 or -1
 * when the buffer limit was hit. */
int diag_ports_json(struct buf *b, const struct diag_ports *p);

/* who: processes holding the port, then their sockets. */
void diag_who_print(FILE *f, const struct diag_ports *p, uint16_t port, int color);
/* {"port":N,"free":bool,"processes":[{pid,user,uid,comm,cmdline,sockets:[...]}],
 * "sockets":[...]} ; 0 or -1 on the buffer limit. */
int diag_who_json(struct buf *b, const struct diag_ports *p, uint16_t port);

/* True when stdout-like stream f should get colour: a TTY and NO_COLOR unset. */
int diag_color_ok(FILE *f);

#endif
