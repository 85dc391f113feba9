"""The sweep comparison page in headless Chromium: every variant's curves, final losses
and key frequencies are drawn from the real files."""

import json

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


def test_transition_table_lists_the_detected_transitions(browser, tmp_path):
    """The table shows each variant's phase boundaries and jumps as the checkpoint intervals
    of its transitions artifact, not the artifact's checkpoint epochs."""
    import numpy as np

    from tdw.io.h5 import write_h5

    v = make_variant(tmp_path, p=13, n_checkpoints=6, n_epochs=100)
    art = v / "artifacts/full/transitions.h5"
    write_h5(
        art,
        {
            "epoch": (np.array([0, 20, 40, 60, 80, 100]), "epoch"),
            "boundary": (np.array([b"memorisation_end", b"cleanup_start", b"cleanup_end"]), "boundary"),
            "boundary_epoch": (np.array([31.5, 66.0, np.nan]), "boundary"),
            "boundary_lo": (np.array([20, 60, -1]), "boundary"),
            "boundary_hi": (np.array([40, 80, -1]), "boundary"),
            "jump_series": (np.array([b"test_loss", b"gini_embed"]), "jump"),
            "jump_lo": (np.array([60, 80]), "jump"),
            "jump_hi": (np.array([80, 100]), "jump"),
        },
        {"analyzer": "transitions"},
    )
    meta = json.loads((v / "metadata.json").read_text())
    variants = {v.name: {"history": v / "history.h5", "metadata": meta, "transitions": art}}
    out = tmp_path / "compare.html"
    write_compare(out, title="sweep", description="", variants=variants)
    page = browser.new_page()
    page.goto(out.as_uri())
    rows = page.evaluate(
        "() => Array.from(document.querySelectorAll('h2 + table tr'), r => Array.from(r.cells, c => c.textContent))"
    )
    assert rows == [
        ["variant", "memorisation end", "cleanup start", "cleanup end", "jumps"],
        ["p13_seed0", "20 to 40", "60 to 80", "not found", "test_loss: 60 to 80; gini_embed: 80 to 100"],
    ]
    page.close()
