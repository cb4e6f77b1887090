/* digest.h - HTTP Digest access authentication (RFC 7616): credentials and responses. */
#ifndef LOOPKIT_HTTP_DIGEST_H
#define LOOPKIT_HTTP_DIGEST_H

#include <stddef.h>

#include "http/parse.h"

/* The algorithms, in RFC 7616's names (SHA-512 as httpbin offers it, beside the
 * RFC's own). */
enum http_digest_alg { HTTP_DIGEST_MD5, HTTP_DIGEST_SHA256, HTTP_DIGEST_SHA512, HTTP_DIGEST_NALG };

#define HTTP_DIGEST_HEX_MAX 129 /* the longest hash in hex (SHA-512), and its NUL */

/* The parameters of an Authorization: Digest header. Slices point into the header;
 * quoted values keep their backslash escapes (http_param_unquote). */
struct http_digest_creds {
	struct http_slice username, realm, nonce, uri, response, algorithm, cnonce, nc, qop, opaque;
	int userhash; /* userhash=true: username is H(user:realm) */
};

/* The name of an algorithm ("MD5", "SHA-256", "SHA-512"). */
const char *http_digest_alg_name(enum http_digest_alg a);
/* An algorithm from its name, "-sess" variants included (*sess set). Returns 0, or
 * -1 for a name not in the table. */
int http_digest_alg_parse(const char *name, size_t n, enum http_digest_alg *a, int *sess);

/* Parses an Authorization value "Digest k=v, k=\"v\", ...". Returns 0, or -1 when
 * the scheme is not Digest or a required parameter (username, realm, nonce, uri,
 * response) is missing, or qop is given without cnonce and nc. */
int http_digest_parse(struct http_slice v, struct http_digest_creds *c);

/* H(data) in lower-case hex into out (HTTP_DIGEST_HEX_MAX bytes), terminated. */
void http_digest_hash(enum http_digest_alg a, const void *data, size_t n, char *out);

/* The response a client knowing pass must send for these credentials (RFC 7616
 * 3.4.1): algorithm a (sess: its -sess form), the request's method and target, and
 * for qop=auth-int its body. The realm, nonce, cnonce, nc and qop come from c; so
 * does the uri, which the caller compares with the request's target. Writes hex into
 * out (HTTP_DIGEST_HEX_MAX bytes). Returns 0, or -1 when a value is too long
 * or Nettle cannot be loaded. */
int http_digest_response(const struct http_digest_creds *c, enum http_digest_alg a, int sess,
                         const char *user, const char *pass, struct http_slice method, const char *body,
                         size_t body_len, char *out);

#endif
