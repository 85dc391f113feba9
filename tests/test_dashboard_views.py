"""The dashboard's rendered views are named by what they are made of: the same request reuses
the file, a visual change or new report code makes a new one (an upgraded workbench never shows
a report its old code rendered)."""

import pytest

from tdw.synthetic import make_variant


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashviews")
    make_variant(root / "results" / "modadd", p=13, n_checkpoints=4, n_epochs=60)
    return root


def test_views_file_follows_parameters_and_code(workdir, monkeypatch):
    from tdw import codehash
    from tdw.dashboard.jobs import render_variant_report

    key = "modadd/p13_seed0"
    first = render_variant_report(workdir, key, "default", {})
    assert first.parent == workdir / "dashboard" / "views" and first.stat().st_size > 0
    mtime = first.stat().st_mtime_ns
    assert render_variant_report(workdir, key, "default", {}) == first
    assert first.stat().st_mtime_ns == mtime  # reused, not rewritten
    recoloured = render_variant_report(workdir, key, "default", {"loss_curves": {"train_color": "#00aa00"}})
    assert recoloured != first and "#00aa00" in recoloured.read_text()
    calls = []
    real = codehash.code_hash
    monkeypatch.setattr(codehash, "code_hash", lambda *e: (calls.append(e), real(*e) + "-edited")[1])
    upgraded = render_variant_report(workdir, key, "default", {})
    assert upgraded not in (first, recoloured)
    assert "tdw.report" in calls[0] and "tdw.figures.loss_curves" in calls[0]  # the report code and its views' code
