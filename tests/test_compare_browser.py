"""The sweep comparison page in headless Chromium: every variant's curves, final losses
and key frequencies are drawn from the real files."""

import pytest

from tdw.io.variant import read_metadata_json
from tdw.layout import VariantLayout
from tdw.pages.compare import write_compare
from tdw.train.synthetic import make_variant

pytestmark = pytest.mark.browser


def test_comparison_draws_every_variant(browser, tmp_path):
    variants = {}
    for seed, key in ((0, (2, 5)), (1, (3,))):
        v = make_variant(tmp_path, p=13, n_checkpoints=4, n_epochs=60, key=key, name=f"p13_seed{seed}")
        files = VariantLayout.at(v)
        variants[v.name] = {
            "history": files.history,
            "metadata": read_metadata_json(files.metadata),
            "embedding": files.artifact("full", "embedding_frequencies"),
        }
    out = tmp_path / "compare.html"
    write_compare(out, title="<b>sweep</b>", description="", variants=variants)
    page = browser.new_page()
    page.goto(out.as_uri())
    page.evaluate("() => window.tdwCompare")
    names = page.evaluate("() => document.getElementById('tdw-cmp-0').data.map(t => t.name)")
    assert names == ["p13_seed0 train", "p13_seed0 test", "p13_seed1 train", "p13_seed1 test"]
    bars = page.evaluate("() => document.getElementById('tdw-cmp-1').data.map(t => Array.from(t.y))")
    assert bars[1] == pytest.approx([variants[n]["metadata"]["final"]["test_loss"] for n in variants])
    keys = page.evaluate(
        "() => { const t = document.getElementById('tdw-cmp-2').data[1]; return [Array.from(t.x), Array.from(t.y)]; }"
    )
    assert keys == [[2, 5, 3], ["p13_seed0", "p13_seed0", "p13_seed1"]]
    assert page.text_content("h1") == "<b>sweep</b>"  # escaped, shown as text
    assert "2, 5" in page.text_content("table") and "3" in page.text_content("table")
    page.close()
