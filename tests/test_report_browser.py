"""The interactive report in a real headless Chromium: offline, one slider moving every
view and the loss-curve indicator, jump to an epoch, and escaped text."""

import json

import numpy as np
import pytest
from reporting import make_report

from tdw.io.h5 import load_artifact
from tdw.io.variant import read_metadata_json
from tdw.layout import VariantLayout

pytestmark = pytest.mark.browser

STATE = """() => window.tdwReport.views.map(v => ({
  marks: v.marks.map(m => [Number(m.el.dataset.epoch), m.el.style.display !== 'none']),
  data: v.div.data.map(t => Array.from(t.y || [])),
  colors: v.div.data.map(t => (t.marker && Array.isArray(t.marker.color)) ? t.marker.color : null)}))"""

# Where the loss-curve view's indicator line is drawn, where Plotly drew checkpoint #i's marker
# (the "checkpoints" trace), and the plot area's vertical extent, in page pixels.
GEOMETRY = """(i) => { const v = window.tdwReport.views[0], box = e => e.getBoundingClientRect();
  const mid = e => { const b = box(e); return {x: (b.left + b.right) / 2, top: b.top, bottom: b.bottom}; };
  const trace = v.div.data.findIndex(t => t.name === 'checkpoints');
  const marker = v.div.querySelectorAll('.scatterlayer .trace')[trace].querySelectorAll('path.point')[i];
  return [mid(v.marks[0].el), mid(marker), mid(v.div.querySelector('.nsewdrag'))]; }"""


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
    files = VariantLayout.at(synthetic_variant)
    meta = read_metadata_json(files.metadata)
    epochs = [c["epoch"] for c in meta["checkpoints"]]
    norms = load_artifact(files.artifact("full", "embedding_frequencies"))["frequency_norm"]
    page, requests, _ = open_report(browser, report)
    assert all(u.startswith("file://") for u in requests), requests  # offline: nothing fetched
    start = page.evaluate(STATE)
    assert start[0]["marks"] == [[epochs[-1], True]]
    assert start[1]["marks"] == [[epochs[-1], True]]
    # Drag the real slider element to checkpoint 2.
    page.eval_on_selector("#tdw-slider", "el => { el.value = 2; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function("() => document.getElementById('tdw-position').textContent.includes('#2 ')")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    moved = page.evaluate(STATE)
    assert moved[0]["marks"] == [[epochs[2], True]]  # loss-curve indicator
    assert moved[1]["marks"] == [[epochs[2], True]]  # heat-map indicator
    # The loss-curve indicator is drawn where Plotly draws checkpoint #2's marker, and spans the plot.
    line, marker, plot = page.evaluate(GEOMETRY, 2)
    assert abs(line["x"] - marker["x"]) < 1.0, (line, marker)
    assert abs(line["top"] - plot["top"]) < 1.0 and abs(line["bottom"] - plot["bottom"]) < 1.0, (line, plot)
    np.testing.assert_allclose(moved[1]["data"][1], norms[2], rtol=1e-4)  # bar profile at checkpoint 2
    assert moved[1]["data"][1] != start[1]["data"][1]
    assert page.text_content("#tdw-position") == f"checkpoint #2 of {len(epochs) - 1} \u00b7 epoch {epochs[2]}"
    # Jump to a typed epoch: the nearest checkpoint is selected.
    target = epochs[3] + 1
    page.fill("#tdw-epoch", str(target))
    page.click("#tdw-jump button")
    page.wait_for_function("() => window.tdwReport.current() === 3")
    assert page.evaluate(STATE)[0]["marks"] == [[epochs[3], True]]
    # Zoomed in away from the selected epoch, the indicator is hidden; zoomed out, it is back where Plotly draws it.
    div = "window.tdwReport.views[0].div"
    page.evaluate(f"() => Plotly.relayout({div}, {{'xaxis.range': [{epochs[0]}, {(epochs[0] + epochs[1]) / 2}]}})")
    assert page.evaluate(STATE)[0]["marks"] == [[epochs[3], False]]
    page.evaluate(f"() => Plotly.relayout({div}, {{'xaxis.range': [{epochs[0]}, {epochs[-1]}]}})")
    assert page.evaluate(STATE)[0]["marks"] == [[epochs[3], True]]
    line, marker, _ = page.evaluate(GEOMETRY, 3)
    assert abs(line["x"] - marker["x"]) < 1.0, (line, marker)
    # Loss-curve tooltips carry the mapping: hover the train curve at epoch epochs[1] + 1.
    page.evaluate(f"() => Plotly.Fx.hover(window.tdwReport.views[0].div, [{{curveNumber: 0, pointNumber: {epochs[1] + 1}}}])")
    tip = page.text_content("#tdw-view-0 .hoverlayer")
    assert f"epoch {epochs[1] + 1}" in tip and f"nearest checkpoint #1 (epoch {epochs[1]})" in tip, tip
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


def test_header_shows_final_losses_to_four_significant_digits(browser, tmp_path):
    from tdw.train.synthetic import make_variant

    variant = make_variant(tmp_path, p=13, n_checkpoints=3, n_epochs=40)
    meta = json.loads((variant / "metadata.json").read_text())
    meta["final"] |= {"train_loss": 2.699253496031885e-07, "test_loss": 4.25412412732839}
    (variant / "metadata.json").write_text(json.dumps(meta))
    page, _, _ = open_report(browser, make_report(variant, {"title": "T", "views": ["loss_curves"]}, tmp_path / "r.html"))
    rows = page.evaluate("() => Array.from(document.querySelectorAll('table.tdw-info tr'), r => r.innerText.split('\\t'))")
    assert ["final train loss", "2.699e-07"] in rows and ["final test loss", "4.254"] in rows
    assert ["final epoch", "40"] in rows
    page.close()
