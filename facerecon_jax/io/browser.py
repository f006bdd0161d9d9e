"""Headless Chromium driven through the DevTools protocol, to check pages the way people see
them: open a page, wait for a condition, collect console errors, uncaught exceptions and failed
loads, take screenshots, drag and scroll the mouse.

Used by the results-page test and benchmark. Needs a Chromium binary (Debian: `apt-get install
chromium`; or $FACERECON_CHROMIUM) and the `websocket-client` package (the test extra). It runs
with software WebGL (SwiftShader) and a fresh profile in a temporary folder, without the
background networking (updates, sync, safe browsing) that would otherwise try to reach out.
"""
from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, List, Optional

import numpy as np
from PIL import Image

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ENV = "FACERECON_CHROMIUM"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
         "--disable-quic", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-port=0")


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a page did not do what was waited for."""


def find_chromium() -> str:
    """$FACERECON_CHROMIUM, else the first Chromium or Chrome on the PATH."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}; Debian: "
                       f"apt-get install chromium; or set ${CHROMIUM_ENV})")


class Chromium:
    """One headless Chromium with one page. Use as a context manager.

    `errors` lists every console.error / console.assert message, uncaught exception and
    browser log entry of level error (failed script loads, WebGL failures) since the last
    `open`; `console` every console message as (type, text)."""

    def __init__(self, width: int = 1280, height: int = 900, binary: Optional[str] = None,
                 timeout: float = 60.0):
        self.width, self.height, self.timeout = width, height, timeout
        self.binary = binary or find_chromium()
        self.errors: List[str] = []
        self.console: List[tuple] = []
        self._id = 0
        self._proc = None
        self._ws = None
        self._profile = None

    # -- process and connection ------------------------------------------------------------
    def __enter__(self) -> "Chromium":
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self) -> None:
        try:
            import websocket  # noqa: PLC0415  (websocket-client)
        except ImportError as e:
            raise BrowserError("the DevTools client needs the websocket-client package "
                               "(pip install -e '.[test]')") from e
        self._profile = pathlib.Path(tempfile.mkdtemp(prefix="facerecon-chromium-"))
        self._log = open(self._profile / "chromium.log", "wb")
        args = [self.binary, *FLAGS, f"--user-data-dir={self._profile / 'profile'}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT)
        port_file = self._profile / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self._proc.poll() is not None:
                raise BrowserError(f"{self.binary} exited with status {self._proc.returncode}: "
                                   f"{self._log_tail()}")
            if time.monotonic() > deadline:
                raise BrowserError(f"{self.binary} did not open its DevTools port in "
                                   f"{self.timeout:.0f} s: {self._log_tail()}")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        url = None
        while url is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                url = pages[0]["webSocketDebuggerUrl"]
            elif time.monotonic() > deadline:
                raise BrowserError("Chromium opened no page")
            else:
                time.sleep(0.05)
        self._ws = websocket.create_connection(url, timeout=self.timeout, suppress_origin=True)
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def _log_tail(self, n: int = 2000) -> str:
        try:
            self._log.flush()
            return (self._profile / "chromium.log").read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self) -> None:
        if self._ws is not None:
            try:
                self.call("Browser.close")
            except Exception:  # noqa: BLE001  (closing anyway)
                pass
            try:
                self._ws.close()
            except Exception:  # noqa: BLE001
                pass
            self._ws = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._profile is not None:
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- protocol ------------------------------------------------------------------------
    def _event(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", "")))
                            for a in p.get("args", []))
            self.console.append((p.get("type"), text))
            if p.get("type") in ("error", "assert"):
                self.errors.append(f"console.{p.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "")
            self.errors.append(f"uncaught: {desc} ({d.get('url', '')}:{d.get('lineNumber')})")
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append((f"log.{e.get('level')}", e.get("text", "")))
            if e.get("level") == "error":
                self.errors.append(f"log: {e.get('text', '')} {e.get('url', '')}".strip())

    def _pump(self, until_id: Optional[int] = None) -> Optional[dict]:
        while True:
            msg = json.loads(self._ws.recv())
            if "id" in msg:
                if msg["id"] == until_id:
                    return msg
            else:
                self._event(msg)

    def call(self, method: str, **params) -> dict:
        """Send a DevTools command and return its result (events seen meanwhile are kept)."""
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        msg = self._pump(self._id)
        if "error" in msg:
            raise BrowserError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    # -- pages ---------------------------------------------------------------------------
    def open(self, url) -> None:
        """Navigate to `url` (a path is turned into a file:// URL); clears `errors`."""
        url = str(url)
        if "://" not in url:
            url = pathlib.Path(url).resolve().as_uri()
        self.errors, self.console = [], []
        res = self.call("Page.navigate", url=url)
        if res.get("errorText"):
            raise BrowserError(f"cannot open {url}: {res['errorText']}")

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"{expression}: {res['exceptionDetails'].get('text')}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: Optional[float] = None,
                 poll: float = 0.05) -> Any:
        """Evaluate `expression` until it is truthy; its value. BrowserError on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None        # the page is still being replaced
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}; errors so far: "
                                   f"{self.errors}")
            time.sleep(poll)

    def screenshot(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the viewport."""
        res = self.call("Page.captureScreenshot", format="png")
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(res["data"]))).convert("RGB"))

    def element_box(self, selector: str) -> tuple:
        """(x, y, width, height) of the first element matching `selector`, viewport pixels."""
        box = self.evaluate(
            f"(function(){{var r=document.querySelector({json.dumps(selector)})"
            f".getBoundingClientRect();return [r.left,r.top,r.width,r.height];}})()")
        return tuple(float(v) for v in box)

    def scroll_into_view(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)})"
                      f".scrollIntoView({{block: 'center'}})")

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 8) -> None:
        """Press the left button at (x0, y0), move to (x1, y1), release."""
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x0, y=y0)
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x0, y=y0, button="left",
                  buttons=1, clickCount=1)
        for k in range(1, steps + 1):
            t = k / steps
            self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x0 + t * (x1 - x0),
                      y=y0 + t * (y1 - y0), button="left", buttons=1)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x1, y=y1, button="left",
                  buttons=0, clickCount=1)

    def wheel(self, x: float, y: float, delta_y: float) -> None:
        self.call("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0,
                  deltaY=delta_y)
