"""loopkit audit (issue 14): the findings for the lab's real services, exactly.

Every listener of the lab (scanlab.py) gets exactly the findings below, no more and no
fewer; loopkit serve with its defaults audits clean. The SARIF output is validated
against the SARIF 2.1.0 JSON schema (tests/data/sarif-schema-2.1.0.json, from OASIS) with
Debian's python3-jsonschema. The checks are harmless: after the audit vsftpd's tree, the
Redis keyspace and the Memcached item count are what they were."""
import json
import os
import shutil
import socket


from conftest import hard_timeout_fixture
from scanlab import Lab, lab_fixture, loopkit

_hard_timeout = hard_timeout_fixture(240)

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "data", "sarif-schema-2.1.0.json")

# Each lab service and the findings it must get (ids), nothing else.
EXPECT = {
    "redis": {"redis-no-auth"},
    "memcached": {"memcached-no-auth"},
    "pyhttp": {"dns-rebinding", "home-listing"},
    "nginx": set(),
    "nginxcors": {"cors-credentials"},
    "vsftpd": {"ftp-anonymous-write"},
    "wildcard": {"exposed"},
    "loopkit": set(),
    "lkcors": {"private-network-access"},
    "devtools": {"devtools-no-auth"},
}
SEVERITY = {"redis-no-auth": "high", "memcached-no-auth": "medium", "dns-rebinding": "high",
            "home-listing": "high", "cors-credentials": "high", "ftp-anonymous-write": "high",
            "exposed": "medium", "private-network-access": "medium", "devtools-no-auth": "high"}


lab = lab_fixture()


def tree(path):
    out = []
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            out.append((os.path.relpath(os.path.join(d, n), path), st.st_size, st.st_mtime_ns))
    return sorted(out)


def line_cmd(port, cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(cmd)
        data = b""
        while not data.endswith(b"\r\n") or (cmd == b"stats\r\n" and not data.endswith(b"END\r\n")):
            b = s.recv(65536)
            if not b:
                break
            data += b
        return data.decode()


def state(lab):
    """What a write would change: vsftpd's tree, Redis's key count, Memcached's items."""
    items = [l for l in line_cmd(lab.ports["memcached"], b"stats\r\n").splitlines()
             if l.startswith("STAT total_items ") or l.startswith("STAT curr_items ")]
    return (tree(os.path.join(lab.dir, "vsftpd", "ftp")),
            line_cmd(lab.ports["redis"], b"DBSIZE\r\n"), items)


def test_audit_reports_exactly_the_expected_findings(lab):
    before = state(lab)
    p = loopkit("audit", "-p", lab.port_list(), "--json")
    assert p.returncode == 1, p.stderr  # findings at or above --fail-on low
    doc = json.loads(p.stdout)
    assert state(lab) == before, "the audit changed something"
    port_name = {port: name for name, port in lab.ports.items()}
    got = {name: set() for name in lab.ports}
    for f in doc["findings"]:
        name = port_name[f["port"]]
        got[name].add(f["id"])
        assert f["severity"] == SEVERITY[f["id"]], f
        assert f["evidence"] and f["fix"] and f["title"], f
        assert f["owner"]["pid"] == lab.pids[name], f
    assert got == EXPECT, json.dumps(doc["findings"], indent=1)
    assert len(doc["findings"]) == sum(len(v) for v in EXPECT.values())
    listeners = {l["port"]: l for l in doc["listeners"]}
    assert set(listeners) == set(lab.ports.values())
    assert listeners[lab.ports["wildcard"]]["bound"] == f"0.0.0.0:{lab.ports['wildcard']}"
    assert doc["counts"] == {"critical": 0, "high": 6, "medium": 3, "low": 0}
    ev = {f["id"]: f["evidence"] for f in doc["findings"]}
    target = {f["id"]: f["target"] for f in doc["findings"]}
    assert target["exposed"] == f"0.0.0.0:{lab.ports['wildcard']}"
    assert target["redis-no-auth"] == f"127.0.0.1:{lab.ports['redis']}"
    assert "Host: attacker.example answered 200" in ev["dns-rebinding"]
    assert "RNFR / answered 350" in ev["ftp-anonymous-write"]
    assert ".ssh" in ev["home-listing"] and ".bashrc" in ev["home-listing"]
    # the report for humans is the same result
    p = loopkit("audit", "-p", lab.port_list())
    assert p.returncode == 1
    for name, ids in EXPECT.items():
        for i in ids:
            assert any(l.split()[1:2] == [i] and f":{lab.ports[name]}" in l for l in p.stdout.splitlines()), (
                i, p.stdout)
    assert "9 findings (0 critical, 6 high, 3 medium, 0 low)" in p.stdout


def test_loopkit_serve_audits_clean(lab):
    p = loopkit("audit", "-p", str(lab.ports["loopkit"]), "--json")
    assert p.returncode == 0, p.stdout
    doc = json.loads(p.stdout)
    assert doc["findings"] == [] and doc["listeners"][0]["product"] == "loopkit serve"


def test_fail_on_levels(lab):
    ports = lab.port_list()
    assert loopkit("audit", "-p", ports, "--fail-on", "critical").returncode == 0
    assert loopkit("audit", "-p", ports, "--fail-on", "high").returncode == 1
    only_medium = f"{lab.ports['wildcard']},{lab.ports['memcached']}"
    assert loopkit("audit", "-p", only_medium, "--fail-on", "high").returncode == 0
    assert loopkit("audit", "-p", only_medium, "--fail-on", "medium").returncode == 1
    p = loopkit("audit", "--fail-on", "severe")
    assert p.returncode == 2 and "not one of low|medium|high|critical" in p.stderr, p.stderr


def test_sarif_is_valid_sarif_2_1_0(lab, tmp_path):
    import jsonschema
    out = tmp_path / "audit.sarif"
    p = loopkit("audit", "-p", lab.port_list(), "--sarif", "--output", str(out))
    assert p.returncode == 1 and p.stdout == "", p.stderr
    with open(out) as f:
        doc = json.load(f)
    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft4Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    run = doc["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rules) == len(set(rules)) == 12
    results = run["results"]
    assert sorted(r["ruleId"] for r in results) == sorted(i for ids in EXPECT.values() for i in ids)
    for r in results:
        assert rules[r["ruleIndex"]] == r["ruleId"]
        assert r["level"] == ("error" if SEVERITY[r["ruleId"]] == "high" else "warning")
        host = "0.0.0.0" if r["ruleId"] == "exposed" else "127.0.0.1"
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(f"tcp://{host}:"), r


def test_sarif_validation_can_fail(tmp_path):
    """The control: the same validator rejects a SARIF log with a wrong level and no
    message, so the test above would see such a mistake."""
    import jsonschema
    with open(SCHEMA) as f:
        schema = json.load(f)
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                        "results": [{"ruleId": "a", "level": "severe"}]}]}
    assert list(jsonschema.Draft4Validator(schema).iter_errors(bad))


def test_loopkit_serve_write_is_anonymous_ftp_write(tmp_path):
    """loopkit serve --write: its FTP side (after the 1 s sniff window) lets anonymous
    users write; the audit reads that from MLST's perm facts, without writing."""
    from conftest import Server
    root = tmp_path / "w"
    root.mkdir()
    s = Server(str(root), ["--write"])
    try:
        p = loopkit("audit", "-p", str(s.port), "--json")
        doc = json.loads(p.stdout)
        assert p.returncode == 1, p.stdout
        assert [f["id"] for f in doc["findings"]] == ["ftp-anonymous-write"], doc
        assert "perm=elcmp" in doc["findings"][0]["evidence"]
        assert os.listdir(root) == []
    finally:
        assert s.stop() == 0


def test_jupyter_without_a_token_is_critical_and_with_one_is_clean():
    """jupyter-notebook (Debian's): with an empty token its API runs kernels for anyone
    (critical); with a token the same server is named Jupyter and has no finding."""
    assert shutil.which("jupyter-notebook"), "jupyter-notebook is missing: scripts/deps installs it"
    lab = Lab(["jupyter", "jupytertoken"])
    try:
        p = loopkit("audit", "-p", lab.port_list(), "--json")
        doc = json.loads(p.stdout)
        assert p.returncode == 1, p.stdout
        assert [(f["id"], f["port"], f["severity"]) for f in doc["findings"]] == [
            ("jupyter-no-auth", lab.ports["jupyter"], "critical")], doc["findings"]
        products = {l["port"]: (l["product"], l["info"]) for l in doc["listeners"]}
        assert products[lab.ports["jupyter"]][0] == "Jupyter"
        assert products[lab.ports["jupytertoken"]] == ("Jupyter", "token required (GET /api/kernels: 403)")
        assert loopkit("audit", "-p", str(lab.ports["jupytertoken"])).returncode == 0
    finally:
        lab.close()


def test_loopkit_serve_with_ftp_on_gets_the_http_checks(start):
    """loopkit serve greets the scan as FTP (it waits for a banner); the audit still
    examines its HTTP side: a server that accepts any Host is flagged, the default
    one is not."""
    loose = start("--allow-host", "*")
    strict = start()
    p = loopkit("audit", "-p", f"{loose.port},{strict.port}", "--json")
    doc = json.loads(p.stdout)
    assert [(f["port"], f["id"]) for f in doc["findings"]] == [(loose.port, "dns-rebinding")], doc
    assert p.returncode == 1
