"""The sweep page in headless Chromium, offline: no console errors, the measure plots put the
swept parameter (an edited config.json weight decay) on their x axis, a CSV download holds
one row per variant, and the epoch cursor moves the line on the loss curves."""

import pytest
from test_sweep_page import _spec, sweep_variants

from tdw import analyzers
from tdw.io.history import read_history
from tdw.pages import sweep_data as sd
from tdw.pages.sweep import write_sweep
from tdw.pages.sweep_spec import load_sweep_spec

pytestmark = pytest.mark.browser


def test_sweep_page_plots_against_the_swept_parameter(browser, tmp_path):
    variants = sweep_variants(tmp_path)
    spec_file = _spec(
        tmp_path, {"title": "<b>wd</b>", "measures": ["epochs_to_memorise", "epochs_to_generalise", "final_test_loss"]}
    )
    spec = load_sweep_spec(spec_file, [], list(analyzers.REGISTRY))
    out = tmp_path / "sweep.html"
    write_sweep(out, spec=spec, family="modadd", name="default", variants=variants)
    context = browser.new_context(offline=True, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(out.as_uri())
    page.evaluate("() => window.tdwSweep")
    assert errors == []
    assert page.text_content("h1") == "<b>wd</b>"
    assert page.text_content("#tdw-sweep-axes").startswith("swept: train.weight_decay;")
    # plot 1: epochs to memorise against weight decay; seeds as points, the mean with min/max bars
    x_title = page.evaluate("() => document.getElementById('tdw-sweep-1').layout.xaxis.title.text")
    assert x_title == "train.weight_decay"
    seeds, mean = page.evaluate("() => document.getElementById('tdw-sweep-1').data.map(t => [Array.from(t.x), Array.from(t.y)])")
    mem = {
        n: sd.first_below(read_history(v["history"])["train_epoch"], read_history(v["history"])["train_loss"], 0.1)
        for n, v in variants.items()
    }
    assert seeds == [[0.1, 0.1, 1.0, 1.0], [mem["wd0.1_seed0"], mem["wd0.1_seed1"], mem["wd1.0_seed0"], mem["wd1.0_seed1"]]]
    assert mean[0] == [0.1, 1.0]
    # nobody generalises in 60 synthetic epochs below 0.1: said on the plot, nothing drawn
    assert all(
        sd.first_below(read_history(v["history"])["test_epoch"], read_history(v["history"])["test_loss"], 0.1) is None
        for v in variants.values()
    )
    gen = page.evaluate("() => document.getElementById('tdw-sweep-2').layout.annotations.map(a => a.text)")
    assert gen == ["not reached: " + ", ".join(variants)]
    assert page.evaluate("() => document.getElementById('tdw-sweep-2').data.map(t => t.y.length)") == [0, 0]
    # the loss curves: one train and one test trace per variant
    assert page.evaluate("() => document.getElementById('tdw-sweep-loss').data.length") == 8
    # a CSV download: the table behind the final test loss plot, one row per variant
    with page.expect_download() as dl:
        page.click("a.tdw-csv[data-table='2']")
    lines = open(dl.value.path()).read().splitlines()
    assert dl.value.suggested_filename == "final_test_loss.csv"
    assert lines[0] == "variant,train.weight_decay,seed,final_test_loss"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[:3] for r in rows] == [
        ["wd0.1_seed0", "0.1", "0"],
        ["wd0.1_seed1", "0.1", "1"],
        ["wd1.0_seed0", "1", "0"],
        ["wd1.0_seed1", "1", "1"],
    ]
    assert [float(r[3]) for r in rows] == pytest.approx([v["metadata"]["final"]["test_loss"] for v in variants.values()])
    # the epoch cursor: moving the slider moves the line on the loss curves
    last = page.evaluate("() => document.getElementById('tdw-sweep-loss').layout.shapes[0].x0")
    assert last == 60
    page.fill("#tdw-sweep-cursor", "25")
    page.wait_for_function("() => document.getElementById('tdw-sweep-loss').layout.shapes[0].x0 === 25")
    assert page.text_content("#tdw-sweep-epoch") == "epoch 25"
    assert errors == []
    context.close()
