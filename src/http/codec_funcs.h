/* codec_funcs.h - the zlib and Brotli functions of encode.c, as X-macro lists: encode.c
 * loads them on first need (core/lazylib.h), scripts/mkdeb links a stub that refers to
 * each, so that the .deb depends on libraries that have them all. */
#ifndef LOOPKIT_HTTP_CODEC_FUNCS_H
#define LOOPKIT_HTTP_CODEC_FUNCS_H

#define ZLIB_FUNCS(X) \
	X(deflateInit2_) X(deflateBound) X(deflate) X(deflateEnd) X(inflateInit2_) X(inflate) X(inflateEnd)
#define BROTLI_FUNCS(X) X(BrotliEncoderMaxCompressedSize) X(BrotliEncoderCompress)
#define BROTLIDEC_FUNCS(X) \
	X(BrotliDecoderCreateInstance) X(BrotliDecoderDecompressStream) X(BrotliDecoderDestroyInstance)

#endif
