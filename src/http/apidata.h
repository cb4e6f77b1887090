/* apidata.h - the fixed bodies of /_/ endpoints: sample documents, pages and images. */
#ifndef LOOPKIT_HTTP_APIDATA_H
#define LOOPKIT_HTTP_APIDATA_H

#include <stddef.h>

enum api_blob_id {
	API_BLOB_JSON,   /* /_/json: a sample JSON document */
	API_BLOB_HTML,   /* /_/html: a sample HTML page */
	API_BLOB_XML,    /* /_/xml: a sample XML document */
	API_BLOB_ROBOTS, /* /_/robots.txt */
	API_BLOB_DENY,   /* /_/deny: what robots.txt forbids */
	API_BLOB_UTF8,   /* /_/encoding/utf8: text in many scripts */
	API_BLOB_FORM,   /* /_/forms/post: an HTML form posting to /_/post */
	API_BLOB_TEAPOT, /* the body of /_/status/418 */
	API_BLOB_PNG,    /* /_/image/png: a 32x32 picture */
	API_BLOB_JPEG,   /* /_/image/jpeg: the same */
	API_BLOB_WEBP,   /* /_/image/webp: the same, lossless */
	API_BLOB_SVG,    /* /_/image/svg: the same, drawn */
	API_BLOB_COUNT,
};

struct api_blob {
	const char *type; /* Content-Type */
	const void *data;
	size_t len;
};

/* The blobs, indexed by enum api_blob_id. */
extern const struct api_blob api_blobs[API_BLOB_COUNT];

#endif
