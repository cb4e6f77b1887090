"""Every status and FTP reply comes from the one table (src/core/errors.def): no status
code or reply code literal remains anywhere else in src/ (issue 9).

The scan is lexical: comments are removed, then string literals and code are searched
for what only a status or a reply looks like. Its patterns are tested here too, so a
change that makes the scan blind fails."""
import os
import re

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")

# "220 Ready", "550-Files", "HTTP/1.1 404": a reply or status line written by hand.
REPLY_START = re.compile(r'"[1-5]\d\d[ -]')
STATUS_LINE = re.compile(r'HTTP/1\.[01] \d{3}')
# A literal status given to a response or reply writer, or compared with a status.
WRITER_CALL = re.compile(r'\b(resp_start|resp_text|resp_error\w*|api_error\w*|reply\w*|redirect|send_json|'
                         r'ftp_reply\w*)\s*\([^;]*?\b([1-5]\d\d)\b')
STATUS_CMP = re.compile(r'\b(status|code|http|ftp)\s*(==|!=|<=|>=|<|>|=)\s*([1-5]\d\d)\b')
# Literals that look like a status but are not one: a header value, and the default of
# `bench http --ok-status`, a range of statuses as the user types it.
ALLOWED_STRINGS = {'"100-continue"', '"200-299"'}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def violations(text):
    out = []
    for n, line in enumerate(strip_comments(text).splitlines(), 1):
        strings = re.findall(r'"(?:[^"\\]|\\.)*"', line)
        for lit in strings:
            if lit in ALLOWED_STRINGS:
                continue
            if REPLY_START.match(lit) or STATUS_LINE.search(lit):
                out.append((n, lit))
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
        m = WRITER_CALL.search(code) or STATUS_CMP.search(code)
        if m:
            out.append((n, m.group(0)))
    return out


def test_the_scan_sees_what_it_must():
    bad = [
        'reply(s, "550 No such file.");',
        'resp_start(c, 404);',
        'resp_error(c, 413, msg);',
        'buf_puts(b, "HTTP/1.1 100 Continue\\r\\n\\r\\n");',
        'if (code == 204) x();',
        'c->status = 500;',
        'reply(s, "%d %s", 226, "done");',
    ]
    for line in bad:
        assert violations(line), f"the scan missed {line!r}"
    good = [
        'resp_start(c, HTTP_NOT_FOUND);',
        '/* a 404 in a comment */ x();',
        'if (!http_slice_ieq(v, "100-continue")) y();',
        'char buf[512];',
        'n = 100;',
    ]
    for line in good:
        assert not violations(line), f"the scan flags {line!r}: {violations(line)}"


def test_no_status_or_reply_literal_outside_the_table():
    found = []
    for d, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(d, f)
            with open(path, errors="replace") as fh:
                for n, what in violations(fh.read()):
                    found.append(f"{os.path.relpath(path, SRC)}:{n}: {what}")
    assert not found, "status or reply literals outside src/core/errors.def:\n" + "\n".join(found)
