/* digest.c - HTTP Digest authentication (RFC 7616): parsing credentials, computing responses. */
#include "http/digest.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/nettle_lib.h"
#include "http/multipart.h"

#define DIGEST_LINE_MAX 2048 /* one string that is hashed (user:realm:pass, method:uri, ...) */

static const struct {
	const char *name;
	enum http_digest_alg a;
} algs[] = {
        {"MD5", HTTP_DIGEST_MD5},
        {"SHA-256", HTTP_DIGEST_SHA256},
        {"SHA-512", HTTP_DIGEST_SHA512},
};

const char *http_digest_alg_name(enum http_digest_alg a)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].a == a)
			return algs[i].name;
	return "MD5";
}

int http_digest_alg_parse(const char *name, size_t n, enum http_digest_alg *a, int *sess)
{
	*sess = n > 5 && !strncasecmp(name + n - 5, "-sess", 5);
	if (*sess)
		n -= 5;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (strlen(algs[i].name) == n && !strncasecmp(algs[i].name, name, n)) {
			*a = algs[i].a;
			return 0;
		}
	}
	return -1;
}

int http_digest_parse(struct http_slice v, struct http_digest_creds *c)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
	        {"username", offsetof(struct http_digest_creds, username)},
	        {"realm", offsetof(struct http_digest_creds, realm)},
	        {"nonce", offsetof(struct http_digest_creds, nonce)},
	        {"uri", offsetof(struct http_digest_creds, uri)},
	        {"response", offsetof(struct http_digest_creds, response)},
	        {"algorithm", offsetof(struct http_digest_creds, algorithm)},
	        {"cnonce", offsetof(struct http_digest_creds, cnonce)},
	        {"nc", offsetof(struct http_digest_creds, nc)},
	        {"qop", offsetof(struct http_digest_creds, qop)},
	        {"opaque", offsetof(struct http_digest_creds, opaque)},
	};
	memset(c, 0, sizeof(*c));
	if (v.len < 7 || strncasecmp(v.p, "Digest", 6) || (v.p[6] != ' ' && v.p[6] != '\t'))
		return -1;
	struct http_slice params = {v.p + 7, v.len - 7};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct http_slice *f = (struct http_slice *)((char *)c + fields[i].off);
		if (http_param_find(params, ',', fields[i].name, f) < 0)
			f->p = NULL, f->len = 0;
	}
	struct http_slice uh;
	c->userhash = http_param_find(params, ',', "userhash", &uh) == 0 && http_slice_ieq(uh, "true");
	if (!c->username.p || !c->realm.p || !c->nonce.p || !c->uri.p || !c->response.p)
		return -1;
	if (c->qop.p && (!c->cnonce.p || !c->nc.p))
		return -1;
	return 0;
}

static const struct nettle_hash *md_of(enum http_digest_alg a)
{
	switch (a) {
	case HTTP_DIGEST_SHA256: return &nettle_sha256;
	case HTTP_DIGEST_SHA512: return &nettle_sha512;
	default: return &nettle_md5;
	}
}

void http_digest_hash(enum http_digest_alg a, const void *data, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char why[256];
	if (nettle_need(why, sizeof why) < 0) { /* the caller checked, and answered, first */
		out[0] = 0;
		return;
	}
	const struct nettle_hash *h = md_of(a);
	union {
		struct md5_ctx md5;
		struct sha256_ctx sha256;
		struct sha512_ctx sha512;
	} ctx;
	uint8_t md[SHA512_DIGEST_SIZE];
	unsigned len = h->digest_size;
	h->init(&ctx);
	h->update(&ctx, n, data);
	h->digest(&ctx, len, md);
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * len] = 0;
}

/* A string to hash, built from pieces. */
struct line {
	char b[DIGEST_LINE_MAX];
	size_t n;
	int err;
};

static void put(struct line *l, const char *p, size_t n)
{
	if (l->err || n > sizeof(l->b) - l->n) {
		l->err = 1;
		return;
	}
	memcpy(l->b + l->n, p, n);
	l->n += n;
}

static void put_s(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* A parameter's value with its escapes taken out, then ':' unless last. */
static void put_param(struct line *l, struct http_slice v, int colon)
{
	char tmp[DIGEST_LINE_MAX];
	long n = http_param_unquote(v, tmp, sizeof(tmp));
	if (n < 0)
		l->err = 1;
	else
		put(l, tmp, (size_t)n);
	if (colon)
		put(l, ":", 1);
}

int http_digest_response(const struct http_digest_creds *c, enum http_digest_alg a, int sess,
                         const char *user, const char *pass, struct http_slice method, const char *body,
                         size_t body_len, char *out)
{
	char ha1[HTTP_DIGEST_HEX_MAX], ha2[HTTP_DIGEST_HEX_MAX];
	struct line l = {.n = 0};
	if (nettle_need(ha1, sizeof ha1) < 0)
		return -1;
	put_s(&l, user);
	put(&l, ":", 1);
	put_param(&l, c->realm, 1);
	put_s(&l, pass);
	if (l.err)
		return -1;
	http_digest_hash(a, l.b, l.n, ha1);
	if (sess) { /* RFC 7616 3.4.2: H(H(user:realm:pass):nonce:cnonce) */
		l.n = 0;
		put_s(&l, ha1);
		put(&l, ":", 1);
		put_param(&l, c->nonce, 1);
		put_param(&l, c->cnonce, 0);
		if (l.err)
			return -1;
		http_digest_hash(a, l.b, l.n, ha1);
	}
	l.n = 0;
	put(&l, method.p, method.len);
	put(&l, ":", 1);
	put_param(&l, c->uri, 0);
	if (c->qop.p && http_slice_ieq(c->qop, "auth-int")) {
		char hb[HTTP_DIGEST_HEX_MAX];
		http_digest_hash(a, body ? body : "", body_len, hb);
		put(&l, ":", 1);
		put_s(&l, hb);
	}
	if (l.err)
		return -1;
	http_digest_hash(a, l.b, l.n, ha2);
	l.n = 0;
	put_s(&l, ha1);
	put(&l, ":", 1);
	put_param(&l, c->nonce, 1);
	if (c->qop.p) {
		put_param(&l, c->nc, 1);
		put_param(&l, c->cnonce, 1);
		put_param(&l, c->qop, 1);
	}
	put_s(&l, ha2);
	if (l.err)
		return -1;
	http_digest_hash(a, l.b, l.n, out);
	return 0;
}
