/* parse.h - pure HTTP/1.x parsers: request head, chunked bodies, ranges, dates, paths. */
#ifndef LOOPKIT_HTTP_PARSE_H
#define LOOPKIT_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "core/errors.h"

/* Limits of a request head. Each is hit by a test. */
#define HTTP_MAX_HEAD    (16 * 1024) /* request line + headers + final CRLF -> 431 */
#define HTTP_MAX_URI     (8 * 1024)  /* request-target length -> 414 */
#define HTTP_MAX_HEADERS 100         /* header fields -> 431 */
#define HTTP_MAX_METHOD  32          /* method token length -> 501 */

/* A slice into the caller's buffer; never NUL-terminated. */
struct http_slice {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_slice name;  /* as sent; compare case-insensitively */
	struct http_slice value; /* leading and trailing OWS stripped */
};

/* The result of http_parse_request. Slices point into the parsed buffer. */
struct http_request {
	struct http_slice method;
	struct http_slice target; /* request-target exactly as sent */
	int minor;                /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
	enum lk_err error;        /* on HTTP_PARSE_ERROR: the row of the error table */
	int error_status;         /* the same row's status: 400, 414, 431, 501 or 505 */
	const char *error_reason; /* the same row's message (may hold "%s": see below) */
};

/* The detail that fills the "%s" of a parser error's message (the limit that was
 * hit, from its constant), into out. Returns its length; 0 when the message has none. */
size_t http_parse_error_detail(enum lk_err e, char *out, size_t len);

#define HTTP_PARSE_ERROR      (-1)
#define HTTP_PARSE_INCOMPLETE (-2)

/* Parses one request head from buf[0..len).
 * last_len is the length given on the previous call for the same request (0 on the
 * first), so a resumed parse does not rescan bytes it already looked at.
 * Returns the head's length in bytes (including the blank line) when complete,
 * HTTP_PARSE_INCOMPLETE when more input is needed (and HTTP_MAX_HEAD is not yet
 * exceeded), or HTTP_PARSE_ERROR with req->error_status and req->error_reason set.
 * Rules: CRLF line ends, bare LF accepted, bare CR rejected; a method is a token;
 * the target has no control bytes, spaces or bytes >= 0x7f and is at most
 * HTTP_MAX_URI long (414); the version is HTTP/1.0 or HTTP/1.1 (other HTTP/x.y: 505,
 * anything else: 400); field names are tokens with no whitespace before the colon;
 * obsolete line folding, NUL and other control bytes (but HTAB) in values: 400;
 * a head over HTTP_MAX_HEAD or more than HTTP_MAX_HEADERS fields: 431. Leading
 * empty lines before the request line are skipped (RFC 9112 2.2). No allocation. */
int http_parse_request(const char *buf, size_t len, struct http_request *req, size_t last_len);

/* Finds a header by name (case-insensitive); NULL when absent. */
const struct http_header *http_find_header_n(const struct http_request *req, const char *name, size_t len);
/* (inline: strlen of a literal name is worked out when compiling) */
static inline const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
	return http_find_header_n(req, name, strlen(name));
}

/* True when slice s equals the NUL-terminated str, ignoring ASCII case. */
int http_slice_ieq(struct http_slice s, const char *str);

/* The q-value (0-1000) an Accept header gives media type `type` (lowercase "a/b"), from
 * its most specific matching range: the type itself (*spec 3), "a/" with a wildcard
 * subtype (2), the wildcard of all types (1). -1 (and *spec 0) when no range matches.
 * Among ranges equally specific the first counts. Also for Accept-Encoding: `type` a
 * coding ("gzip"), "*" the wildcard. */
int http_accept_q(struct http_slice accept, const char *type, int *spec);

/* Incremental chunked-body decoder (RFC 9112 7.1). Zero-initialise before use. */
struct http_chunked {
	int state;          /* internal */
	uint64_t remaining; /* data bytes left in the current chunk */
	size_t line_len;    /* bytes of the current size/extension/trailer line seen */
	size_t hex_digits;  /* digits of the current chunk size */
};

#define HTTP_CHUNK_MAX_LINE 4096 /* a chunk-size line with extensions, or a trailer line */

/* Decodes buf[0..*len) in place: on return buf[0..*len) holds the decoded data.
 * Returns HTTP_PARSE_INCOMPLETE when all input was consumed and the body is not
 * finished, HTTP_PARSE_ERROR on a malformed body (bad hex, size overflowing 2^63,
 * missing CRLF after data, a line ended by a bare LF or CR: RFC 9112 7.1 frames
 * chunks with CRLF only, and a bare LF is where smuggling front ends disagree;
 * over-long line), or, when the terminating chunk and
 * trailers are complete, the number of bytes that followed the body: they are moved
 * to buf[*len .. *len + ret) (the start of the next request on the connection). */
ssize_t http_chunked_decode(struct http_chunked *d, char *buf, size_t *len);

enum http_range_result {
	HTTP_RANGE_NONE,          /* no usable Range: send the whole representation (200) */
	HTTP_RANGE_OK,            /* one satisfiable range: 206 with *first..*last inclusive */
	HTTP_RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes * /size */
};

/* Interprets a Range header value against a representation of `size` bytes.
 * Accepts "bytes=A-B", "bytes=A-" and "bytes=-N" (unit name case-insensitive, OWS
 * around tokens). A syntactically invalid value, another unit, or more than one
 * range gives HTTP_RANGE_NONE (RFC 9110 14.2 lets a server ignore Range). B past the
 * end is clamped to size-1. A >= size, or "-0", gives HTTP_RANGE_UNSATISFIABLE. */
enum http_range_result http_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                                        uint64_t *last);

/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out, which must
 * hold 30 bytes; returns 29. */
size_t http_date_format(time_t t, char *out);

/* Parses an HTTP date (IMF-fixdate; also RFC 850 and asctime forms as RFC 9110
 * 5.6.7 requires recipients to). Returns 0 and sets *t, or -1. */
int http_date_parse(const char *s, size_t len, time_t *t);

#define HTTP_PATH_OK       0
#define HTTP_PATH_BAD      (-1) /* malformed escape, NUL byte, or not origin-form: 400 */
#define HTTP_PATH_ESCAPES  (-2) /* ".." would climb above the root: 400 */
#define HTTP_PATH_TOO_LONG (-3) /* decoded path does not fit in out: 414 */

/* Turns the path part of an origin-form target (starting with '/', query and
 * fragment already cut off by the caller) into a normalised relative path:
 * percent-decodes it (a decoded NUL is HTTP_PATH_BAD; %2F becomes a separator like
 * '/'), collapses repeated slashes, drops "." segments, resolves ".." against the
 * segments before it. The result has no leading slash ("" for the root, "a/b" for
 * "/a//./b"), is NUL-terminated in out[0..outsz), and *trailing_slash says whether the
 * path ended in '/' (or was the root). Backslashes are ordinary bytes on Linux and
 * stay as they are. Returns HTTP_PATH_OK or one of the errors above. */
int http_path_normalize(const char *path, size_t len, char *out, size_t outsz, int *trailing_slash);

/* True when any segment of a normalised path starts with '.' (".git", "a/.env"). */
int http_path_has_dot_segment(const char *norm);

/* Percent-decodes src[0..len) into out (query components: '+' becomes ' ' when
 * plus_is_space). Returns the decoded length, or -1 on a malformed escape or when out
 * (of outsz bytes) is too small. Does not NUL-terminate. */
ssize_t http_percent_decode(const char *src, size_t len, char *out, size_t outsz, int plus_is_space);

/* Splits an authority "host[:port]" or "[v6]:port" (as in Host) into its host
 * part, brackets removed, a trailing dot dropped. Returns 0, or -1 when malformed
 * (an unclosed bracket, text after it other than ":port", a non-numeric port). */
int http_authority_host(const char *h, size_t n, const char **name, size_t *nlen);

/* True for "localhost" and names under ".localhost" (RFC 6761: always this machine). */
int http_name_is_localhost(const char *name, size_t n);

/* Content-Type for a file name, from a table of common web types by extension
 * (case-insensitive); "application/octet-stream" when unknown. Text types carry
 * "; charset=utf-8". Returns a static string. */
const char *http_mime_type(const char *name);

#endif
