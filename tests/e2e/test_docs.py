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
