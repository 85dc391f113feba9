"""The dashboard end to end in headless Chromium: launch a tiny variant through Snakemake
(and see a bad config refused), launch a tiny sweep and see its sweep page, then browse a
variant's views with the global slider, and re-render after a visual-parameter change."""

import json
import re

import pytest
from dashboard_server import serve_dashboard

from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, VariantLayout
from tdw.train.synthetic import make_variant

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dash")
    make_variant(workdir / "results" / "modadd", p=13, n_checkpoints=6, n_epochs=100)
    with serve_dashboard(workdir) as url:
        yield url, workdir


def views_frame(page, name: str | None = None):
    """The report frame the dashboard shows now, once its report is ready. Gradio keeps the
    iframe element and changes its ``src``, so the same frame navigates from one report to the
    next: pass the file ``name`` the frame must show (not the one it showed before)."""
    for _ in range(200):
        frames = [
            f
            for f in page.frames
            if "/dashboard/views/" in f.url and not f.is_detached() and (name is None or f.url.endswith("/" + name))
        ]
        if frames:
            frames[0].wait_for_function("() => window.tdwReport !== undefined")
            frames[0].evaluate("() => window.tdwReport.ready")
            return frames[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"no views frame showing {name or 'a report'}")


def shown_file(page) -> str:
    return page.evaluate("() => document.querySelector('#tdw-views').src.split('/').pop()")


def move_slider(page, frame, index: int):
    """Move the report's slider to ``index`` and read every view's indicator position. Under
    load the page can still be replacing the frame it just showed (Gradio re-renders the
    HTML component); then the move is retried on the frame that replaced it."""
    from playwright.sync_api import Error as PlaywrightError

    for _ in range(3):
        try:
            frame.eval_on_selector("#tdw-slider", f"el => {{ el.value = {index}; el.dispatchEvent(new Event('input')); }}")
            frame.wait_for_function(f"() => window.tdwReport.current() === {index}")
            frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            return frame, frame.evaluate("() => window.tdwReport.views.map(v => Number(v.marks[0].el.dataset.epoch))")
        except PlaywrightError as err:
            if "destroyed" not in str(err) and "detached" not in str(err):
                raise
            frame = views_frame(page)
    raise AssertionError("the views frame kept reloading")


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).click()


def test_browse_views_with_the_global_slider(browser, dashboard):
    url, workdir = dashboard
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Views").click()
    choose(page, "variant", "modadd/p13_seed0")
    page.wait_for_function("() => document.querySelector('#params textarea').value.includes('train_color')")
    page.click("#show")  # how fast it shows is measured by bench/bench_views.py, not here
    frame = views_frame(page)
    epochs = read_metadata_json(VariantLayout(workdir / RESULTS, "modadd", "p13_seed0").metadata)["checkpoints"]
    frame, x0 = move_slider(page, frame, 1)
    assert x0 == [epochs[1]["epoch"], epochs[1]["epoch"]]
    # A visual change re-renders from the artifacts into a new file (read the old name before
    # the click: the frame may navigate to the new one before the status text is seen).
    before = shown_file(page)
    page.fill("#params textarea", json.dumps({"loss_curves": {"train_color": "#00aa00"}}))
    page.click("#show")
    page.wait_for_function("() => document.querySelector('#views-status').textContent.includes('00aa00')")
    page.wait_for_function(f"() => !document.querySelector('#tdw-views').src.endsWith('/{before}')")
    frame = views_frame(page, shown_file(page))
    assert frame.evaluate("() => window.tdwReport.views[0].div.data[0].line.color") == "#00aa00"
    page.close()


def test_launch_a_variant_and_refuse_a_bad_config(browser, dashboard):
    url, workdir = dashboard
    page = browser.new_page()
    page.goto(url)
    page.locator("#cfg-p textarea, #cfg-p input").first.fill("12")
    page.click("#launch")
    page.wait_for_function("() => document.querySelector('#run-status textarea').value.startsWith('NOT STARTED')")
    assert "12" in page.input_value("#run-status textarea")
    page.locator("#cfg-p textarea, #cfg-p input").first.fill("13")
    page.locator("#cfg-seeds textarea, #cfg-seeds input").first.fill("1")
    page.locator("#cfg-ckpt textarea, #cfg-ckpt input").first.fill("0-10/5")
    page.get_by_label("train", exact=True).check()
    page.click("#launch")
    page.wait_for_function("() => /finished|FAILED/.test(document.querySelector('#run-status textarea').value)", timeout=120_000)
    status = page.input_value("#run-status textarea")
    assert re.fullmatch(r"finished in \d+ s: (\d+) of \1 jobs done", status), (
        status,
        page.input_value("#run-log textarea")[-2000:],
    )
    meta = read_metadata_json(VariantLayout(workdir / RESULTS, "modadd", "p13_seed1_frac0.5").metadata)
    assert meta["source"] == "trained"
    assert [c["epoch"] for c in meta["checkpoints"]] == [0, 5, 10]
    from tdw.pages.dashboard import jobs

    assert "modadd/p13_seed1_frac0.5" in jobs.variants(workdir)
    page.close()


def fill(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def frame_showing(page, part: str):
    """The frame whose address contains ``part``, once its page has loaded."""
    for _ in range(400):
        frames = [f for f in page.frames if part in f.url and not f.is_detached()]
        if frames:
            frames[0].wait_for_load_state()
            frames[0].wait_for_function("() => window.tdwSweep !== undefined")
            return frames[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"no frame showing {part}; frames: {[f.url for f in page.frames]}")


def test_launch_a_sweep_and_see_its_sweep_page(browser, dashboard):
    """Sweep weight decay from the Train tab (p = 7, two variants, 20 epochs): a value that is
    no number is refused naming the knob; then the variants the config resolves to are shown,
    the sweep page is built and shown with both variants, their weight decay on the axis and
    their final test losses as training recorded them."""
    url, workdir = dashboard
    page = browser.new_page()
    page.goto(url)
    fill(page, "cfg-name", "wdsweep")
    fill(page, "cfg-p", "7")
    fill(page, "cfg-seeds", "0")
    fill(page, "sweep-weight_decay", "0.1, abc")
    fill(page, "cfg-ckpt", "0-20/10")
    page.get_by_label("sweep", exact=True).check()
    page.click("#launch")
    page.wait_for_function("() => document.querySelector('#run-status textarea').value.startsWith('NOT STARTED')")
    assert "sweep knob 'weight_decay': cannot read 'abc'" in page.input_value("#run-status textarea")
    fill(page, "sweep-weight_decay", "0.1, 1")
    page.click("#launch")
    page.wait_for_function("() => document.querySelector('#run-variants textarea').value !== ''")
    assert page.input_value("#run-variants textarea") == "2 variants: p7_seed0_wd0.1_frac0.5, p7_seed0_frac0.5"
    page.wait_for_function("() => /finished|FAILED/.test(document.querySelector('#run-status textarea').value)", timeout=600_000)
    status = page.input_value("#run-status textarea")
    assert re.fullmatch(r"finished in \d+ s: (\d+) of \1 jobs done", status), (
        status,
        page.input_value("#run-log textarea")[-2000:],
    )
    frame = frame_showing(page, "/dashboard/views/sweep-modadd-default-")
    frame.evaluate("() => window.tdwSweep")
    assert frame.text_content("#tdw-sweep-axes").startswith("swept: train.weight_decay;")
    tables = frame.evaluate("() => JSON.parse(document.getElementById('tdw-data').textContent).tables")
    (final,) = [t for t in tables if t[0][-1] == "final_test_loss"]
    assert final[0] == ["variant", "train.weight_decay", "seed", "final_test_loss"]
    assert [row[:3] for row in final[1:]] == [["p7_seed0_wd0.1_frac0.5", 0.1, 0], ["p7_seed0_frac0.5", 1.0, 0]]
    recorded = [
        read_metadata_json(VariantLayout(workdir / RESULTS, "modadd", v).metadata)
        for v in ("p7_seed0_wd0.1_frac0.5", "p7_seed0_frac0.5")
    ]
    assert [row[3] for row in final[1:]] == pytest.approx([m["final"]["test_loss"] for m in recorded])
    assert [[c["epoch"] for c in m["checkpoints"]] for m in recorded] == [[0, 10, 20]] * 2
    page.close()
