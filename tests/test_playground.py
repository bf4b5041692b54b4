"""The playground page in a real headless browser (Debian's chromium), driven over the DevTools protocol.

The test types a prompt into the page, presses Send, waits for both answers to finish streaming,
and checks that the page shows exactly what the API answers for the same requests. A screenshot is
written to $PROSV_PLAYGROUND_PNG (default: the test's temporary folder).

Chromium is installed with apt-get when it is missing and CI is set and the tests run as root;
otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import make_tiny_model
from serving import http, make_vector_folder, running_server

websocket = pytest.importorskip("websocket", reason="the playground test needs websocket-client (the test extra)")
pytest.importorskip("starlette", reason="prosv serve needs the serve extra (starlette, uvicorn)")

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WAIT_S = 120
PROMPT = "Tell me about owls."


def find_browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


@pytest.fixture(scope="module")
def browser_path():
    found = find_browser()
    if found:
        return found
    if not os.environ.get("CI") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "needs Debian's chromium (apt-get install -y chromium); installed by the test when CI is set as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}"
    return find_browser()


class DevTools:
    """A page of headless chromium, spoken to over its DevTools websocket (one command at a time)."""

    def __init__(self, browser: str, profile: Path):
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        cmd += ["--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}"]
        cmd += ["--window-size=1280,860", "--no-first-run", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.next_id = 0
        port = self._devtools_port()
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        target = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                return int(m.group(1))
        raise RuntimeError("chromium did not start its DevTools server:\n" + "".join(seen)[-3000:])

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.js(expression):
                return
            time.sleep(0.2)
        raise AssertionError(f"the page did not {what} in {WAIT_S} s")

    def click(self, element_id: str) -> None:
        box = self.js(f"JSON.stringify(document.getElementById('{element_id}').getBoundingClientRect())")
        rect = json.loads(box)
        x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def test_playground_streams_steered_and_unsteered_answers(browser_path, tokenizer, tmp_path):
    model_dir = tmp_path / "tiny"
    make_tiny_model(tokenizer).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    vectors = make_vector_folder(tmp_path / "vectors", model_dir)
    with running_server(model_dir, vectors, tmp_path / "serve.log") as url, tempfile.TemporaryDirectory() as profile:
        page = DevTools(browser_path, Path(profile))
        try:
            page.call("Page.enable")
            page.call("Page.navigate", url=url + "/")
            page.wait_for("document.body && document.body.dataset.ready === 'true'", "list the vectors")
            page.js(
                "const s = document.getElementById('vector'); s.value = 'fssv_d'; s.dispatchEvent(new Event('change'))"
            )
            page.js("document.getElementById('max-tokens').value = '24'")
            page.js("document.getElementById('prompt').focus()")
            page.call("Input.insertText", text=PROMPT)
            page.click("send")
            done = "['steered', 'unsteered'].every(id => document.getElementById(id).dataset.state === 'done')"
            page.wait_for(done, "show both answers")
            steered = page.js("document.getElementById('steered').textContent")
            plain = page.js("document.getElementById('unsteered').textContent")
            shot = page.call("Page.captureScreenshot", format="png")["data"]
        finally:
            page.close()
        png = Path(os.environ.get("PROSV_PLAYGROUND_PNG") or tmp_path / "playground.png")
        png.write_bytes(base64.b64decode(shot))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        base = next(m["id"] for m in http(url + "/v1/models")[1]["data"] if m["steering"] is None)
        request = {"model": base, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 24, "temperature": 0}
        _, want_plain = http(url + "/v1/chat/completions", json.dumps(request).encode())
        request["steering"] = {"vector": "fssv_d", "factor": 1}
        _, want_steered = http(url + "/v1/chat/completions", json.dumps(request).encode())
    assert steered == want_steered["choices"][0]["message"]["content"] and steered
    assert plain == want_plain["choices"][0]["message"]["content"] and plain
    assert steered != plain
