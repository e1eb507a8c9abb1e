"""Headless Debian Chromium driven over the DevTools protocol on a pipe (no driver, no downloaded browser,
no extra package), plus the server helpers the browser tests share: free ports and waiting for HTTP."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = PROJECT_ROOT / "scripts" / "install_chromium.sh"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium")

# Flags that keep the browser from reaching out to the network or into the machine's user profile.
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)
# The DevTools protocol's pipe transport uses these two descriptor numbers in the browser process.
CDP_READ_FD, CDP_WRITE_FD = 3, 4


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)


def usable_chromium() -> tuple[str | None, str]:
    """The Chromium executable and its version, or (None, why) when it is not installed or does not
    start. Finding only: the browser is installed by scripts/install_chromium.sh (which `.ci/run` calls),
    never by a test run."""
    executable = find_chromium()
    if executable is None:
        return (
            None,
            f"chromium is not on PATH; install it with `bash {INSTALL_SCRIPT.relative_to(PROJECT_ROOT)}`",
        )
    probe = subprocess.run(
        [executable, *QUIET_FLAGS, "--version"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        return None, f"{executable} does not start: {probe.stderr.strip()[-500:]}"
    return executable, probe.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(
    url: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Poll `url` until it answers 200; fail early with the server's log when the server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    output = log.read_text(errors="replace")[-3000:] if log else ""
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s:\n{output}")


def stop_process(process: subprocess.Popen, grace: float = 15) -> None:
    """Ask the server's process group to stop, then kill it if it lingers (it was started with its own
    session, so only it and its children are signalled)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 15)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=grace)


class HeadlessChromium:
    """One headless browser; `open(url)` returns a page session to evaluate JavaScript in and capture."""

    def __init__(self, executable: str, profile_dir: Path, width: int = 1440, height: int = 1000) -> None:
        self.width, self.height = width, height
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_pipes() -> None:
            # Move both ends above the low numbers first so the dup2 calls cannot clobber each other.
            read_end = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(read_end, CDP_READ_FD)
            os.dup2(write_end, CDP_WRITE_FD)

        self._log = (profile_dir.parent / f"{profile_dir.name}.log").open("wb")
        self.process = subprocess.Popen(
            [
                executable,
                *QUIET_FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile_dir}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=wire_pipes,
            close_fds=False,
            start_new_session=True,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._targets: dict[str, str] = {}  # page session -> its target, to close the tab

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})

    def _read_message(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError(f"no DevTools answer to {waiting_for}")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed the DevTools pipe (exit {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._targets[session] = target
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self.send("Page.navigate", {"url": url}, session)
        return session

    def close_page(self, session: str) -> None:
        """Close the tab `open` made (a single-page app keeps polling its server while its tab is open)."""
        self.send("Target.closeTarget", {"targetId": self._targets.pop(session)})

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result.get("result", {}).get("value")

    def wait_for_text(self, session: str, texts: list[str], timeout: float = 60) -> str:
        """Poll the rendered page until every one of `texts` is in its visible text; return that text."""
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            body = self.evaluate(session, "document.body ? document.body.innerText : ''") or ""
            if all(text in body for text in texts):
                return body
            time.sleep(0.5)
        missing = [t for t in texts if t not in body]
        raise AssertionError(f"page never showed {missing} within {timeout:.0f} s; it showed:\n{body[:3000]}")

    def wait_until(self, session: str, expression: str, timeout: float = 60) -> None:
        """Poll the page until the JavaScript `expression` is truthy (AssertionError after `timeout` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(session, expression):
                return
            time.sleep(0.5)
        raise AssertionError(f"page never satisfied {expression!r} within {timeout:.0f} s")

    def screenshot(self, session: str, path: Path, height: int | None = None) -> Path:
        """A PNG of the page, `height` pixels tall (default: the viewport)."""
        if height is not None:
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            time.sleep(1.0)  # let the layout settle at the new size before capturing
        data = self.send("Page.captureScreenshot", {"format": "png"}, session, timeout=60)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        finally:
            stop_process(self.process, grace=10)
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._log.close()
