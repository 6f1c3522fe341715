"""`alice report`: the page, its figures and search grid, rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil

import pytest
from cli_helpers import alice, chromium_driver

pytestmark = pytest.mark.usefixtures("recipe_dir")


@pytest.fixture(scope="module")
def report(tiny_reference, tmp_path_factory):
    """A report of a copy of the tiny reference, which has no eval.json yet (the report runs eval)."""
    ref = tmp_path_factory.mktemp("report") / "ref"
    shutil.copytree(tiny_reference, ref)
    (ref / "eval.json").unlink(missing_ok=True)
    from alice.config.report import ReportSpec
    from alice.report.page import build_report

    page = build_report(ref, ReportSpec(per_modality=80, queries=2, k=4, seeds=2))
    return ref, page


@pytest.mark.slow
def test_report_writes_page_figures_and_search_grid(report):
    ref, page = report
    assert page == (ref / "report" / "index.html").resolve()
    folder = page.parent
    for name in ("latent-map.png", "latent-by-class.png", "report.json"):
        assert (folder / name).stat().st_size > 1000, name
    assert (ref / "eval.json").is_file()  # the report ran `alice eval` first
    text = page.read_text()
    assert "Table 1" in text
    assert "Table 2" in text
    assert "Table 3" in text
    # the training curves: one figure per job of each adapter (the reference build, the text adapter's)
    for name in ("curves-image-reference-build-image.png", "curves-text-modality-add-text.png"):
        assert (folder / name).stat().st_size > 5000, name
    record = json.loads((folder / "report.json").read_text())
    kinds = {(r["query"], r["gallery"], r["kind"]) for r in record["search"]}
    assert ("image", "text", "counterfactual") in kinds
    assert ("text", "image", "plain") in kinds
    assert record["projection"]["points"] == 160
    # every picture the page names exists beside it
    import re

    sources = re.findall(r'src="([^"]+)"', text)
    assert len(sources) > 20
    assert all((folder / s).is_file() for s in sources)
    # the reference still verifies: the report folder is derived, not part of the artifact
    from alice.artifacts.integrity.verify import verify_reference

    assert all(f.ok for f in verify_reference(ref))


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    _, page = report
    driver = chromium_driver()
    try:
        driver.get(page.as_uri())
        assert "ALICE report" in driver.title
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, "
            "i.naturalHeight]);"
        )
        assert len(images) > 20
        broken = [src for src, complete, w, h in images if not (complete and w > 0 and h > 0)]
        assert not broken, f"images that did not load: {broken[:5]}"
        sizes = {src: (w, h) for src, _, w, h in images}
        assert sizes["latent-map.png"][0] > 500
        assert sizes["curves-text-modality-add-text.png"][0] > 500  # the training curves, one figure per job
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table caption')).map(c => c.textContent);"
        )
        assert any(t.startswith("Table 1") for t in tables)
        assert any(t.startswith("Table 3") for t in tables)
        rows = driver.execute_script("return document.querySelectorAll('.row.counterfactual').length;")
        assert rows >= 2
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
    finally:
        driver.quit()


@pytest.mark.slow
def test_report_errors_are_one_line_and_keep_other_folders(report, tmp_path):
    ref, _ = report
    code, _, err = alice("report", ref, "--projection", "umap")
    assert code != 0
    assert "Traceback" not in err
    assert "unknown projection 'umap'" in err
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    (keep / "index.html").write_text("<p>my own page</p>")  # an index.html alone does not make a folder a report
    code, _, err = alice("report", ref, "--out", keep, "--items", "20", "--projection", "pca", "--queries", "1")
    assert code != 0
    assert "is not an ALICE report" in err
    assert "Traceback" not in err
    assert (keep / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".mine.partial-*"))


@pytest.mark.slow
def test_report_keeps_an_eval_json_of_something_else(report, tmp_path):
    """An eval.json that does not describe the reference is shown fresh, never overwritten; junk is survived."""
    ref, _ = report
    copy = tmp_path / "ref"
    shutil.copytree(ref, copy)
    other = json.loads((copy / "eval.json").read_text())
    other["reference"]["sha256"] = "0" * 64
    other["paired_settings"] = {"pairs": 1000}  # e.g. rows from `alice eval --pairs`, which a report must not drop
    (copy / "eval.json").write_text(json.dumps(other))
    assert alice("report", copy)[0] == 2  # an edited eval.json is refused until it is recorded
    assert alice("reference", "verify", copy, "--rehash")[0] == 0
    code, _, err = alice(
        "report", copy, "--items", "20", "--projection", "pca", "--queries", "1", "--seeds", "1", "--device", "auto"
    )
    assert code == 0, err
    assert "does not describe this reference" in err
    assert json.loads((copy / "eval.json").read_text()) == other
    (copy / "eval.json").write_text("[]")
    assert alice("reference", "verify", copy, "--rehash")[0] == 0
    code, _, err = alice("report", copy, "--items", "20", "--projection", "pca", "--queries", "1", "--seeds", "1")
    assert code == 0, err
    assert (copy / "eval.json").read_text() == "[]"
    assert (copy / "report" / "report.json").is_file()


MULTILINE = 'two lines <b>and a tag</b>\nthe second & "quoted"\n\nafter a blank line'


def test_a_multi_line_text_preview_keeps_its_line_breaks(tmp_path):
    import re

    from alice.report.page import STYLE
    from alice.report.previews import Gallery

    figure = Gallery(tmp_path, lambda modality, item: item).html("text", 0, MULTILINE, "a caption")
    # escaped, and the line breaks are in the page as they are in the text
    body = re.search(r'<p class="text">(.*?)</p>', figure, re.S).group(1)
    assert body == "two lines &lt;b&gt;and a tag&lt;/b&gt;\nthe second &amp; &quot;quoted&quot;\n\nafter a blank line"
    # and the page's style shows them: p.text keeps white space (pre-wrap), so the lines are not run together
    rule = re.search(r"p\.text \{([^}]*)\}", STYLE).group(1)
    assert re.search(r"white-space:\s*pre-wrap", rule), rule


@pytest.mark.slow
def test_a_multi_line_text_preview_renders_on_several_lines(tmp_path):
    from alice.report.page import STYLE
    from alice.report.previews import Gallery

    figure = Gallery(tmp_path, lambda modality, item: item).html("text", 0, MULTILINE, "a caption")
    page = tmp_path / "page.html"
    page.write_text(f"<!doctype html><html><head><style>{STYLE}</style></head><body>{figure}</body></html>")
    driver = chromium_driver()
    try:
        driver.get(page.as_uri())
        shown = driver.execute_script("return document.querySelector('p.text').innerText;")
        # the same text with the page's own rule taken away: what the report did before keeping line breaks
        driver.execute_script("document.querySelector('p.text').style.whiteSpace = 'normal';")
        collapsed = driver.execute_script("return document.querySelector('p.text').innerText;")
    finally:
        driver.quit()
    assert shown == MULTILINE  # innerText is the text as rendered: every line break is on the screen
    assert "\n" not in collapsed  # white-space: normal would run the lines together
