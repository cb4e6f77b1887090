"""--help and docs/serve.md describe the same flags."""
import os
import re
import subprocess

from conftest import LOOPKIT

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "serve.md")


def help_flags():
    out = subprocess.run([LOOPKIT, "serve", "--help"], capture_output=True, text=True,
                         timeout=5).stdout
    return set(re.findall(r"^\s+(--[a-z-]+)", out, re.M))


def doc_flags():
    text = open(DOCS).read()
    return set(re.findall(r"^\| `(--[a-z-]+)", text, re.M))


def test_help_and_docs_agree():
    h, d = help_flags(), doc_flags()
    assert len(h) >= 15
    assert h == d, f"only in --help: {h - d}; only in docs: {d - h}"


def test_readme_gives_the_two_commands():
    text = open(os.path.join(os.path.dirname(DOCS), "..", "README.md")).read()
    assert "make run" in text and "make test" in text


BENCH_DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "bench.md")
BENCH_MODES = ("tcp", "rr", "crr", "http")


def bench_help_flags(mode):
    out = subprocess.run([LOOPKIT, "bench", mode, "--help"], capture_output=True, text=True,
                         timeout=5).stdout
    return set(re.findall(r"^\s+(--?[a-zA-Z0-9][a-z-]*)", out, re.M))


def bench_doc_flags(mode):
    sec = open(BENCH_DOCS).read().split(f"## `loopkit bench {mode}")[1].split("\n## ")[0]
    table = sec.split("JSON fields:")[0]
    return set(re.findall(r"^\| `(--?[a-zA-Z0-9][a-z-]*)", table, re.M))


def test_bench_help_and_docs_agree():
    for mode in BENCH_MODES:
        h, d = bench_help_flags(mode), bench_doc_flags(mode)
        assert len(h) >= 6, (mode, h)
        assert h == d, f"bench {mode}: only in --help: {h - d}; only in docs: {d - h}"


def test_bench_modes_listed_in_help_and_docs():
    out = subprocess.run([LOOPKIT, "bench", "--help"], capture_output=True, text=True,
                         timeout=5).stdout
    text = open(BENCH_DOCS).read()
    for mode in BENCH_MODES:
        assert re.search(rf"^\s+{mode}\s", out, re.M), out
        assert f"## `loopkit bench {mode}" in text


# The diagnostic verbs: every flag in --help has a row in docs/VERB.md and back.
DIAG_VERBS = ["doctor", "ping", "ports", "who", "port"]


def verb_help_flags(verb):
    out = subprocess.run([LOOPKIT, verb, "--help"], capture_output=True, text=True,
                         timeout=5).stdout
    return set(re.findall(r"^\s+(--?[a-z][a-z0-9-]*)", out, re.M))


def verb_doc_flags(verb):
    with open(os.path.join(os.path.dirname(DOCS), verb + ".md")) as f:
        return set(re.findall(r"^\| `(--?[a-z][a-z0-9-]*)", f.read(), re.M))


def test_diag_verbs_help_and_docs_agree():
    for verb in DIAG_VERBS:
        h, d = verb_help_flags(verb), verb_doc_flags(verb)
        assert "--help" in h and "--json" in h, verb
        assert h == d, f"{verb}: only in --help: {h - d}; only in docs: {d - h}"


def test_diag_verbs_in_readme_and_top_help():
    text = open(os.path.join(os.path.dirname(DOCS), "..", "README.md")).read()
    top = subprocess.run([LOOPKIT, "--help"], capture_output=True, text=True,
                         timeout=5).stdout
    for verb in DIAG_VERBS:
        assert re.search(rf"^### .*`loopkit {verb}[ `]", text, re.M), verb
        assert re.search(rf"^\s+{verb}\s", top, re.M), verb
