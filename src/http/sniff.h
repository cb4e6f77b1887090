/* sniff.h - classifies the first bytes of a connection on the shared port. */
#ifndef LOOPKIT_HTTP_SNIFF_H
#define LOOPKIT_HTTP_SNIFF_H

#include <stddef.h>

#define HTTP_SNIFF_NEED_MORE 0 /* no bytes yet */
#define HTTP_SNIFF_HTTP      1 /* printable text or line ends: the HTTP parser takes it */
#define HTTP_SNIFF_TLS       2 /* a TLS handshake record (ClientHello) */
#define HTTP_SNIFF_OTHER     3 /* neither HTTP nor FTP: close */

/* Classifies the first n bytes a client sent, p[0..n). An HTTP request starts with a
 * method token (or stray CRLFs), so printable text is HTTP (the parser answers 400
 * or 501 if it is not valid); 0x16 followed by 0x03 (or alone) is TLS. FTP clients
 * send nothing first, so silence is handled by the caller, not here. Pure: reads at
 * most the first two bytes, no allocation. Returns one of HTTP_SNIFF_*. */
int http_sniff_classify(const unsigned char *p, size_t n);

#endif
