/* encode.c - whole-body compression with zlib and Brotli (Debian's libraries). */
#include "http/encode.h"

#include <brotli/encode.h>
#include <stdint.h>
#include <zlib.h>

#define ENCODE_ZLIB_LEVEL 6 /* zlib's default: fast on small answers */
#define ENCODE_BR_QUALITY 5 /* Brotli's quality for answers made on the fly */

const char *http_coding_name(enum http_coding k)
{
	switch (k) {
	case HTTP_CODING_GZIP: return "gzip";
	case HTTP_CODING_DEFLATE: return "deflate";
	default: return "br";
	}
}

static int zlib_encode(int window_bits, const void *in, size_t n, struct buf *out)
{
	z_stream z = {0};
	if (deflateInit2(&z, ENCODE_ZLIB_LEVEL, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t bound = deflateBound(&z, (uLong)n), avail;
	char *p = buf_space(out, bound, &avail);
	if (!p) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)p;
	z.avail_out = (uInt)avail;
	int rc = deflate(&z, Z_FINISH);
	if (rc == Z_STREAM_END)
		out->len += z.total_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

int http_encode(enum http_coding k, const void *in, size_t n, struct buf *out)
{
	if (k == HTTP_CODING_GZIP)
		return zlib_encode(MAX_WBITS + 16, in, n, out); /* +16: a gzip wrapper */
	if (k == HTTP_CODING_DEFLATE)
		return zlib_encode(MAX_WBITS, in, n, out);
	size_t bound = BrotliEncoderMaxCompressedSize(n), avail;
	char *p = bound ? buf_space(out, bound, &avail) : NULL;
	if (!p)
		return -1;
	size_t len = avail;
	if (!BrotliEncoderCompress(ENCODE_BR_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, n, in, &len,
	                           (uint8_t *)p))
		return -1;
	out->len += len;
	return 0;
}
