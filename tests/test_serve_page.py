"""The search page of a real `alice serve` process, in headless Chromium: type, drop a file, apply a replace.

``ALICE_SERVE_SCREENSHOT=path.png`` keeps a screenshot of the page after the edited search
(docs/img/serve-page.png is one, taken on the `make demo` space; see docs/search.md).
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_report import _driver
from test_serve import scene_png

from alice.artifacts.ann import AnnSpec

pytestmark = pytest.mark.usefixtures("recipe_dir")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_reference, tmp_path_factory):
    """`python -m alice serve` on a free port, over a copy of the tiny reference with an image and a text index."""
    given = os.environ.get("ALICE_SERVE_REFERENCE")  # a space with an image-test and a text-test index
    ref = Path(given) if given else tmp_path_factory.mktemp("page") / "ref"
    if not given:
        shutil.copytree(tiny_reference, ref)
        from alice.search.index import build_index

        build_index(ref, "image", "test", device_name="cpu")
        build_index(ref, "text", "test", device_name="cpu", approximate=AnnSpec(kind="hnsw"))
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "alice", "serve", str(ref), "--port", str(port)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"alice serve did not start: {process.stderr.read()[-2000:]}")
        time.sleep(0.5)
    yield ref, f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=30)


def _wait(driver, script: str, timeout: float = 60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    error = driver.execute_script("return document.querySelector('#error').textContent;")
    raise AssertionError(f"timed out waiting for: {script} (page error: {error!r})")


RESULTS = "return document.querySelectorAll('#results .result').length;"


def _clear_results(driver) -> None:
    driver.execute_script("document.querySelector('#results').replaceChildren();")


def test_type_a_query_drop_an_image_and_apply_a_replace(server, tmp_path):
    ref, url = server
    driver = _driver()
    try:
        driver.get(url)
        _wait(driver, "return document.querySelectorAll('#index option').length >= 2;")
        assert "ALICE search" in driver.title
        # 1. type a query: images of that digit, with their pictures
        driver.execute_script("document.querySelector('#index').value = 'image-test';")
        driver.find_element("css selector", "#text").send_keys("one digit: seven")
        driver.find_element("css selector", "#search").click()
        _wait(driver, RESULTS)
        images = _wait(
            driver,
            "const i = Array.from(document.querySelectorAll('#results img'));"
            "return i.length && i.every(x => x.complete && x.naturalWidth > 0) ? i.length : 0;",
        )
        assert images >= 10
        labels = driver.execute_script(
            "return Array.from(document.querySelectorAll('#results .labels')).map(x => x.textContent);"
        )
        assert sum("seven" in x for x in labels) >= 4, labels
        # 2. drop an image file on the drop zone: captions of its scene
        png, _ = scene_png(ref, ["three"])
        driver.execute_script("document.querySelector('#index').value = 'text-test';")
        _clear_results(driver)
        driver.execute_script(
            "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
            "const dt = new DataTransfer();"
            "dt.items.add(new File([bytes], 'scene.png', {type: 'image/png'}));"
            "document.querySelector('#drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));",
            base64.b64encode(png).decode(),
        )
        _wait(driver, RESULTS)
        summary = driver.find_element("css selector", "#summary").text
        assert "image query (file: scene.png)" in summary and "text items" in summary, summary
        assert driver.find_elements("css selector", "#dropped img")  # the dropped picture is shown
        texts = driver.execute_script(
            "return Array.from(document.querySelectorAll('#results .text')).map(x => x.textContent);"
        )
        assert len(texts) >= 10 and all(texts)
        # 3. replace three with seven: the edited query's labels, and captions of the edited scene
        _clear_results(driver)
        driver.execute_script(
            "document.querySelector('#replace-old').value = 'three';"
            "document.querySelector('#replace-new').value = 'seven';"
        )
        driver.find_element("css selector", "#search").click()
        _wait(driver, RESULTS)
        edited = driver.execute_script(
            "return Array.from(document.querySelectorAll('#edited-labels .predicted .chip')).map(x => x.textContent);"
        )
        assert "seven" in edited and "three" not in edited, edited
        title = driver.find_element("css selector", "#edited-title").text
        assert "replacing three with seven" in title
        # 4. a refusal shows as one line and the page keeps working
        driver.execute_script("document.querySelector('#k').value = '100000';")
        driver.find_element("css selector", "#search").click()
        error = _wait(driver, "return document.querySelector('#error').textContent;")
        assert "k must be from 1 to" in error
        shot = Path(os.environ.get("ALICE_SERVE_SCREENSHOT") or tmp_path / "serve.png")
        driver.execute_script("document.querySelector('#k').value = '12';")
        _clear_results(driver)
        driver.find_element("css selector", "#search").click()
        _wait(driver, "return !document.querySelector('#error').textContent && " + RESULTS.removeprefix("return "))
        time.sleep(0.5)
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    finally:
        driver.quit()
