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
