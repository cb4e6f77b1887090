/* peer.h - who is at the other end of a loopback TCP connection. */
#ifndef LOOPKIT_DIAG_PEER_H
#define LOOPKIT_DIAG_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* For a connection we accepted (our address local, theirs peer), finds the inode of
 * the peer's own socket, which exists on this machine when the peer is on loopback.
 * One exact NETLINK_SOCK_DIAG lookup, no dump. Returns 0, or -1 (not local, gone). */
int diag_peer_inode(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                    uint32_t *inode);
/* The same lookup, for the uid that owns the peer's socket. Returns 0 or -1. */
int diag_peer_uid(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                  uint32_t *uid);

/* Is socket inode held by a web browser's process: one named like a browser
 * (Chromium, Chrome, Firefox, Edge, Brave, Opera, Vivaldi, WebKit, QtWebEngine), or
 * any Chromium-based program's network-service process (Electron apps included)?
 * Only such processes' descriptor tables are searched, so the cost is two small
 * reads per process (comm, cmdline) plus the browsers' tables. Returns 1 and the
 * process name in name, or 0. */
int diag_inode_is_browser(uint32_t inode, char *name, size_t len);

/* The browser processes on the machine, listed at most once per max_age_ms: a burst
 * of silent connections then costs one /proc scan, not one each. */
#define DIAG_BROWSERS_MAX 128
struct diag_browsers {
	uint64_t at_ms;                   /* when listed (caller's clock); 0: never */
	size_t n;
	pid_t pid[DIAG_BROWSERS_MAX];
	char name[DIAG_BROWSERS_MAX][16];
};

/* Lists browsers again when the list is older than max_age_ms at now_ms. Returns how
 * many there are. */
size_t diag_browsers_refresh(struct diag_browsers *b, uint64_t now_ms, uint64_t max_age_ms);
/* Does a listed browser hold socket inode? Returns 1 and its name, or 0. */
int diag_browsers_hold(const struct diag_browsers *b, uint32_t inode, char *name, size_t len);

#endif
