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

/* Is socket inode held by a web browser's process: one named like a browser
 * (Chromium, Chrome, Firefox, Edge, Brave, Opera, Vivaldi, WebKit, QtWebEngine), or
 * any Chromium-based program's network-service process (Electron apps included)?
 * Only such processes' descriptor tables are searched, so the cost is two small
 * reads per process (comm, cmdline) plus the browsers' tables. Returns 1 and the
 * process name in name, or 0. */
int diag_inode_is_browser(uint32_t inode, char *name, size_t len);

#endif
