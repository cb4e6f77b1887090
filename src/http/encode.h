/* encode.h - content codings of a response body: gzip, deflate (zlib) and br (Brotli),
 * both ways. */
#ifndef LOOPKIT_HTTP_ENCODE_H
#define LOOPKIT_HTTP_ENCODE_H

#include <stddef.h>

#include "core/buf.h"

enum http_coding { HTTP_CODING_GZIP, HTTP_CODING_DEFLATE, HTTP_CODING_BR };

/* The coding's Content-Encoding token ("gzip", "deflate", "br"). */
const char *http_coding_name(enum http_coding k);

/* Compresses in[0..n) whole into out (appended) with zlib (gzip: RFC 1952; deflate:
 * the zlib format of RFC 1950, as HTTP's "deflate" means) or Brotli (RFC 7932).
 * Returns 0, or -1 when out's limit or memory runs out (out may hold a part), or with
 * errno ENOSYS when the coding's library cannot be loaded (http_encode_missing says why). */
int http_encode(enum http_coding k, const void *in, size_t n, struct buf *out);

/* NULL when the coding's library is loaded (it is, after this call, if it can be);
 * otherwise which library is missing and the package that holds it. */
const char *http_encode_missing(enum http_coding k);

/* The coding a Content-Encoding token names ("gzip", "x-gzip", "deflate", "br", in any
 * case): 0, or -1 for any other. */
int http_coding_parse(const char *p, size_t n, enum http_coding *k);

/* Decompresses the whole body in[0..n) into out (appended), at most max bytes of it
 * (a zip bomb stops there). Returns 0 when all of it was decoded, 1 when it was cut at
 * max, -1 when it is not valid in that coding or its library cannot be loaded (errno
 * ENOSYS). "deflate" takes the zlib format and gzip's too, as browsers do. */
int http_decode(enum http_coding k, const void *in, size_t n, struct buf *out, size_t max);

#endif
