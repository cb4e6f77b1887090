/* encode.c - whole-body compression with zlib and Brotli (Debian's libraries, loaded on
 * first use: core/lazylib.h). */
#include "http/encode.h"

#include <brotli/encode.h>
#include <errno.h>
#include <stdint.h>
#include <zlib.h>

#include "core/lazylib.h"

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

#define ZLIB_FUNCS(X)   X(deflateInit2_) X(deflateBound) X(deflate) X(deflateEnd)
#define BROTLI_FUNCS(X) X(BrotliEncoderMaxCompressedSize) X(BrotliEncoderCompress)
static struct {
	ZLIB_FUNCS(LAZYLIB_SLOT)
} zl;
static struct {
	BROTLI_FUNCS(LAZYLIB_SLOT)
} br;
static const char *const zl_names[] = {ZLIB_FUNCS(LAZYLIB_NAME)};
static const char *const br_names[] = {BROTLI_FUNCS(LAZYLIB_NAME)};
static struct lazylib zl_lib = LAZYLIB("libz.so.1", "zlib1g", zl_names, zl);
static struct lazylib br_lib = LAZYLIB("libbrotlienc.so.1", "libbrotli1", br_names, br);

static int zlib_encode(int window_bits, const void *in, size_t n, struct buf *out)
{
	z_stream z = {0};
	/* deflateInit2 is a macro for this call */
	if (zl.deflateInit2_(&z, ENCODE_ZLIB_LEVEL, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY,
	                     ZLIB_VERSION, (int)sizeof z) != Z_OK)
		return -1;
	size_t bound = zl.deflateBound(&z, (uLong)n), avail;
	char *p = buf_space(out, bound, &avail);
	if (!p) {
		zl.deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)p;
	z.avail_out = (uInt)avail;
	int rc = zl.deflate(&z, Z_FINISH);
	if (rc == Z_STREAM_END)
		out->len += z.total_out;
	zl.deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

const char *http_encode_missing(enum http_coding k)
{
	struct lazylib *l = k == HTTP_CODING_BR ? &br_lib : &zl_lib;
	return lazylib_load(l) < 0 ? l->err : NULL;
}

int http_encode(enum http_coding k, const void *in, size_t n, struct buf *out)
{
	if (http_encode_missing(k)) {
		errno = ENOSYS;
		return -1;
	}
	if (k == HTTP_CODING_GZIP)
		return zlib_encode(MAX_WBITS + 16, in, n, out); /* +16: a gzip wrapper */
	if (k == HTTP_CODING_DEFLATE)
		return zlib_encode(MAX_WBITS, in, n, out);
	size_t bound = br.BrotliEncoderMaxCompressedSize(n), avail;
	char *p = bound ? buf_space(out, bound, &avail) : NULL;
	if (!p)
		return -1;
	size_t len = avail;
	if (!br.BrotliEncoderCompress(ENCODE_BR_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, n, in, &len,
	                              (uint8_t *)p))
		return -1;
	out->len += len;
	return 0;
}
