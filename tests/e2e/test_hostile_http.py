"""A corpus of malformed and hostile HTTP requests (issue 6, "Abuse and faults"), each with
its expected answer, sent over raw sockets to a real `loopkit serve`.

Every case is a row (name, request bytes, expected, must_close), and each row names the one
right outcome:

- expected: the status of the one response, or None for "closed without any response" when
  the first bytes are sniffed (the default http,ftp); with `--proto http` nothing sniffs, so
  the HTTP parser itself answers such bytes with 400 and closes.
- must_close: True when the server must close the connection after its answer (RFC 9112
  requires it for broken framing: CL+TE, invalid Content-Length, bad chunks, a request line or
  head it cannot parse; docs/serve.md marks those rows "close"); False when it must keep the
  connection open: the request was complete and properly framed and the error does not call
  for a close (docs/serve.md's rows without "close": 403 foreign Host, 405, 417, a path that
  is refused).

Where the RFCs let a server choose (identical repeated Content-Lengths, a bare LF in chunked
framing, an unknown 1.x minor version), the row pins loopkit's choice, so a change of
behaviour is a visible decision rather than a silent drift. Where they do not, the row
follows them: RFC 9112 3.2 says a Host field with an invalid value is a 400, RFC 9110 4.2.1
says an http URI with an empty host must be rejected as invalid.

Each case is sent in one write followed by a probe request ("GET /_/health") in the same
write. When the connection must stay open, the probe must be answered next (so the case's
body was framed correctly); when it must close, the probe must NOT be answered (otherwise
bytes the server had not understood became a request: the essence of request smuggling).
After every case a fresh connection must still be served.

The corpus runs against the default server (HTTP and FTP on one port: the first bytes are
sniffed) and against `--proto http`. Placeholders: {PORT} is replaced by the server's port.
"""
import os

import pytest

from conftest import Conn, FtpServer, assert_alive, hard_timeout_fixture, stop_checked

_hard_timeout = hard_timeout_fixture(20)

FILE = b"file content\n"
PROBE = b"GET /_/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
H = b"Host: localhost\r\n"


def get(target=b"/a.txt", headers=b"", version=b"HTTP/1.1", method=b"GET"):
    return method + b" " + target + b" " + version + b"\r\n" + H + headers + b"\r\n"


def post(body, headers, target=b"/_/anything", method=b"POST"):
    """A request with a body; headers frame it (no Content-Length is added)."""
    return method + b" " + target + b" HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def cl(n):
    return b"Content-Length: " + str(n).encode() + b"\r\n"


TE = b"Transfer-Encoding: chunked\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"

CASES = [
    # ---- request smuggling: Content-Length and Transfer-Encoding ---------------------------
    ("cl-and-te", post(CHUNKED_HELLO, cl(len(CHUNKED_HELLO)) + TE), 400, True),
    ("te-and-cl", post(CHUNKED_HELLO, TE + cl(len(CHUNKED_HELLO))), 400, True),
    ("te-and-cl-zero", post(CHUNKED_HELLO, TE + cl(0)), 400, True),
    ("cl-and-te-smuggled-get", post(b"0\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
                                    cl(5) + TE), 400, True),
    ("cl-and-te-on-get", get(headers=cl(0) + TE), 400, True),
    ("two-different-cl", post(b"hello", cl(3) + cl(5)), 400, True),
    ("two-different-cl-reversed", post(b"hello", cl(5) + cl(3)), 400, True),
    ("cl-list-different", post(b"hello", b"Content-Length: 3, 5\r\n"), 400, True),
    # RFC 9110 8.6: identical repeated values MAY be accepted or rejected; loopkit accepts
    # repeated fields and rejects a list inside one field.
    ("two-identical-cl", post(b"hello", cl(5) + cl(5)), 200, False),
    ("cl-list-identical", post(b"hello", b"Content-Length: 5, 5\r\n"), 400, True),
    ("cl-negative", post(b"hello", b"Content-Length: -1\r\n"), 400, True),
    ("cl-negative-zero", post(b"", b"Content-Length: -0\r\n"), 400, True),
    ("cl-plus-sign", post(b"hello", b"Content-Length: +5\r\n"), 400, True),
    ("cl-hex", post(b"hello", b"Content-Length: 0x5\r\n"), 400, True),
    ("cl-exponent", post(b"hello", b"Content-Length: 5e0\r\n"), 400, True),
    ("cl-decimal-point", post(b"hello", b"Content-Length: 5.0\r\n"), 400, True),
    ("cl-trailing-letter", post(b"hello", b"Content-Length: 5a\r\n"), 400, True),
    ("cl-empty", post(b"", b"Content-Length:\r\n"), 400, True),
    ("cl-inner-space", post(b"hello", b"Content-Length: 5 5\r\n"), 400, True),
    ("cl-2^64", post(b"hello", b"Content-Length: 18446744073709551616\r\n"), 400, True),
    ("cl-huge", post(b"hello", b"Content-Length: 99999999999999999999999999999\r\n"),
     400, True),
    ("cl-2^63", post(b"hello", b"Content-Length: 9223372036854775808\r\n"), 400, True),
    ("cl-over-1mib-on-api", post(b"x", cl(1024 * 1024 + 1)), 413, True),
    ("cl-ows-around-value", post(b"hello", b"Content-Length: \t 5 \t\r\n"), 200, False),
    ("cl-leading-zeros", post(b"hello", b"Content-Length: 0005\r\n"), 200, False),
    ("cl-space-before-colon", post(b"hello", b"Content-Length : 5\r\n"), 400, True),
    ("te-space-before-colon", post(CHUNKED_HELLO, b"Transfer-Encoding : chunked\r\n"), 400, True),
    ("te-tab-before-colon", post(CHUNKED_HELLO, b"Transfer-Encoding\t: chunked\r\n"), 400, True),
    ("te-vertical-tab", post(CHUNKED_HELLO, b"Transfer-Encoding: \x0bchunked\r\n"), 400, True),
    ("te-form-feed", post(CHUNKED_HELLO, b"Transfer-Encoding: chunked\x0c\r\n"), 400, True),
    ("te-obs-fold", post(CHUNKED_HELLO, b"Transfer-Encoding:\r\n chunked\r\n"), 400, True),
    ("cl-obs-fold", post(b"hello", b"Content-Length:\r\n 5\r\n"), 400, True),
    # docs/serve.md: a coding other than chunked -> 501 and close (RFC 9112 6.1's SHOULD; its
    # 6.3 asks 400 where chunked is not final, the close is the MUST). Two Transfer-Encoding
    # fields are a repeated framing field -> 400, like repeated Content-Lengths that differ.
    ("te-gzip-only", post(b"hello", b"Transfer-Encoding: gzip\r\n"), 501, True),
    ("te-identity", post(b"hello", b"Transfer-Encoding: identity\r\n" + cl(5)), 501, True),
    ("te-chunked-then-gzip", post(CHUNKED_HELLO, b"Transfer-Encoding: chunked, gzip\r\n"),
     501, True),
    ("te-gzip-then-chunked", post(CHUNKED_HELLO, b"Transfer-Encoding: gzip, chunked\r\n"),
     501, True),
    ("te-chunked-twice", post(CHUNKED_HELLO, b"Transfer-Encoding: chunked, chunked\r\n"),
     501, True),
    ("te-two-fields", post(CHUNKED_HELLO, TE + TE), 400, True),
    ("te-xchunked", post(CHUNKED_HELLO, b"Transfer-Encoding: xchunked\r\n"), 501, True),
    ("te-chunked-suffix", post(CHUNKED_HELLO, b"Transfer-Encoding: chunkedx\r\n"), 501, True),
    ("te-quoted", post(CHUNKED_HELLO, b'Transfer-Encoding: "chunked"\r\n'), 501, True),
    ("te-empty", post(b"", b"Transfer-Encoding:\r\n"), 501, True),
    ("te-uppercase-ok", post(CHUNKED_HELLO, b"Transfer-Encoding: CHUNKED\r\n"), 200, False),
    ("te-ows-ok", post(CHUNKED_HELLO, b"Transfer-Encoding:\t chunked \t\r\n"), 200, False),
    # RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing: close after.
    ("te-on-http10", b"POST /_/anything HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n"
                     + TE + b"\r\n" + CHUNKED_HELLO, 400, True),
    ("te-underscore-is-not-te", get(headers=b"Transfer_Encoding: chunked\r\n"), 200, False),
    ("get-with-body-skipped", post(b"GET /x", cl(6), target=b"/a.txt", method=b"GET"), 200, False),
    ("head-with-body-skipped", post(b"12345", cl(5), target=b"/a.txt", method=b"HEAD"), 200, False),
    ("post-on-file-body-skipped", post(b"hello", cl(5), target=b"/a.txt"), 405, False),
    ("put-chunked-without-write", post(CHUNKED_HELLO, TE, target=b"/a.txt", method=b"PUT"),
     405, True),

    # ---- chunked bodies ---------------------------------------------------------------------
    ("chunk-size-not-hex", post(b"zz\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-negative", post(b"-5\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-0x-prefix", post(b"0x5\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-leading-space", post(b" 5\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-empty", post(b"\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-plus", post(b"+5\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-overflow-2^64", post(b"10000000000000000\r\nhello\r\n0\r\n\r\n", TE),
     400, True),
    ("chunk-size-overflow-huge", post(b"f" * 40 + b"\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-2^63", post(b"8000000000000000\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-over-api-limit", post(b"7fffffffffffffff\r\nhello", TE), 413, True),
    ("chunk-size-over-api-limit-sum",
     post(b"80000\r\n" + b"a" * 0x80000 + b"\r\n80001\r\n" + b"b" * 0x80001 + b"\r\n0\r\n\r\n", TE),
     413, True),
    ("chunk-data-longer-than-size", post(b"3\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-missing-crlf-after-data", post(b"5\r\nhelloXX0\r\n\r\n", TE), 400, True),
    ("chunk-bare-cr-after-data", post(b"5\r\nhello\r0\r\n\r\n", TE), 400, True),
    ("chunk-bare-cr-after-size", post(b"5\rhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-size-nul", post(b"5\x00\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-ext-ok", post(b"5;name=value\r\nhello\r\n0\r\n\r\n", TE), 200, False),
    ("chunk-ext-no-value-ok", post(b"5;name\r\nhello\r\n0;x\r\n\r\n", TE), 200, False),
    ("chunk-ext-quoted-ok", post(b'5;n="v;\\"w"\r\nhello\r\n0\r\n\r\n', TE), 200, False),
    ("chunk-ext-bws-ok", post(b"5 ; n = v\r\nhello\r\n0\r\n\r\n", TE), 200, False),
    ("chunk-ext-many-ok", post(b"5" + b";a=b" * 100 + b"\r\nhello\r\n0\r\n\r\n", TE), 200, False),
    # An endless chunk extension must be refused, not buffered (chunk-line limit 4 KiB).
    ("chunk-ext-64k", post(b"5;" + b"x" * 65536 + b"\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-ext-ctl-byte", post(b"5;a=\x01\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-zero-padded-size", post(b"0000000000000000000005\r\nhello\r\n0\r\n\r\n", TE), 400, True),
    # RFC 9112 7.1: chunked framing ends its lines with CRLF; a bare LF there is where
    # front ends and servers disagree (smuggling), so it is a 400 (the head may use LF).
    ("chunk-lf-only-lines", post(b"5\nhello\n0\n\n", TE), 400, True),
    ("chunk-bare-lf-after-size", post(b"5\nhello\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-bare-lf-in-extension", post(b"2;a\nb\r\nab\r\n0\r\n\r\n", TE), 400, True),
    ("chunk-bare-lf-after-data", post(b"5\r\nhello\n0\r\n\r\n", TE), 400, True),
    ("chunk-bare-lf-after-last-size", post(b"5\r\nhello\r\n0\n\r\n", TE), 400, True),
    ("chunk-bare-lf-after-trailer", post(b"5\r\nhello\r\n0\r\nX: 1\n\r\n", TE), 400, True),
    ("chunk-bare-lf-ends-trailers", post(b"5\r\nhello\r\n0\r\n\n", TE), 400, True),
    ("chunk-trailer-ok", post(b"5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n", TE), 200, False),
    ("chunk-trailer-cl-ignored",
     post(b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n", TE), 200, False),
    ("chunk-trailer-no-colon", post(b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", TE), 400, True),
    ("chunk-trailer-nul", post(b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n", TE), 400, True),
    # RFC 9112 5.2: obs-fold may be rejected or replaced by spaces; loopkit rejects it, in
    # trailers as in heads.
    ("chunk-trailer-obs-fold", post(b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", TE), 400, True),
    ("chunk-trailer-bare-cr", post(b"5\r\nhello\r\n0\r\nX: a\rb\r\n\r\n", TE), 400, True),
    # RFC 9112 5.1: whitespace between a field name and the colon MUST be rejected (400).
    ("chunk-trailer-space-before-colon", post(b"5\r\nhello\r\n0\r\nX : a\r\n\r\n", TE),
     400, True),
    ("chunk-trailer-huge", post(b"5\r\nhello\r\n0\r\nX: " + b"t" * 65536 + b"\r\n\r\n", TE),
     400, True),
    ("chunk-smuggle-inside-data",
     post(b"2e\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: y\r\n\r\n\r\n0\r\n\r\n", TE),
     200, False),

    # ---- request line: methods ----------------------------------------------------------------
    ("method-33-chars", get(method=b"A" * 33), 501, True),
    ("method-4k", get(method=b"M" * 4096), 501, True),
    ("method-64k", get(method=b"M" * 65536), 501, True),
    ("method-unknown", get(method=b"FOO"), 501, False),
    ("method-webdav", get(method=b"PROPFIND"), 501, False),
    ("method-lowercase", get(method=b"get"), 501, False),
    ("method-bad-char", get(method=b"GE(T"), 400, True),
    ("method-empty", b" /a.txt HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("connect-loopback", b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n", 405, True),
    ("connect-foreign", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
     405, True),
    ("trace-file", get(method=b"TRACE"), 405, False),
    ("delete-read-only", get(method=b"DELETE"), 405, False),
    ("patch-file", post(b"x", cl(1), target=b"/a.txt", method=b"PATCH"), 405, False),

    # ---- request line: versions ---------------------------------------------------------------
    ("version-2.0", get(version=b"HTTP/2.0"), 505, True),
    ("version-3.0", get(version=b"HTTP/3.0"), 505, True),
    ("version-9.9", get(version=b"HTTP/9.9"), 505, True),
    ("version-0.9", get(version=b"HTTP/0.9"), 505, True),
    # RFC 9110 2.5 lets a server answer an unknown 1.x minor as 1.1; docs say 505.
    ("version-1.2", get(version=b"HTTP/1.2"), 505, True),
    ("version-1", get(version=b"HTTP/1"), 400, True),
    ("version-1.1.1", get(version=b"HTTP/1.1.1"), 400, True),
    ("version-1.10", get(version=b"HTTP/1.10"), 400, True),
    ("version-11", get(version=b"HTTP/11"), 400, True),
    ("version-lowercase", get(version=b"http/1.1"), 400, True),
    ("version-httx", get(version=b"HTTX/1.1"), 400, True),
    ("version-missing", b"GET /a.txt\r\n" + H + b"\r\n", 400, True),
    ("version-http09-simple", b"GET /a.txt\r\n\r\n", 400, True),
    ("request-line-two-spaces", b"GET  /a.txt HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("request-line-trailing-space", b"GET /a.txt HTTP/1.1 \r\n" + H + b"\r\n", 400, True),
    ("request-line-tabs", b"GET\t/a.txt\tHTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("target-fragment", get(b"/a.txt#frag"), 400, True),     # a fragment is never sent (RFC 9112 3.2)
    ("target-fragment-in-query", get(b"/_/get?q=1#x"), 400, True),
    ("request-line-bare-cr", b"GET /a.txt HTTP/1.1\r" + H + b"\r\n", 400, True),
    ("request-line-cr-cr-lf", b"GET /a.txt HTTP/1.1\r\r\n" + H + b"\r\n", 400, True),
    ("request-line-only-spaces", b"   \r\n\r\n", 400, True),

    # ---- request targets --------------------------------------------------------------------
    ("target-space", get(b"/a b.txt"), 400, True),
    ("target-raw-nul", get(b"/a\x00.txt"), 400, True),
    ("target-raw-del", get(b"/a\x7f.txt"), 400, True),
    ("target-raw-high-byte", get(b"/a\xff.txt"), 400, True),
    ("target-raw-ctl", get(b"/a\x01.txt"), 400, True),
    ("target-pct-nul", get(b"/a.txt%00.html"), 400, False),
    ("target-bad-pct", get(b"/a%zz.txt"), 400, False),
    ("target-truncated-pct", get(b"/a.txt%"), 400, False),
    ("target-dotdot", get(b"/../../../../etc/passwd"), 400, False),
    ("target-dotdot-encoded", get(b"/%2e%2e/%2e%2e/etc/passwd"), 400, False),
    ("target-dotdot-encoded-slash", get(b"/d/..%2f..%2f..%2fetc/passwd"), 400, False),
    ("target-dotdot-mixed-case", get(b"/%2E%2e/etc/passwd"), 400, False),
    ("target-no-leading-slash", get(b"../etc/passwd"), 400, True),
    ("target-backslashes", get(b"/..%5c..%5cetc%5cpasswd"), 404, False),
    ("target-double-encoded", get(b"/%252e%252e/%252e%252e/etc/passwd"), 404, False),
    ("target-overlong-utf8-dot", get(b"/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd"), 404, False),
    ("target-double-slash-root", get(b"//etc/passwd"), 404, False),
    ("target-dotfile", get(b"/.env"), 404, False),
    ("target-asterisk-get", get(b"*"), 400, True),
    ("target-8193", get(b"/" + b"a" * 8192), 414, True),
    ("target-100k", get(b"/" + b"a" * 100000), 414, True),
    ("target-authority-form-get", get(b"localhost:80"), 400, True),
    ("options-asterisk", get(b"*", method=b"OPTIONS"), 204, False),

    # ---- absolute-form targets and Host -------------------------------------------------------
    ("absolute-foreign", get(b"http://evil.example/a.txt"), 403, False),
    ("absolute-foreign-port", get(b"http://evil.example:80/a.txt"), 403, False),
    ("absolute-foreign-https", get(b"https://evil.example/a.txt"), 403, False),
    ("absolute-loopback-lookalike", get(b"http://127.0.0.1.evil.example/a.txt"), 403, False),
    ("absolute-localhost-lookalike", get(b"http://localhost.evil.example/a.txt"), 403, False),
    ("absolute-userinfo-foreign", get(b"http://localhost@evil.example/a.txt"), 400, True),
    ("absolute-userinfo-local", get(b"http://evil.example@localhost/a.txt"), 400, True),
    ("absolute-ftp-scheme", get(b"ftp://evil.example/a.txt"), 400, True),
    ("absolute-empty-authority", get(b"http:///a.txt"), 400, True),
    # RFC 9112 3.2.2: the target's authority wins over Host.
    ("absolute-local-host-foreign",
     b"GET http://localhost/a.txt HTTP/1.1\r\nHost: evil.example\r\n\r\n", 200, False),
    ("absolute-local-with-port", get(b"http://127.0.0.1:{PORT}/a.txt"), 200, False),
    ("absolute-ipv6-loopback", get(b"http://[::1]:{PORT}/a.txt"), 200, False),
    ("host-foreign", b"GET /a.txt HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403, False),
    ("host-foreign-port", b"GET /a.txt HTTP/1.1\r\nHost: evil.example:{PORT}\r\n\r\n", 403, False),
    ("host-rebinding-name", b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1.nip.io\r\n\r\n", 403, False),
    ("host-missing", b"GET /a.txt HTTP/1.1\r\n\r\n", 400, True),
    ("host-empty", b"GET /a.txt HTTP/1.1\r\nHost:\r\n\r\n", 403, False),
    ("host-duplicate", b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
     400, True),
    ("host-duplicate-same", b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
     400, True),
    ("host-list", b"GET /a.txt HTTP/1.1\r\nHost: localhost, evil.example\r\n\r\n", 400, True),
    ("host-with-space", b"GET /a.txt HTTP/1.1\r\nHost: local host\r\n\r\n", 400, True),
    ("host-port-over-65535", b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1:99999\r\n\r\n", 400, True),
    ("host-port-overflow", b"GET /a.txt HTTP/1.1\r\nHost: localhost:18446744073709551617\r\n\r\n",
     400, True),
    ("host-with-nul", b"GET /a.txt HTTP/1.1\r\nHost: evil.example\x00localhost\r\n\r\n", 400, True),
    ("host-broken-ipv6", b"GET /a.txt HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, True),
    ("host-uppercase", b"GET /a.txt HTTP/1.1\r\nHost: LOCALHOST\r\n\r\n", 200, False),
    ("host-mapped-v4", b"GET /a.txt HTTP/1.1\r\nHost: [::ffff:127.0.0.1]\r\n\r\n", 200, False),
    ("host-http10-foreign", b"GET /a.txt HTTP/1.0\r\nHost: evil.example\r\n\r\n", 403, True),

    # ---- header fields -----------------------------------------------------------------------
    ("obs-fold-space", get(headers=b"X-A: a\r\n b\r\n"), 400, True),
    ("obs-fold-tab", get(headers=b"X-A: a\r\n\tb\r\n"), 400, True),
    ("obs-fold-host", b"GET /a.txt HTTP/1.1\r\nHost:\r\n localhost\r\n\r\n", 400, True),
    ("whitespace-before-first-field", b"GET /a.txt HTTP/1.1\r\n " + H + b"\r\n", 400, True),
    ("bare-cr-in-value", get(headers=b"X-A: a\rb\r\n"), 400, True),
    ("bare-cr-line-end", get(headers=b"X-A: a\rX-B: b\r\n"), 400, True),
    ("bare-cr-blank-line", b"GET /a.txt HTTP/1.1\r\n" + H + b"\r\r\n", 400, True),
    ("nul-in-value", get(headers=b"X-A: a\x00b\r\n"), 400, True),
    ("nul-in-name", get(headers=b"X-\x00A: b\r\n"), 400, True),
    ("ctl-01-in-value", get(headers=b"X-A: a\x01b\r\n"), 400, True),
    ("esc-in-value", get(headers=b"X-A: \x1b[31mred\r\n"), 400, True),
    ("del-in-value", get(headers=b"X-A: a\x7fb\r\n"), 400, True),
    ("obs-text-in-value-ok", get(headers=b"X-A: caf\xc3\xa9 \xff\x80\r\n"), 200, False),
    ("tab-in-value-ok", get(headers=b"X-A: a\tb\r\n"), 200, False),
    ("field-without-colon", get(headers=b"NoColonHere\r\n"), 400, True),
    ("field-empty-name", get(headers=b": value\r\n"), 400, True),
    ("field-name-space", get(headers=b"X A: b\r\n"), 400, True),
    ("field-name-paren", get(headers=b"X(A): b\r\n"), 400, True),
    ("field-name-high-byte", get(headers=b"X-\xc3\xa9: b\r\n"), 400, True),
    ("host-space-before-colon", b"GET /a.txt HTTP/1.1\r\nHost : localhost\r\n\r\n", 400, True),
    ("fields-100-ok", get(headers=b"".join(b"X-%d: v\r\n" % i for i in range(99))), 200, False),
    ("fields-101", get(headers=b"".join(b"X-%d: v\r\n" % i for i in range(100))), 431, True),
    ("fields-10000", get(headers=b"X: v\r\n" * 10000), 431, True),
    ("field-17k", get(headers=b"X-Big: " + b"b" * 17000 + b"\r\n"), 431, True),
    ("head-never-ends-64k", b"GET /a.txt HTTP/1.1\r\n" + H + b"X: " + b"c" * 65536, 431, True),
    ("expect-unknown", get(headers=b"Expect: 202-accepted\r\n"), 417, False),
    ("expect-100-get-ok", get(headers=b"Expect: 100-continue\r\n"), 200, False),
    ("upgrade-h2c-ignored", get(headers=b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), 200, False),
    ("upgrade-websocket-ignored", get(headers=b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                              b"Sec-WebSocket-Version: 13\r\n"), 200, False),
    ("connection-close-honoured", get(headers=b"Connection: close\r\n"), 200, True),
    ("http10-closes", b"GET /a.txt HTTP/1.0\r\n\r\n", 200, True),
    ("http10-keep-alive", b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, False),
    ("lf-only-line-ends", b"GET /a.txt HTTP/1.1\nHost: localhost\n\n", 200, False),
    ("leading-empty-lines", b"\r\n\r\nGET /a.txt HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("range-many-overlapping", get(headers=b"Range: bytes=" + b",".join([b"0-0"] * 2000) + b"\r\n"),
     200, False),
    ("range-overflow", get(headers=b"Range: bytes=99999999999999999999999-\r\n"), 416, False),
    ("range-suffix-overflow", get(headers=b"Range: bytes=-99999999999999999999999\r\n"),
     206, False),
    ("range-reversed", get(headers=b"Range: bytes=5-2\r\n"), 200, False),
    ("range-garbage", get(headers=b"Range: bytes=a-b\r\n"), 200, False),
    ("if-none-match-huge-list", get(headers=b"If-None-Match: " + b", ".join([b'"x"'] * 1500)
                                    + b"\r\n"), 200, False),
    ("cookie-huge-ok", get(b"/_/cookies", b"Cookie: " + b"; ".join(b"c%d=v" % i for i in range(1000))
                           + b"\r\n"), 200, False),

    # ---- API endpoints fed hostile parameters ---------------------------------------------------
    ("api-status-out-of-range", get(b"/_/status/999"), 400, False),
    ("api-status-negative", get(b"/_/status/-200"), 400, False),
    ("api-delay-too-long", get(b"/_/delay/99999"), 400, False),
    ("api-delay-nan", get(b"/_/delay/nan"), 400, False),
    ("api-bytes-too-many", get(b"/_/bytes/999999999999999"), 400, False),
    ("api-bytes-negative", get(b"/_/bytes/-1"), 400, False),
    ("api-redirect-too-many", get(b"/_/redirect/100000"), 400, False),
    ("api-drip-too-long", get(b"/_/drip?duration=1000000&numbytes=10"), 400, False),
    ("api-drip-huge-numbytes", get(b"/_/drip?duration=0&numbytes=99999999999999"), 400, False),
    ("api-base64-invalid", get(b"/_/base64/%%%%"), 400, False),
    ("api-redirect-to-foreign", get(b"/_/redirect-to?url=http://evil.example/"), 400, False),
    ("api-redirect-to-scheme-relative", get(b"/_/redirect-to?url=//evil.example/"), 400, False),
    ("api-redirect-to-javascript", get(b"/_/redirect-to?url=javascript:alert(1)"), 400, False),
    ("api-redirect-to-userinfo", get(b"/_/redirect-to?url=http://127.0.0.1@evil.example/"),
     400, False),
    ("api-response-headers-cl", get(b"/_/response-headers?Content-Length=0"), 400, False),
    ("api-response-headers-te", get(b"/_/response-headers?Transfer-Encoding=chunked"), 400, False),
    ("api-response-headers-nosniff",
     get(b"/_/response-headers?X-Content-Type-Options=sniff"), 400, False),
    ("api-response-headers-csp", get(b"/_/response-headers?Content-Security-Policy=none"),
     400, False),
    ("api-response-headers-crlf-value", get(b"/_/response-headers?X-A=a%0d%0aX-Injected:%201"),
     400, False),
    ("api-response-headers-crlf-name", get(b"/_/response-headers?X%0d%0aInjected=1"), 400, False),
    ("api-response-headers-connection", get(b"/_/response-headers?Connection=close"), 400, False),
    ("api-anything-json-deep", post(b"[" * 100000 + b"]" * 100000, cl(200000)), 200, False),

    # ---- not HTTP at all -----------------------------------------------------------------------
    ("tls-client-hello", bytes.fromhex("16030100a5010000a10303") + os.urandom(32) + b"\x00" * 64,
     None, True),
    ("binary-nul-bytes", b"\x00\x00\x00\x00GET / HTTP/1.1\r\n\r\n", None, True),
    ("binary-high-bytes", b"\xff\xfe\xfd\xfcGET / HTTP/1.1\r\n\r\n", None, True),
    ("ssh-banner", b"SSH-2.0-OpenSSH_9.6\r\n", 400, True),
    ("ftp-command-as-http", b"USER anonymous\r\n", 400, True),
]

IDS = [c[0] for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case names"


@pytest.fixture(scope="module", params=["http,ftp", "http"])
def hserver(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-root")
    (root / "a.txt").write_bytes(FILE)
    (root / "d").mkdir()
    (root / "d" / "b.txt").write_bytes(b"bee\n")
    (root / ".env").write_bytes(b"SECRET=1\n")
    s = FtpServer(str(root), ["--proto", request.param, "--quiet"]).settle()
    s.proto = request.param
    yield s
    stop_checked([s])  # alive, nothing left open after the whole corpus, exit 0


def run_case(srv, data, expected, must_close):
    """Sends data + PROBE in one write; returns a description of a violation, or None."""
    data = data.replace(b"{PORT}", str(srv.port).encode())
    method = data.split(b" ", 1)[0].decode("latin-1")
    if expected is None and srv.proto == "http":
        expected = 400  # no sniffing: the HTTP parser itself rejects what is not HTTP
    with Conn(srv, timeout=3) as c:
        try:
            c.send(data + PROBE)
        except OSError:
            pass  # the server may close before reading everything (it answered early)
        try:
            r = c.response(method if method in ("HEAD",) else "GET")
        except EOFError:
            if expected is None:
                return None
            return f"closed without a response (expected {expected})"
        except AssertionError as e:
            return f"unparseable answer: {e}; bytes {c.buf[:200]!r}"
        if r.status != expected:
            return f"status {r.status} (expected {expected}); {r!r}"
        if r.header("x-content-type-options") != "nosniff":
            return f"no X-Content-Type-Options: nosniff on {r.status}"
        if must_close:
            if not r.closes():
                return f"{r.status} without Connection: close, though the connection must close"
            closed, got = c.wait_closed(3)
            if not closed:
                return f"connection not closed after {r.status} (RFC 9112 requires it)"
            if got:
                return f"bytes after the answer on a closing connection (probe answered?): {got[:200]!r}"
            return None
        if r.closes():
            return f"{r.status} with Connection: close, though the connection must stay open"
        # The connection stays open: the probe must be the next thing answered.
        try:
            p = c.response()
        except EOFError:
            return f"connection closed after {r.status}, though it must stay open"
        if p.status != 200 or b'"ok"' not in p.body:
            return f"probe after the case got {p!r}: the case was framed wrongly"
    return None


@pytest.mark.parametrize("name,data,expected,must_close", CASES, ids=IDS)
def test_hostile_request(hserver, name, data, expected, must_close):
    problem = run_case(hserver, data, expected, must_close)
    assert problem is None, f"{name}: {problem}"
    assert_alive(hserver)


def test_corpus_size():
    assert len(CASES) >= 100, len(CASES)
