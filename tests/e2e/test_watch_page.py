"""loopkit watch's status page and /metrics (issue 15), seen by their real consumers:
headless Chromium (Debian's chromium, driven over the DevTools pipe with test_browser's
Chromium class) and the real Prometheus (Debian's prometheus package) scraping the watcher.

Chromium: the page shows one row per target; a screenshot (Page.captureScreenshot) shows
each row's state cell in its colour, and a target taken down turns red within two
intervals with no reload (the page's own document keeps a marker set before). Prometheus:
it scrapes /metrics and its query API returns the series with the targets' labels."""
import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

from conftest import hard_timeout_fixture
from test_browser import Chromium, chromium_binary
from watchlab import Watcher, lease_ports, services_fixture

_hard_timeout = hard_timeout_fixture(150)
svc = services_fixture()

INTERVAL_S = 1.0
GREEN = (46, 125, 50)   # tr.up td.state in the page's CSS
RED = (198, 40, 40)     # tr.down td.state


def need(tool):
    path = chromium_binary() if tool == "chromium" else subprocess.run(
        ["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
    if not path:
        pytest.fail(f"{tool} is not installed; scripts/deps installs it (run it as root)")
    return path


def close(rgb, want, tol=12):
    return all(abs(a - b) <= tol for a, b in zip(rgb, want))


class Page:
    """The status page in a fresh headless Chromium tab."""

    def __init__(self, browser, url):
        self.b = browser
        t = browser.call("Target.createTarget", {"url": "about:blank"}, timeout=30)
        self.s = browser.call("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", {}, self.s)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 1400, "height": 700, "deviceScaleFactor": 1, "mobile": False}, self.s)
        browser.call("Page.navigate", {"url": url}, self.s)

    def js(self, expr):
        return self.b.evaluate(self.s, expr)

    def rows(self):
        """[(id, class, state cell text, state cell background, its box)] from the DOM."""
        return self.js("""Array.from(document.querySelectorAll('#targets tbody tr')).map(function (tr) {
            var td = tr.querySelector('td.state'), r = td.getBoundingClientRect();
            return [tr.id, tr.className, td.textContent, getComputedStyle(td).backgroundColor,
                    [r.left, r.top, r.width, r.height], tr.querySelector('td.name').textContent];
        })""")

    def screenshot(self):
        from PIL import Image
        data = self.b.call("Page.captureScreenshot", {"format": "png"}, self.s, timeout=30)["data"]
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    def wait(self, expr, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.js(expr)
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError(f"{expr} not true within {timeout} s; rows: {self.rows()}")


def cell_colours(img, rows):
    """The colour near the top middle of each row's state cell (above its text), read
    from the screenshot, in row order."""
    return [img.getpixel((int(x + w / 2), int(y + 3))) for _, _, _, _, (x, y, w, h), _ in rows]


@pytest.mark.alone
def test_the_page_shows_every_target_and_a_failure_turns_red_without_reload(svc, tmp_path, figure):
    binary = need("chromium")
    http_p, serve_p, tcp_p = lease_ports(3)
    svc.python_http(http_p)
    svc.loopkit_serve(serve_p)
    svc.tcp_listener(tcp_p)
    names = {"web": f"http://127.0.0.1:{http_p}/", "api": f"http://127.0.0.1:{serve_p}/_/health",
             "db": f"tcp://127.0.0.1:{tcp_p}"}
    cfg = tmp_path / "watch.json"
    cfg.write_text(json.dumps({"targets": [{"name": n, "url": u} for n, u in names.items()]}))
    w = Watcher("--config", cfg, "--interval", f"{INTERVAL_S}s", "--retries", "0", db=tmp_path / "h.db")
    # a short directory: Chromium's socket paths under it must fit (xdist's are long)
    short = tempfile.mkdtemp(prefix="lkw-", dir="/tmp")
    browser = Chromium(binary, os.path.join(short, "chromium.log"))
    try:
        for n in names:
            w.wait_state(n, "up")
        page = Page(browser, w.url)
        page.wait("document.getElementById('conn') && document.getElementById('conn').textContent === 'live'", 20)
        rows = page.rows()
        assert [(r[1], r[2]) for r in rows] == [("up", "up")] * 3, rows
        assert [r[5].split("http")[0].split("tcp")[0] for r in rows] == list(names), rows
        assert all(r[3] == "rgb(%d, %d, %d)" % GREEN for r in rows), rows
        # every row has its sparkline and its numbers
        assert page.js("document.querySelectorAll('#targets svg.spark').length") == 3
        img = page.screenshot()
        colours = cell_colours(img, rows)
        assert all(close(c, GREEN) for c in colours), colours
        page.js("window.__sameDocument = 42")

        svc.stop("pyhttp")
        t0 = time.monotonic()
        page.wait("document.getElementById('t0').className === 'down'", 10)
        took = time.monotonic() - t0
        figure(f"a target taken down turned red on the page after {took:.2f} s (interval {INTERVAL_S} s)")
        assert took <= 2 * INTERVAL_S, f"the row turned red after {took:.2f} s, more than two intervals"
        assert page.js("window.__sameDocument") == 42, "the page was reloaded"
        rows = page.rows()
        assert [(r[1], r[2]) for r in rows] == [("down", "down"), ("up", "up"), ("up", "up")], rows
        assert rows[0][3] == "rgb(%d, %d, %d)" % RED
        # a probe in flight when the server stopped may have seen its connection reset;
        # the next one finds nothing listening, and the page says so without a reload
        want = f"connection refused: nothing listens on 127.0.0.1:{http_p}"
        page.wait(f"document.querySelector('#t0 td.detail').textContent === {json.dumps(want)}",
                  3 * INTERVAL_S)
        colours = cell_colours(page.screenshot(), rows)
        assert close(colours[0], RED) and all(close(c, GREEN) for c in colours[1:]), colours
        summary = page.js("document.getElementById('summary').textContent")
        assert summary == "3 targets: 2 up, 1 down, 0 pending", summary
        # no CSP violation or script error on the page
        errors = [e for e in browser.events if e.get("method") in ("Runtime.exceptionThrown", "Log.entryAdded")
                  and (e["method"] == "Runtime.exceptionThrown" or e["params"]["entry"]["level"] == "error")]
        assert not errors, errors
    finally:
        browser.close()
        shutil.rmtree(short, ignore_errors=True)
        assert w.stop() == 0, w.stderr()
        w.close()


def test_prometheus_scrapes_the_watcher(svc, tmp_path):
    prom = need("prometheus")
    http_p, prom_p = lease_ports(2)
    svc.python_http(http_p)
    up, down = f"http://127.0.0.1:{http_p}/", "tcp://127.0.0.1:1"
    w = Watcher("-i", "1s", up, down, db=tmp_path / "h.db")
    conf = tmp_path / "prometheus.yml"
    conf.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loopkit-watch
    static_configs:
      - targets: ["127.0.0.1:{w.port}"]
""")
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([prom, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prom_p}"], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)

    def query(q):
        url = f"http://127.0.0.1:{prom_p}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return {(s["metric"].get("target"), s["metric"].get("window", s["metric"].get("quantile"))):
                s["value"][1] for s in doc["data"]["result"]}

    try:
        deadline = time.monotonic() + 60
        got = {}
        while time.monotonic() < deadline:
            try:
                got = query("probe_success")
                if len(got) == 2:
                    break
            except OSError:
                pass
            assert p.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            time.sleep(0.5)
        assert got == {(up, None): "1", (down, None): "0"}, (got, (tmp_path / "prometheus.log").read_text()[-2000:])
        assert query("probe_http_status_code") == {(up, None): "200"}
        ratios = query('loopkit_watch_uptime_ratio{window="1h"}')
        assert ratios == {(up, "1h"): "1", (down, "1h"): "0"}, ratios
        assert float(query("probe_duration_seconds")[(up, None)]) > 0
        assert set(query('loopkit_watch_latency_seconds{quantile="0.95"}')) == {(up, "0.95")}
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_p}/api/v1/targets", timeout=5) as r:
            targets = json.load(r)["data"]["activeTargets"]
        assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")], targets
    finally:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        assert w.stop() == 0, w.stderr()
        w.close()
