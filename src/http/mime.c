/* mime.c - Content-Type of a file from its extension. */
#include "http/parse.h"

#include <string.h>

#define UTF8 "; charset=utf-8"

struct mime_entry {
	const char *ext;  /* lower case, without the dot */
	const char *type; /* Content-Type value */
};

/*
 * Sorted by ext (bytewise) for the binary search below; the unit test looks up
 * every entry, so an entry out of order fails it. Textual types carry a charset,
 * since a dev server's text is UTF-8 and browsers otherwise guess.
 *
 * Source code is served as text/plain so a browser shows it instead of
 * downloading it. That includes .ts: the registered type is video/mp2t (MPEG
 * transport streams, HLS segments), but on a developer's machine a .ts file is
 * TypeScript far more often, and browsers do not run TypeScript anyway.
 */
static const struct mime_entry mime_table[] = {
        {"7z", "application/x-7z-compressed"},
        {"aac", "audio/aac"},
        {"apk", "application/vnd.android.package-archive"},
        {"atom", "application/atom+xml" UTF8},
        {"avif", "image/avif"},
        {"bin", "application/octet-stream"},
        {"bmp", "image/bmp"},
        {"bz2", "application/x-bzip2"},
        {"c", "text/plain" UTF8},
        {"cjs", "text/javascript" UTF8},
        {"cpp", "text/plain" UTF8},
        {"css", "text/css" UTF8},
        {"csv", "text/csv" UTF8},
        {"deb", "application/vnd.debian.binary-package"},
        {"dmg", "application/x-apple-diskimage"},
        {"doc", "application/msword"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"eot", "application/vnd.ms-fontobject"},
        {"epub", "application/epub+zip"},
        {"exe", "application/vnd.microsoft.portable-executable"},
        {"flac", "audio/flac"},
        {"gif", "image/gif"},
        {"go", "text/plain" UTF8},
        {"gz", "application/gzip"},
        {"h", "text/plain" UTF8},
        {"htm", "text/html" UTF8},
        {"html", "text/html" UTF8},
        {"ico", "image/x-icon"},
        {"ics", "text/calendar" UTF8},
        {"ini", "text/plain" UTF8},
        {"iso", "application/x-iso9660-image"},
        {"jar", "application/java-archive"},
        {"java", "text/plain" UTF8},
        {"jpeg", "image/jpeg"},
        {"jpg", "image/jpeg"},
        {"js", "text/javascript" UTF8},
        {"json", "application/json" UTF8},
        {"jsonld", "application/ld+json" UTF8},
        {"log", "text/plain" UTF8},
        {"m3u8", "application/vnd.apple.mpegurl"},
        {"m4a", "audio/mp4"},
        {"map", "application/json" UTF8},
        {"md", "text/markdown" UTF8},
        {"mjs", "text/javascript" UTF8},
        {"mov", "video/quicktime"},
        {"mp3", "audio/mpeg"},
        {"mp4", "video/mp4"},
        {"odp", "application/vnd.oasis.opendocument.presentation"},
        {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
        {"odt", "application/vnd.oasis.opendocument.text"},
        {"oga", "audio/ogg"},
        {"ogg", "audio/ogg"},
        {"ogv", "video/ogg"},
        {"opus", "audio/ogg"},
        {"otf", "font/otf"},
        {"pdf", "application/pdf"},
        {"png", "image/png"},
        {"ppt", "application/vnd.ms-powerpoint"},
        {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"py", "text/plain" UTF8},
        {"rar", "application/vnd.rar"},
        {"rs", "text/plain" UTF8},
        {"rss", "application/rss+xml" UTF8},
        {"rtf", "application/rtf"},
        {"sh", "text/plain" UTF8},
        {"svg", "image/svg+xml" UTF8},
        {"tar", "application/x-tar"},
        {"tgz", "application/gzip"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"toml", "application/toml" UTF8},
        {"ts", "text/plain" UTF8},
        {"tsx", "text/plain" UTF8},
        {"ttf", "font/ttf"},
        {"txt", "text/plain" UTF8},
        {"wasm", "application/wasm"},
        {"wav", "audio/wav"},
        {"webm", "video/webm"},
        {"webmanifest", "application/manifest+json" UTF8},
        {"webp", "image/webp"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"xhtml", "application/xhtml+xml" UTF8},
        {"xls", "application/vnd.ms-excel"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"xml", "application/xml" UTF8},
        {"xz", "application/x-xz"},
        {"yaml", "application/yaml" UTF8},
        {"yml", "application/yaml" UTF8},
        {"zip", "application/zip"},
        {"zst", "application/zstd"},
};

#define MIME_DEFAULT "application/octet-stream"
#define MIME_EXT_MAX 16 /* longer than any extension in the table */

/* The extension is what follows the last '.' of the last path segment, unless that
 * dot starts the name (".bashrc" has none). No allocation: lower-cased on the stack. */
const char *http_mime_type(const char *name)
{
	const char *base = strrchr(name, '/'), *dot;
	char ext[MIME_EXT_MAX + 1];
	size_t n, i, lo = 0, hi = sizeof(mime_table) / sizeof(mime_table[0]);

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (!dot || dot == base)
		return MIME_DEFAULT;
	n = strlen(dot + 1);
	if (n == 0 || n > MIME_EXT_MAX)
		return MIME_DEFAULT;
	for (i = 0; i < n; i++) {
		char c = dot[1 + i];

		ext[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
	}
	ext[n] = '\0';

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(ext, mime_table[mid].ext);

		if (cmp == 0)
			return mime_table[mid].type;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return MIME_DEFAULT;
}
