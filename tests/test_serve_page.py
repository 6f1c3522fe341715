"""A real `alice serve` process, with a token: its page in headless Chromium (type, drop a file, apply a replace),
its schema fuzzed by schemathesis, and what an upload costs its memory.

``ALICE_SERVE_SCREENSHOT=path.png`` keeps a screenshot of the page after the edited search
(docs/img/serve-page.png is one, taken on the `make demo` space; see docs/search.md).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_report import _driver
from test_serve import scene_png, uploads_module

from alice.artifacts.ann import AnnSpec

pytestmark = pytest.mark.usefixtures("recipe_dir")
ROOT = Path(__file__).resolve().parents[1]
TOKEN = "the-test-suite-s-token-for-alice-serve"
#: the server's --max-pixels here: small, so that an upload just under it is quick to make and to read
MAX_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """`python -m alice serve` on a free port, over a copy of the tiny reference with an image and a text index,
    guarded by a token (ALICE_SERVE_TOKEN) and taking images of at most MAX_PIXELS."""
    given = os.environ.get("ALICE_SERVE_REFERENCE")  # a space with an image-test and a text-test index
    ref = Path(given) if given else tmp_path_factory.mktemp("page") / "ref"
    if not given:
        shutil.copytree(request.getfixturevalue("tiny_reference"), ref)
        from alice.search.index import build_index

        build_index(ref, "image", "test", device_name="cpu")
        build_index(ref, "text", "test", device_name="cpu", approximate=AnnSpec(kind="hnsw"))
    uploads = uploads_module()
    port = uploads.free_port()
    try:
        process = uploads.start(
            ref, port, "--max-pixels", str(MAX_PIXELS), env={**os.environ, "ALICE_SERVE_TOKEN": TOKEN}, wait=300
        )
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield ref, f"http://127.0.0.1:{port}/", process
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
    ref, url, _ = server
    driver = _driver()
    try:
        driver.get(url)
        # 0. the server asks for its token: the page asks once, then keeps it for the tab
        _wait(driver, "return !document.querySelector('#login').classList.contains('hidden');")
        assert "needs its token" in driver.find_element("css selector", "#error").text
        driver.find_element("css selector", "#token").send_keys(TOKEN)
        driver.find_element("css selector", "#use-token").click()
        _wait(driver, "return document.querySelectorAll('#index option').length >= 2;")
        assert driver.execute_script("return document.querySelector('#login').classList.contains('hidden');")
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


def test_the_schema_holds_what_the_server_answers(server, tmp_path):
    """schemathesis, every check, against the real server: every status it answers is declared, every request the
    schema allows is answered (an upload's bytes aside: see tests/schemathesis.toml), every other is refused."""
    _, url, _ = server
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "tests" / "schemathesis.toml")]
    command += ["run", f"{url}openapi.json", "-H", f"Authorization: Bearer {TOKEN}", "--checks", "all"]
    command += ["--max-examples", "20", "--generation-deterministic", "--no-color"]  # deterministic: no database
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    summary = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert done.returncode == 0 and summary and summary[1] == summary[2], done.stdout[-6000:]
    assert int(summary[1]) >= 200, summary[0]
    print(summary[0])


def test_what_an_upload_costs_the_server_s_memory(server, tmp_path):
    """An image just under --max-pixels is read whole, within a bounded rise of the server's peak memory; one over it,
    or a bomb by Pillow's own measure, is refused from its header at no cost (benchmarks/serve_uploads.py measures
    the full-size cases)."""
    _, url, process = server
    uploads, port = uploads_module(), int(url.rsplit(":", 1)[1].strip("/"))
    fits = uploads.measure(process, port, uploads.grey_png(tmp_path / "fits.png", 1999, 2000), TOKEN)
    assert fits["status"] == 200 and fits["peak_above_idle"] < 300 * 2**20, fits
    for path in (
        uploads.grey_png(tmp_path / "over.png", 2001, 2000),
        uploads.png_claiming(tmp_path / "bomb.png", 20000, 20000),
    ):
        refused = uploads.measure(process, port, path, TOKEN)
        assert refused["status"] == 413 and path.name in refused["line"], refused
        assert refused["peak_above_idle"] < 30 * 2**20, refused
