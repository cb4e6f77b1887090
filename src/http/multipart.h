/* multipart.h - header parameters and multipart/form-data bodies (RFC 7578): pure parsers. */
#ifndef LOOPKIT_HTTP_MULTIPART_H
#define LOOPKIT_HTTP_MULTIPART_H

#include <stddef.h>

#include "http/parse.h"

#define HTTP_MP_MAX_BOUNDARY 70   /* RFC 2046 5.1.1: a boundary is 1 to 70 characters */
#define HTTP_MP_MAX_HEAD     8192 /* the header block of one part */

/* Finds parameter name (case-insensitive) in a header value made of items separated
 * by sep: "form-data; name=\"a\"" (sep ';') or an auth-param list "a=1, b=\"x\"" (sep
 * ','). The first item is skipped when it has no '=' (the type or the scheme).
 * *out gets the value: a token as it is, a quoted-string without its quotes but
 * with its backslash escapes still in (http_param_unquote takes them out). Returns 0,
 * or -1 when the parameter is absent or the list is malformed before it. */
int http_param_find(struct http_slice v, char sep, const char *name, struct http_slice *out);

/* Copies a quoted-string's inside (from http_param_find) into out without its
 * backslash escapes. Returns the length, or -1 when it does not fit outsz (out is
 * not terminated). */
long http_param_unquote(struct http_slice s, char *out, size_t outsz);

/* One part of a multipart/form-data body. Slices point into the body. */
struct http_mp_part {
	struct http_slice name;     /* Content-Disposition's name, escapes still in */
	struct http_slice filename; /* its filename; p is NULL when the part has none */
	struct http_slice type;     /* the part's Content-Type; len 0 when absent */
	struct http_slice data;     /* the part's content */
};

/* Iterator over the parts of one body. */
struct http_mp {
	const char *p, *end;                  /* what is left of the body */
	char delim[HTTP_MP_MAX_BOUNDARY + 4]; /* "\r\n--" + boundary */
	size_t dlen;
	int started;
	int done; /* 1: closed; -1: malformed (every later call says so again) */
};

/* Prepares m for body[0..len) with the boundary of a Content-Type value
 * ("multipart/form-data; boundary=xyz"). Returns 0, or -1 when the type is not
 * multipart/form-data or its boundary is missing, empty or longer than
 * HTTP_MP_MAX_BOUNDARY. */
int http_multipart_init(struct http_mp *m, struct http_slice content_type, const char *body, size_t len);

/* The next part into *part. Returns 1, 0 after the closing delimiter, or -1 when the
 * body is malformed: no opening delimiter, a part without a blank line after its
 * headers (or with over HTTP_MP_MAX_HEAD bytes of them), no closing delimiter, a
 * part without Content-Disposition: form-data and a name; once -1, always -1. A
 * delimiter is only one followed by "--" or a line end ("--bx" is data when the
 * boundary is "b"). What follows the closing
 * delimiter (the epilogue) is ignored, and so is the preamble before the first. */
int http_multipart_next(struct http_mp *m, struct http_mp_part *part);

#endif
