"""The interactive report in a real headless Chromium: offline, one slider moving every
view and the loss-curve indicator, jump to an epoch, and escaped text."""

import json

import numpy as np
import pytest
from reporting import make_report

from tdw.analysis import load_artifact

pytestmark = pytest.mark.browser

STATE = """() => window.tdwReport.views.map(v => ({
  shapes: (v.div.layout.shapes || []).map(s => [s.name, s.x0]),
  data: v.div.data.map(t => Array.from(t.y || [])),
  colors: v.div.data.map(t => (t.marker && Array.isArray(t.marker.color)) ? t.marker.color : null)}))"""


def open_report(browser, path):
    page = browser.new_page()
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.evaluate("() => window.tdwReport.ready")
    return page, requests, dialogs


def test_slider_moves_every_view(browser, synthetic_variant, tmp_path):
    report = make_report(
        synthetic_variant, {"title": "T {variant}", "views": ["loss_curves", "embedding_frequencies"]}, tmp_path / "r.html"
    )
    meta = json.loads((synthetic_variant / "metadata.json").read_text())
    epochs = [c["epoch"] for c in meta["checkpoints"]]
    norms = load_artifact(synthetic_variant / "artifacts/full/embedding_frequencies.h5")["frequency_norm"]
    page, requests, _ = open_report(browser, report)
    assert all(u.startswith("file://") for u in requests), requests  # offline: nothing fetched
    start = page.evaluate(STATE)
    assert start[0]["shapes"] == [["epoch-indicator", epochs[-1]]]
    assert start[1]["shapes"] == [["epoch-indicator", epochs[-1]]]
    # Drag the real slider element to checkpoint 2.
    page.eval_on_selector("#tdw-slider", "el => { el.value = 2; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function("() => document.getElementById('tdw-position').textContent.includes('#2 ')")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    moved = page.evaluate(STATE)
    assert moved[0]["shapes"] == [["epoch-indicator", epochs[2]]]  # loss-curve indicator
    assert moved[1]["shapes"] == [["epoch-indicator", epochs[2]]]  # heat-map indicator
    np.testing.assert_allclose(moved[1]["data"][1], norms[2], rtol=1e-4)  # bar profile at checkpoint 2
    assert moved[1]["data"][1] != start[1]["data"][1]
    assert page.text_content("#tdw-position") == f"checkpoint #2 of {len(epochs) - 1} \u00b7 epoch {epochs[2]}"
    # Jump to a typed epoch: the nearest checkpoint is selected.
    target = epochs[3] + 1
    page.fill("#tdw-epoch", str(target))
    page.click("#tdw-jump button")
    page.wait_for_function("() => window.tdwReport.current() === 3")
    assert page.evaluate(STATE)[0]["shapes"] == [["epoch-indicator", epochs[3]]]
    # Loss-curve tooltips carry the mapping: hover the train curve at epoch epochs[1] + 1.
    page.evaluate(f"() => Plotly.Fx.hover(window.tdwReport.views[0].div, [{{curveNumber: 0, pointNumber: {epochs[1] + 1}}}])")
    tip = page.text_content("#tdw-view-0 .hoverlayer")
    assert f"epoch {epochs[1] + 1}" in tip and f"nearest checkpoint #1 (epoch {epochs[1]})" in tip, tip
    page.close()


def test_slider_step_is_fast(browser, synthetic_variant, tmp_path):
    report = make_report(synthetic_variant, {"views": ["loss_curves", "embedding_frequencies"]}, tmp_path / "r.html")
    page, _, _ = open_report(browser, report)
    ms = page.evaluate("""async () => { const t = []; for (let i = 0; i < 6; i++) {
        const t0 = performance.now(); await window.tdwReport.show(i);
        await new Promise(r => requestAnimationFrame(r)); t.push(performance.now() - t0); } return Math.max(...t); }""")
    assert ms < 200
    page.close()


def test_text_from_the_report_file_is_escaped(browser, synthetic_variant, tmp_path):
    evil = "<script>window.pwned = 1; alert(1)</script><img src=x onerror=alert(2)>"
    spec = {"title": evil, "description": evil, "views": [{"figure": "loss_curves", "title": evil}]}
    report = make_report(synthetic_variant, spec, tmp_path / "evil.html")
    page, requests, dialogs = open_report(browser, report)
    assert page.evaluate("() => window.pwned") is None
    assert dialogs == []
    assert page.text_content("h1") == evil
    assert page.text_content("section h2") == evil
    assert page.text_content("p.tdw-description") == evil
    assert all(u.startswith("file://") for u in requests)
    page.close()
