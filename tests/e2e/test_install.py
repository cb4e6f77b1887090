"""make install / uninstall (PREFIX, DESTDIR), the generated man pages and completions, and
make deb: a package lintian accepts and dpkg installs into (and removes from) a root of
our own."""
import fcntl
import gzip
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import hard_timeout_fixture

_hard_timeout = hard_timeout_fixture(600)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def sh(*cmd, cwd=ROOT, env=None, timeout=300, check=True):
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=env)
    if check:
        assert p.returncode == 0, (cmd, p.stdout[-2000:], p.stderr[-2000:])
    return p


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """`make install DESTDIR=... PREFIX=/usr`, done once: (destdir, verbs)."""
    dest = tmp_path_factory.mktemp("stage")
    sh("make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr")
    binary = dest / "usr/bin/loopkit"
    verbs = sh(binary, "--verbs").stdout.split()
    return dest, verbs


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def test_install_puts_every_file_in_place(staged):
    dest, verbs = staged
    assert {"serve", "ports", "who", "doctor", "ping", "port", "bench"} <= set(verbs), verbs
    want = ["usr/bin/loopkit", "usr/share/bash-completion/completions/loopkit",
            "usr/share/fish/vendor_completions.d/loopkit.fish", "usr/share/man/man1/loopkit.1",
            "usr/share/zsh/site-functions/_loopkit"]
    want += [f"usr/share/man/man1/loopkit-{v}.1" for v in verbs]
    assert files_under(dest) == sorted(want)
    mode = os.stat(dest / "usr/bin/loopkit").st_mode
    assert stat.S_IMODE(mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "usr/share/man/man1/loopkit.1").st_mode) == 0o644
    out = sh(dest / "usr/bin/loopkit", "--version").stdout
    assert out.strip() == "loopkit " + open(os.path.join(ROOT, "VERSION")).read().strip()


def test_default_prefix_is_usr_local(tmp_path):
    sh("make", "-s", "install", f"DESTDIR={tmp_path}")
    assert (tmp_path / "usr/local/bin/loopkit").exists()
    assert (tmp_path / "usr/local/share/man/man1/loopkit-serve.1").exists()
    sh("make", "-s", "uninstall", f"DESTDIR={tmp_path}")
    assert files_under(tmp_path) == []


def test_uninstall_removes_every_file(tmp_path):
    sh("make", "-s", "install", f"DESTDIR={tmp_path}", "PREFIX=/opt/lk")
    assert len(files_under(tmp_path)) >= 12
    sh("make", "-s", "uninstall", f"DESTDIR={tmp_path}", "PREFIX=/opt/lk")
    assert files_under(tmp_path) == []


def man(page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    return sh("man", "--warnings", "-l", page, env=env)


def test_man_pages_render_without_warnings(staged):
    dest, verbs = staged
    for name in ["loopkit"] + [f"loopkit-{v}" for v in verbs]:
        page = dest / f"usr/share/man/man1/{name}.1"
        p = man(page)
        assert p.stderr == "", (name, p.stderr)
        assert re.search(r"^NAME\n\s+" + re.escape(name) + r"\s+-\s+\S", p.stdout, re.M), p.stdout[:300]
        assert "OPTIONS" in p.stdout and "--help" in p.stdout
        # whatis/apropos read NAME the way lexgrog does
        w = sh("lexgrog", page, check=False)
        assert w.returncode == 0 and f"{name} - " in w.stdout, w.stdout


def test_verb_pages_document_every_flag(staged):
    dest, verbs = staged
    for v in verbs:
        text = man(dest / f"usr/share/man/man1/loopkit-{v}.1").stdout
        helps = sh(dest / "usr/bin/loopkit", v, "--help").stdout
        for flag in re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", helps, re.M):
            assert flag in text, (v, flag)
    bench = man(dest / "usr/share/man/man1/loopkit-bench.1").stdout
    for mode in ("tcp", "rr", "crr", "http"):
        assert f"loopkit bench {mode}" in bench


def test_help_points_at_an_installed_man_page(staged):
    """--help names a page make install puts in place (docs/ is not installed), and
    loopkit(1) ends each verb's line with a full stop before its cross-reference."""
    dest, verbs = staged
    binary = dest / "usr/bin/loopkit"
    pages = [([], "loopkit")] + [([v], f"loopkit-{v}") for v in verbs]
    pages += [(["bench", m], "loopkit-bench") for m in ("tcp", "rr", "crr", "http")]
    for args, page in pages:
        helps = sh(binary, *args, "--help").stdout
        assert f"\nSee {page}(1).\n" in helps, (args, helps[:600])
        assert "See docs/" not in helps, (args, helps[:600])
        assert (dest / f"usr/share/man/man1/{page}.1").exists(), page
    wide = dict(os.environ, MANWIDTH="400", LC_ALL="C.UTF-8")  # no hyphenation at line ends
    text = " ".join(sh("man", "-l", dest / "usr/share/man/man1/loopkit.1", env=wide).stdout.split())
    for v in verbs:
        assert re.search(rf"\S\. See loopkit-{v}\(1\)\.", text), (v, text[:2000])


BASH_PROBE = r"""
source "$1"
complete -p loopkit
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _loopkit
      echo "${COMPREPLY[*]}"; }
t loopkit se
t loopkit serve --po
t loopkit serve --log ''
t loopkit bench ''
t loopkit bench tcp --dur
t loopkit ping -c 3 --js
"""


def test_bash_completion(staged, tmp_path):
    dest, _ = staged
    probe = tmp_path / "probe.sh"
    probe.write_text(BASH_PROBE)
    out = sh("bash", "--norc", probe, dest / "usr/share/bash-completion/completions/loopkit").stdout
    assert out.splitlines() == ["complete -F _loopkit loopkit", "serve", "--port", "common json combined",
                                "tcp rr crr http", "--duration", "--json"], out


def test_zsh_completion_parses_and_registers(staged):
    zsh = shutil.which("zsh")
    assert zsh, "zsh is installed by scripts/deps"
    dest, _ = staged
    d = dest / "usr/share/zsh/site-functions"
    sh(zsh, "-n", d / "_loopkit")
    out = sh(zsh, "-f", "-c", f"fpath=({d} $fpath); autoload -Uz compinit; "
         f"compinit -u -d {dest}/zcompdump; print -r -- $_comps[loopkit]").stdout
    assert out.strip() == "_loopkit", out


def test_fish_completion(staged):
    fish = shutil.which("fish")
    assert fish, "fish is installed by scripts/deps"
    dest, _ = staged
    f = dest / "usr/share/fish/vendor_completions.d/loopkit.fish"
    sh(fish, "-n", f)
    out = sh(fish, "--no-config", "-c", f"source {f}; complete -C 'loopkit serve --po'; "
             "complete -C 'loopkit bench t'; complete -C 'loopkit serve --log '").stdout
    firsts = [line.split("\t")[0] for line in out.splitlines()]
    assert firsts == ["--port", "tcp", "combined", "common", "json"], out


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    # Under xdist both workers may need the package, and `make deb` repacks it in place:
    # one builds at a time, and each tests a copy of its own (a reader once saw the
    # other worker's half-written file: "not a Debian format archive").
    with open(tmp_path_factory.getbasetemp().parent / "make-deb.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = sh("make", "-s", "--no-print-directory", "deb", timeout=600)
        path = os.path.join(ROOT, p.stdout.strip().splitlines()[-1])
        assert re.search(r"loopkit_[\d.]+_\w+\.deb$", path), path
        copy = tmp_path_factory.mktemp("deb") / os.path.basename(path)
        shutil.copyfile(path, copy)
    return str(copy)


def test_deb_fields(deb):
    info = sh("dpkg-deb", "-f", deb).stdout
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    assert f"Version: {version}\n" in info and "Package: loopkit\n" in info
    depends = re.search(r"^Depends: (.*)$", info, re.M).group(1)
    # What the binary links (libc, Nettle, jansson) and opens when first needed (zlib,
    # Brotli, SQLite: scripts/mkdeb's stub refers to every function it looks up), as
    # dpkg-shlibdeps found it.
    names = {d.split()[0] for d in depends.split(", ")}
    assert names == {"libc6", "libbrotli1", "libjansson4", "libnettle8", "libsqlite3-0", "zlib1g"}, depends
    # the floors of the functions looked up, not of a stub that uses none (3.5.9, 1.1.4)
    assert "libsqlite3-0 (>= 3.20.0)" in depends and "zlib1g (>= 1:1.2.0)" in depends, depends
    listing = sh("dpkg-deb", "-c", deb).stdout
    for path in ("./usr/bin/loopkit", "./usr/share/man/man1/loopkit-serve.1.gz",
                 "./usr/share/zsh/vendor-completions/_loopkit", "./usr/share/doc/loopkit/copyright"):
        assert re.search(rf" {re.escape(path)}$", listing, re.M), path
    assert " root/root " in listing and "./usr/local" not in listing


def test_lintian_accepts_the_deb(deb):
    assert shutil.which("lintian"), "lintian is installed by scripts/deps"
    p = sh("lintian", "--fail-on", "error", "--display-info", deb, check=False, timeout=300)
    tags = [line for line in p.stdout.splitlines() if re.match(r"^[EWIXPO]: ", line)]
    assert p.returncode == 0 and not [t for t in tags if t.startswith("E:")], p.stdout + p.stderr
    assert tags == [], f"lintian has remarks (allowed, but list them in the docs): {tags}"


def test_deb_installs_into_a_root_of_its_own_and_is_removed(deb, tmp_path):
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / d).mkdir(parents=True)
    for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
        (root / f).touch()
    # libc6 lives in the host's database, not this one: --force-depends for that alone.
    dpkg = ["dpkg", f"--root={root}", "--force-not-root", "--log=/dev/null"]
    sh(*dpkg, "--force-depends", "-i", deb)
    assert sh(root / "usr/bin/loopkit", "--version").stdout.startswith("loopkit ")
    page = gzip.open(root / "usr/share/man/man1/loopkit-serve.1.gz").read().decode()
    assert page.startswith(".\\\" loopkit-serve(1)")
    listed = sh(*dpkg, "-L", "loopkit").stdout
    assert "/usr/share/bash-completion/completions/loopkit" in listed
    sh(*dpkg, "-r", "loopkit")
    left = [f for f in files_under(root) if not f.startswith("var/lib/dpkg")]
    assert left == [], left
