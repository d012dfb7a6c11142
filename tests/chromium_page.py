"""A page in headless Chromium at an exact CSS width, driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``): the test helper behind tests/test_guide_report.py.

``--window-size`` alone cannot give a phone's width (headless Chromium lays pages out at least 500 px
wide and crops the screenshot), so the page's device metrics are overridden the way DevTools' device mode
does it. Used by tests only; needs the ``chromium`` binary.

>>> with ChromiumPage(390) as page:                               # doctest: +SKIP
...     page.open("file:///tmp/report/index.html")
...     page.evaluate("window.innerWidth"), len(page.screenshot())
(390, 123456)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class ChromiumPage:
    """One headless Chromium tab emulating a screen ``width`` x ``height`` CSS pixels (a phone when ``mobile``)."""

    def __init__(self, width: int, height: int = 900, mobile: bool | None = None, profile: str | None = None,
                 timeout: float = 60.0):
        if CHROMIUM is None:
            raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self.mobile = width < 600 if mobile is None else mobile
        self._to_browser_r, self._to_browser_w = os.pipe()
        self._from_browser_r, self._from_browser_w = os.pipe()
        to_r, from_w = self._to_browser_r, self._from_browser_w

        def wire_fds():  # the protocol pipe is fd 3 (commands in) and fd 4 (replies out) in the browser
            commands, replies = os.dup(to_r), os.dup(from_w)  # fresh numbers first: the pipes may sit on 3 or 4
            os.dup2(commands, 3)
            os.dup2(replies, 4)
            for fd in (3, 4):  # dup2 onto itself keeps close-on-exec: clear it explicitly
                os.set_inheritable(fd, True)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic"]
        if profile:
            args.append(f"--user-data-dir={profile}")
        # close_fds=False: the descriptors wired to 3 and 4 must survive into chromium (Python opens its own
        # descriptors non-inheritable, so nothing else leaks)
        self.process = subprocess.Popen(args + ["about:blank"], preexec_fn=wire_fds, close_fds=False,
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._buffer, self._next_id, self.session, self.events = b"", 0, None, []

    # ---------------------------------------------------------------- protocol
    def _send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser_w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"chromium: {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_browser_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _wait_for(self, method: str) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._receive()
            if event.get("method") == method:
                return event
            self.events.append(event)

    # ---------------------------------------------------------------- the page
    def __enter__(self) -> ChromiumPage:
        targets = self._send("Target.getTargets", session=False)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self._send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                  session=False)["sessionId"]
        self._send("Page.enable")
        self._send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                          "deviceScaleFactor": 1, "mobile": self.mobile})
        return self

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (embedded images decoded)."""
        self.events.clear()
        self._send("Page.navigate", {"url": url})
        self._wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression evaluated in the page."""
        result = self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"chromium: {expression[:80]}... raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, full_page: bool = False) -> bytes:
        """A PNG of the viewport, or of the whole page laid out at this width."""
        params = {"format": "png"}
        if full_page:
            height = self.evaluate("document.documentElement.scrollHeight")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": self.width, "height": height,
                                                            "scale": 1})
        return base64.b64decode(self._send("Page.captureScreenshot", params)["data"])

    def __exit__(self, *exc) -> None:
        try:
            self._send("Browser.close", session=False)
        except (RuntimeError, OSError, TimeoutError):
            pass
        for fd in (self._to_browser_w, self._from_browser_r):
            os.close(fd)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
