/* fuzz_ftp_reply.c - watch_ftp_reply (watch's FTP probe) and watch_json_check (its JSON field check). */
#include "fuzz.h"

#include "watch/internal.h"

/* Input: a reply as a server would send it. Also, split at the first NUL: a JSON path,
 * then a body, for the field check. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *b = fuzz_dup(data, n);
	int code = 0;
	size_t len = 0;
	int rc = watch_ftp_reply(b, n, &code, &len);
	FUZZ_CHECK(rc >= -1 && rc <= 1, "rc %d", rc);
	if (rc == 1) {
		FUZZ_CHECK(len >= 4 && len <= n && b[len - 1] == '\n', "reply length %zu of %zu", len, n);
		FUZZ_CHECK(code >= 0 && code <= 999 && code / 100 == b[0] - '0', "code %d", code);
		/* The same reply alone is whole too; every shorter prefix needs more. */
		int code2 = 0;
		size_t len2 = 0;
		char *exact = fuzz_dup(b, len);
		FUZZ_CHECK(watch_ftp_reply(exact, len, &code2, &len2) == 1 && code2 == code && len2 == len,
		           "the reply alone: code %d len %zu", code2, len2);
		free(exact);
		for (size_t k = len > 64 ? len - 64 : 0; k < len; k++) {
			char *pre = fuzz_dup(b, k);
			FUZZ_CHECK(watch_ftp_reply(pre, k, &code2, &len2) == 0, "a %zu-byte prefix of %zu", k,
			           len);
			free(pre);
		}
	}
	free(b);
	const uint8_t *nul = memchr(data, 0, n);
	if (nul) {
		char *path = fuzz_strdup(data, (size_t)(nul - data));
		char *body = fuzz_dup(nul + 1, n - (size_t)(nul - data) - 1);
		char why[WATCH_DETAIL_MAX] = "";
		int ok = watch_json_check(body, n - (size_t)(nul - data) - 1, path, NULL, why, sizeof(why));
		FUZZ_CHECK(ok == 0 || ok == 1, "ok %d", ok);
		FUZZ_CHECK(ok || why[0], "a failure without a reason");
		FUZZ_CHECK(memchr(why, 0, sizeof(why)) != NULL, "an unterminated reason");
		free(path);
		free(body);
	}
	return 0;
}
