/* reach.h - how people reach a local server: the address it may listen on, why a bind
 * failed (and who holds the port), its URLs, and opening one in a browser. */
#ifndef LOOPKIT_DIAG_REACH_H
#define LOOPKIT_DIAG_REACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define REACH_MAX_URLS 32   /* URLs listed for a wildcard address (one per interface address) */
#define REACH_URL_MAX  80   /* "http://[full IPv6]:65535/" fits */
#define REACH_MSG_MAX  1024 /* a reach_check_host or reach_bind_error message fits whole */

/* Turns host (an IP literal, [v6] or localhost) and port into *ss for listening. Refuses
 * what would fail later or surprise: a name, an IPv4-mapped IPv6 address, and a wildcard
 * or non-loopback address unless public (what names what would be exposed). flag is
 * the caller's flag that took host ("--api"), named in msg, or NULL when the caller
 * names the address itself. Returns 0; 1 with a warning in msg (public and reachable
 * from the network); -1 with the reason and the fix in msg. */
int reach_check_listen(const char *flag, const char *host, uint16_t port, int public, const char *what,
                       struct sockaddr_storage *ss, socklen_t *len, char *msg, size_t msglen);
/* reach_check_listen for a --host flag (serve's, watch's). */
int reach_check_host(const char *host, uint16_t port, int public, const char *what,
                     struct sockaddr_storage *ss, socklen_t *len, char *msg, size_t msglen);

/* Explains a failed bind of sa (eno its errno, detail the low-level text): who holds
 * the port (EADDRINUSE), privileged ports (EACCES), and what to try: free_fix is what
 * the caller's user types for a free port ("--api 127.0.0.1:0"). Writes msg
 * (REACH_MSG_MAX bytes hold it whole when detail is net_listen's error). */
void reach_bind_explain(const struct sockaddr *sa, uint16_t port, int eno, const char *detail,
                        const char *free_fix, char *msg, size_t msglen);
/* reach_bind_explain for a --port flag (serve's, watch's): "try --port 0". */
void reach_bind_error(const struct sockaddr *sa, uint16_t port, int eno, const char *detail, char *msg,
                      size_t msglen);

/* The URLs a listener on sa (bound to port) answers on: one, or for a wildcard one per
 * up interface address of that family (getifaddrs; loopback first, no link-local).
 * scheme is "http" or "ftp". Returns how many it wrote into urls (at most max). */
size_t reach_urls(const struct sockaddr *sa, uint16_t port, const char *scheme, char (*urls)[REACH_URL_MAX],
                  size_t max);

/* Opens url in the user's browser: the first entry of $BROWSER (colon-separated) that
 * starts, else xdg-open. An entry is a command line split into words as a shell splits
 * them (quotes, backslashes; no shell runs), its "%s" replaced
 * by the URL (appended when there is none; "%%" is a percent sign), at most
 * REACH_BROWSER_ARGS words. Its stdin and stdout go to /dev/null, and a detached thread
 * reaps it. Returns 0, or -1 with the reason in err (the program is missing, ...). */
#define REACH_BROWSER_ARGS 16
int reach_open(const char *url, char *err, size_t errlen);

#endif
