/* text.h - UTF-8 sequences and log-safe escaping, for every line a human reads. */
#ifndef LOOPKIT_CORE_TEXT_H
#define LOOPKIT_CORE_TEXT_H

#include <stddef.h>

#include "core/buf.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes): 1 for ASCII, 2-4, or 0
 * when the bytes there are not valid UTF-8 (overlong forms and surrogates included). */
size_t text_utf8_len(const unsigned char *s, size_t n);

#define TEXT_ESC_QUOTES 1u /* also '"' and '\\' (inside a quoted log field) */

/* Copies s[0..n) into out for a log line a terminal will show: control bytes (C0,
 * DEL, and C1 as UTF-8 U+0080..U+009F) and bytes that are not valid UTF-8 become
 * \xHH, so no client can move the cursor, set a title or fake a line; with
 * TEXT_ESC_QUOTES in flags, '"' and '\\' too. Writes at most len-1 bytes, never
 * splitting an escape, and terminates out. Returns the length written. */
size_t text_escape(char *out, size_t len, const char *s, size_t n, unsigned flags);

/* Appends s with &, <, >, " and ' as HTML entities (text and attribute values).
 * Returns 0, or -1 when b's limit was hit. */
int text_html(struct buf *b, const char *s);

#endif
