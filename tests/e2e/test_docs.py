"""Every verb's flags agree between --help, its man page and docs/VERB.md: names, short
forms, argument names and defaults (all three come from one flag table in src/cmd/, and
this proves it); the docs' tables are current; a short letter means one long flag in
every verb."""
import os
import re
import subprocess

import pytest

from conftest import LOOPKIT

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DOCS = os.path.join(ROOT, "docs")


def loopkit(*args):
    p = subprocess.run([LOOPKIT, *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def section(text, title):
    """The indented lines under `title:` in --help output."""
    m = re.search(rf"^{title}:\n((?:  .*\n)+)", text, re.M)
    return m.group(1).splitlines() if m else []


def verb_paths():
    """Every verb and subcommand, as "serve" or "bench tcp", found from --help itself."""
    paths = []
    for line in section(loopkit("--help"), "verbs"):
        verb = line.split()[0]
        subs = section(loopkit(verb, "--help"), "modes")
        paths += [f"{verb} {s.split()[0]}" for s in subs] or [verb]
    return paths


LEFT = re.compile(r"^(?:-([A-Za-z0-9]), )?(--[a-z0-9-]+|[A-Z][A-Z0-9_.]*)(?: (\S+))?$")


def row(left, meaning):
    """(name, (short, arg, default)) from a rendered left column and meaning."""
    m = LEFT.match(left.strip())
    assert m, f"cannot read the flag {left!r}"
    d = re.search(r"\((?:[^()]*; )?default ([^()]*)\)$", meaning.strip())
    return m.group(2), (m.group(1), m.group(3), d.group(1) if d else None)


def help_rows(path):
    out = loopkit(*path.split(), "--help")
    rows = {}
    for line in section(out, "arguments") + section(out, "options"):
        m = re.match(r"^  +(\S.*?)  +(.*)$", line)
        assert m, f"{path} --help: cannot read {line!r}"
        k, v = row(m.group(1), m.group(2))
        rows[k] = v
    return rows


def roff_text(s):
    s = re.sub(r"\\f[BIR]", "", s)
    return s.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def man_rows(path):
    """Rows of the OPTIONS and ARGUMENTS sections that belong to path in its man page
    (a subcommand's rows are under `.SH "loopkit bench tcp"`)."""
    verb = path.split()[0]
    src = loopkit("--man", verb).splitlines()
    rows, owner, sect = {}, verb, ""
    for i, line in enumerate(src):
        if line.startswith(".SH"):
            title = line[3:].strip().strip('"')
            if title.startswith("loopkit "):
                owner, sect = roff_text(title)[len("loopkit "):], ""
            else:
                owner, sect = verb, title
        elif line.startswith(".SS"):
            sect = line[3:].strip()
        elif line == ".TP" and owner == path and sect in ("OPTIONS", "ARGUMENTS"):
            body = []
            for b in src[i + 2:]:
                if b.startswith("."):
                    break
                body.append(b)
            k, v = row(roff_text(src[i + 1]), roff_text(" ".join(body)))
            rows[k] = v
    return rows


def doc_block(path):
    verb = path.split()[0]
    text = open(os.path.join(DOCS, verb + ".md")).read()
    m = re.search(rf"<!-- flags: {path} -->\n(.*?)<!-- /flags -->", text, re.S)
    assert m, f"docs/{verb}.md has no <!-- flags: {path} --> block"
    return m.group(1)


def doc_rows(path):
    rows = {}
    for line in doc_block(path).splitlines()[2:]:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 3, line
        k, (short, arg, _) = row(cells[0].replace("`", ""), cells[1])
        rows[k] = (short, arg, cells[2].strip("`") or None)
    return rows


PATHS = verb_paths()


def test_every_verb_is_found():
    assert {"serve", "doctor", "ping", "ports", "who", "port"} <= set(PATHS), PATHS
    assert {"bench tcp", "bench rr", "bench crr", "bench http"} <= set(PATHS), PATHS


@pytest.mark.parametrize("path", PATHS)
def test_help_man_and_docs_agree(path):
    h, m, d = help_rows(path), man_rows(path), doc_rows(path)
    assert "--help" in h and h["--help"][0] == "h", h
    assert h == m, f"{path}: --help and man page differ: {set(h.items()) ^ set(m.items())}"
    assert h == d, f"{path}: --help and docs differ: {set(h.items()) ^ set(d.items())}"


@pytest.mark.parametrize("path", PATHS)
def test_docs_tables_are_current(path):
    assert doc_block(path) == loopkit("--markdown", path), \
        f"docs for {path} are out of date: run `make docs`"


def test_a_letter_means_one_flag_everywhere():
    seen = {}
    for path in PATHS:
        for name, (short, _, _) in help_rows(path).items():
            if short:
                seen.setdefault(short, {}).setdefault(name, []).append(path)
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    assert not clashes, f"one letter, several flags: {clashes}"
    assert set(seen.get("t", {"--threads": 0})) == {"--threads"}
    assert set(seen.get("d", {"--duration": 0})) == {"--duration"}


def test_readme_gives_install_and_test():
    text = open(os.path.join(ROOT, "README.md")).read()
    assert "make install" in text and "make test" in text


def test_verbs_in_readme_and_top_help():
    text = open(os.path.join(ROOT, "README.md")).read()
    verbs = [line.split()[0] for line in section(loopkit("--help"), "verbs")]
    for verb in verbs:
        assert re.search(rf"^### .*`loopkit {verb}[ `]", text, re.M), verb


def test_bench_modes_listed_in_help_and_docs():
    out = loopkit("bench", "--help")
    text = open(os.path.join(DOCS, "bench.md")).read()
    for mode in ("tcp", "rr", "crr", "http"):
        assert re.search(rf"^\s+{mode}\s", out, re.M), out
        assert f"## `loopkit bench {mode}" in text


def test_readme_serve_example_is_runnable():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("### `loopkit serve")[1].split("```sh\n")[1].split("```")[0]
    lines = block.splitlines()
    # what serve prints first: its HTTP and its FTP URL
    assert lines[1:3] == ["http://127.0.0.1:62893/", "ftp://127.0.0.1:62893/"], lines[:3]
    # a server runs until stopped: nothing may wait for it to finish
    assert not re.search(r"loopkit serve[^\n]*&&", text)


def test_source_paths_named_in_the_docs_exist():
    """Every src/, tests/, bench/, fuzz/ or scripts/ path the README and docs/ name in
    backquotes exists (the tour once named files that had moved)."""
    files = [os.path.join(ROOT, "README.md")] + [
        os.path.join(ROOT, "docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs")))
        if f.endswith(".md")]
    missing = []
    for path in files:
        text = open(path).read()
        for ref in re.findall(r"`((?:src|tests|bench|fuzz|scripts)/[^`\s]*)`", text):
            ref = ref.rstrip("/:,.")
            names = [ref]
            m = re.match(r"(.*)\{([^}]*)\}(.*)", ref)  # src/cmd/{a,b}.c
            if m:
                names = [m.group(1) + part + m.group(3) for part in m.group(2).split(",")]
            for name in names:
                if re.search(r"[A-Z]{3,}|\*|<", name):  # a pattern: src/cmd/VERB.c
                    continue
                if not os.path.exists(os.path.join(ROOT, name)):
                    missing.append(f"{os.path.relpath(path, ROOT)}: {name}")
    assert not missing, "\n".join(missing)
