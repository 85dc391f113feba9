"""Export a report as a static bundle: HTML, PNG and SVG per view, index and provenance."""

import json

from tdw.pages.export import export_bundle


def test_bundle_has_every_view_as_images(synthetic_variant, tmp_path):
    files = export_bundle(synthetic_variant, "default", tmp_path / "bundle")
    names = sorted(p.name for p in files)
    assert names == sorted(
        ["report.html", "index.md", "provenance.json"]
        + [f"{s}.{e}" for s in ("00_loss_curves", "01_embedding_frequencies") for e in ("png", "svg")]
    )
    for p in files:
        assert p.stat().st_size > 0
    assert (tmp_path / "bundle/00_loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bundle/01_embedding_frequencies.svg").read_text().lstrip().startswith("<svg")
    prov = json.loads((tmp_path / "bundle/provenance.json").read_text())
    assert [v["figure"] for v in prov["views"]] == ["loss_curves", "embedding_frequencies"]
    assert "](00_loss_curves.png)" in (tmp_path / "bundle/index.md").read_text()
