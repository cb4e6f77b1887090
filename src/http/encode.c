/* encode.c - whole-body compression with zlib and Brotli (Debian's libraries, loaded on
 * first use: core/lazylib.h). */
#include "http/encode.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <errno.h>
#include <strings.h>
#include <stdint.h>
#include <zlib.h>

#include "core/lazylib.h"
#include "http/codec_funcs.h"

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

static struct {
	ZLIB_FUNCS(LAZYLIB_SLOT)
} zl;
static struct {
	BROTLI_FUNCS(LAZYLIB_SLOT)
} br;
static struct {
	BROTLIDEC_FUNCS(LAZYLIB_SLOT)
} bd;
static const char *const zl_names[] = {ZLIB_FUNCS(LAZYLIB_NAME)};
static const char *const br_names[] = {BROTLI_FUNCS(LAZYLIB_NAME)};
static const char *const bd_names[] = {BROTLIDEC_FUNCS(LAZYLIB_NAME)};
static struct lazylib zl_lib = LAZYLIB("libz.so.1", "zlib1g", zl_names, zl);
static struct lazylib br_lib = LAZYLIB("libbrotlienc.so.1", "libbrotli1", br_names, br);
static struct lazylib bd_lib = LAZYLIB("libbrotlidec.so.1", "libbrotli1", bd_names, bd);

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

int http_coding_parse(const char *p, size_t n, enum http_coding *k)
{
	static const struct {
		const char *name;
		enum http_coding k;
	} names[] = {{"gzip", HTTP_CODING_GZIP},
	             {"x-gzip", HTTP_CODING_GZIP},
	             {"deflate", HTTP_CODING_DEFLATE},
	             {"br", HTTP_CODING_BR}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].name) == n && !strncasecmp(p, names[i].name, n)) {
			*k = names[i].k;
			return 0;
		}
	return -1;
}

/* Room for the next piece of output, at most up to max bytes in all. */
static char *decode_room(struct buf *out, size_t start, size_t max, size_t *avail)
{
	size_t used = out->len - start;
	if (used >= max)
		return NULL;
	size_t want = max - used < 64 * 1024 ? max - used : 64 * 1024;
	char *p = buf_space(out, want, avail);
	if (p && *avail > max - used)
		*avail = max - used;
	return p;
}

static int zlib_decode(const void *in, size_t n, struct buf *out, size_t max)
{
	z_stream z = {0};
	size_t start = out->len, avail;
	/* 32: a gzip or a zlib header, whichever it is */
	if (zl.inflateInit2_(&z, MAX_WBITS + 32, ZLIB_VERSION, (int)sizeof z) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	int rc = Z_OK;
	while (rc == Z_OK) {
		char *p = decode_room(out, start, max, &avail);
		if (!p)
			break;
		z.next_out = (Bytef *)p;
		z.avail_out = (uInt)avail;
		rc = zl.inflate(&z, Z_NO_FLUSH);
		out->len += avail - z.avail_out;
		if (rc == Z_BUF_ERROR && z.avail_out) /* no progress: the input ended early */
			break;
		if (rc == Z_BUF_ERROR)
			rc = Z_OK;
	}
	zl.inflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : rc == Z_OK && out->len - start >= max ? 1 : -1;
}

static int brotli_decode(const void *in, size_t n, struct buf *out, size_t max)
{
	BrotliDecoderState *st = bd.BrotliDecoderCreateInstance(NULL, NULL, NULL);
	if (!st)
		return -1;
	const uint8_t *next_in = in;
	size_t avail_in = n, start = out->len, avail;
	BrotliDecoderResult rc = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
	while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
		char *p = decode_room(out, start, max, &avail);
		if (!p)
			break;
		uint8_t *next_out = (uint8_t *)p;
		size_t avail_out = avail;
		rc = bd.BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out, &next_out, NULL);
		out->len += avail - avail_out;
	}
	bd.BrotliDecoderDestroyInstance(st);
	return rc == BROTLI_DECODER_RESULT_SUCCESS                                        ? 0
	       : rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT && out->len - start >= max ? 1
	                                                                                  : -1;
}

int http_decode(enum http_coding k, const void *in, size_t n, struct buf *out, size_t max)
{
	struct lazylib *l = k == HTTP_CODING_BR ? &bd_lib : &zl_lib;
	if (lazylib_load(l) < 0) {
		errno = ENOSYS;
		return -1;
	}
	return k == HTTP_CODING_BR ? brotli_decode(in, n, out, max) : zlib_decode(in, n, out, max);
}
