"""Load a generated report in headless Debian Chromium, network disabled.

Checks: no JavaScript errors or failed console messages, no network requests, every
plot container holds an SVG or canvas, and a screenshot is saved (copied to
``$NASBENCH_SCREENSHOT_DIR`` when set). Skipped without ``/usr/bin/chromium`` or the
``websocket-client`` package. ``load_in_chromium`` is reused by the report benchmark.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed "
                       "(/usr/bin/chromium missing; apt-get install chromium)"),
]

PLOTS_CHECK_JS = """
(() => {
  const plots = Array.from(document.querySelectorAll('div.plot'));
  const empty = plots.filter(p => !p.querySelector('svg.main-svg, canvas')).map(p => p.id);
  return JSON.stringify({n: plots.length, empty: empty,
    ready: document.documentElement.getAttribute('data-plots-ready'),
    readyAt: window.nasbenchReadyAt || null, drawMs: window.nasbenchPlotsMs || null,
    times: window.nasbenchPlotTimes || null,
    height: document.documentElement.scrollHeight});
})()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _CDP:
    """Minimal Chrome DevTools Protocol client over one page websocket."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"CDP {method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expr: str):
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return res.get("result", {}).get("value")

    def close(self):
        self.ws.close()


def load_in_chromium(html: Path, screenshot: Path | None = None, timeout: float = 60.0,
                     width: int = 1400, height: int = 1000) -> dict:
    """Open ``html`` in headless chromium (no network); return what the page did.

    Returns ``{"errors": [str], "requests": [url], "plots": n, "empty": [ids],
    "ready": str|None, "load_s": seconds from navigation to all plots drawn (page clock),
    "wall_s": seconds from the navigate call to all plots drawn (test clock),
    "draw_s": seconds spent drawing plots}``. Writes a full-page PNG to ``screenshot``.
    """
    pytest.importorskip("websocket", reason="websocket-client is not installed")
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="nasbench-chromium-")
    args = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--disable-default-apps", "--mute-audio",
        f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--remote-debugging-port={port}",
        "--remote-allow-origins=*", f"--window-size={width},{height}", "about:blank",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    cdp = None
    try:
        deadline = time.monotonic() + 30
        ws_url = None
        while time.monotonic() < deadline and ws_url is None:
            try:
                with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    ws_url = pages[0]["webSocketDebuggerUrl"]
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"chromium exited with status {proc.returncode}") from None
                time.sleep(0.1)
        if ws_url is None:
            raise RuntimeError("chromium did not open its DevTools port within 30 s")
        cdp = _CDP(ws_url)
        for domain in ("Runtime", "Log", "Page", "Network"):
            cdp.call(f"{domain}.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=False)
        t0 = time.perf_counter()
        cdp.call("Page.navigate", url=html.resolve().as_uri())
        state = {}
        while time.perf_counter() - t0 < timeout:
            state = json.loads(cdp.evaluate(PLOTS_CHECK_JS) or "{}")
            if state.get("ready") and state.get("readyAt"):
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        if screenshot is not None:
            time.sleep(0.3)  # let plotly finish transitions before the picture
            full_h = int(cdp.evaluate("document.documentElement.scrollHeight") or height)
            shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": width, "height": full_h, "scale": 1})
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        cdp.call("Runtime.evaluate", expression="0")  # flush pending events
        errors, requests = [], []
        for ev in cdp.events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                       for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append(p["entry"].get("text", ""))
            elif m == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:", "blob:")):
                    requests.append(url)
        ready_at = state.get("readyAt")
        draw = state.get("drawMs")
        return {
            "errors": errors, "requests": requests, "plots": state.get("n", 0),
            "empty": state.get("empty", []), "ready": state.get("ready"),
            "load_s": ready_at / 1000 if ready_at else None, "wall_s": wall,
            "draw_s": draw / 1000 if draw else None, "page_height": state.get("height"),
            "plot_ms": state.get("times"),
        }  # fmt: skip
    finally:
        if cdp is not None:
            try:
                cdp.close()
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def test_report_loads_in_headless_chromium(tmp_path):
    from reports import build_report
    from tests.test_reports import write_lut, write_run, write_validation

    runs = [
        write_run(tmp_path / "runs", "20261122-darts-ab12cd", "darts", seed=1),
        write_run(tmp_path / "runs", "20261122-pcdarts-9f3e21", "pcdarts", seed=3,
                  target_ms=5.0),
        write_run(tmp_path / "runs", "20261122-proxyless-77ee01", "proxyless", seed=2,
                  space="proxyless", target_ms=None, references=False, energy=False),
    ]
    out = build_report(runs, tmp_path / "report" / "report.html",
                       lut=write_lut(tmp_path / "lut.json"),
                       validation=write_validation(tmp_path / "val.json"))
    shot = tmp_path / "screenshots" / "report.png"
    res = load_in_chromium(out, screenshot=shot)
    assert res["errors"] == [], res["errors"]
    assert res["requests"] == [], f"the report tried to reach the network: {res['requests']}"
    assert res["ready"] == str(res["plots"]) and res["plots"] >= 10, res
    assert res["empty"] == [], f"plots that did not draw: {res['empty']}"
    assert shot.stat().st_size > 10_000
    dest = os.environ.get("NASBENCH_SCREENSHOT_DIR")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(dest) / "report.png")


def test_report_of_a_real_run_loads_in_headless_chromium(tmp_path, monkeypatch):
    """The report ``nasbench search`` writes at the end of a real (tiny) run, with a
    measured derived network and a measured reference, draws every plot offline."""
    from nasbench.api import search_architecture
    from tests.test_runner import config

    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = config(tmp_path, references="resnet20", latency_target_ms=1e6)
    r = search_architecture(cfg, quiet=True)
    assert r.status == "complete" and r.measured["latency_ms"]["median"] > 0
    out = r.run_dir / "report.html"
    shot = tmp_path / "screenshots" / "real-run.png"
    res = load_in_chromium(out, screenshot=shot)
    assert res["errors"] == [], res["errors"]
    assert res["requests"] == [], f"the report tried to reach the network: {res['requests']}"
    assert res["ready"] == str(res["plots"]) and res["plots"] >= 5, res
    assert res["empty"] == [], f"plots that did not draw: {res['empty']}"
    html = out.read_text()
    assert "ResNet-20 (CIFAR)" in html and "darts (derived)" in html
    dest = os.environ.get("NASBENCH_SCREENSHOT_DIR")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(dest) / "real-run.png")
