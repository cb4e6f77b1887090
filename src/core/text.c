/* text.c - UTF-8 validation and log-safe escaping. */
#include "core/text.h"

size_t text_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t text_escape(char *out, size_t len, const char *s, size_t n, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	if (!len)
		return 0;
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t l = c < 0x80 ? 1 : text_utf8_len(p + i, n - i);
		/* U+0080..U+009F (C2 80..C2 9F) are C1 controls to some terminals. */
		int c1 = l == 2 && c == 0xc2 && p[i + 1] < 0xa0;
		int quote = (flags & TEXT_ESC_QUOTES) && (c == '"' || c == '\\');
		if (l == 1 && c >= 0x20 && c != 0x7f && !quote) {
			if (o + 1 >= len)
				break;
			out[o++] = (char)c;
			i++;
		} else if (l > 1 && !c1) {
			if (o + l >= len)
				break;
			for (size_t k = 0; k < l; k++)
				out[o++] = (char)p[i + k];
			i += l;
		} else {
			/* One escaped byte at a time: an invalid or control sequence is shown
			 * byte by byte. */
			if (o + 4 >= len)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
			i++;
		}
	}
	out[o] = 0;
	return o;
}

int text_html(struct buf *b, const char *s)
{
	int rc = 0;
	for (const char *run = s;; s++) {
		const char *ent = NULL;
		switch (*s) {
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '&': ent = "&amp;"; break;
		case '"': ent = "&quot;"; break;
		case '\'': ent = "&#39;"; break;
		case 0: break;
		default: continue;
		}
		rc |= buf_append(b, run, (size_t)(s - run));
		if (!ent)
			return rc;
		rc |= buf_puts(b, ent);
		run = s + 1;
	}
}
