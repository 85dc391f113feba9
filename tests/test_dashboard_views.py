"""The dashboard's rendered views are named by what they are made of: the same request reuses
the file, a visual change or new report code makes a new one (an upgraded workbench never shows
a report its old code rendered)."""

import subprocess

import pytest
from workflow_runs import SNAKEMAKE

from tdw.train.synthetic import make_variant


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashviews")
    make_variant(root / "results" / "modadd", p=13, n_checkpoints=4, n_epochs=60)
    return root


def test_views_file_follows_parameters_and_code(workdir, monkeypatch):
    from tdw.pages.dashboard.jobs import render_variant_report
    from tdw.workflow import codehash

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
    assert "tdw.pages.report" in calls[0] and "tdw.figures.loss_curves" in calls[0]  # the report code and its views' code


def test_views_file_follows_every_file_the_report_reads(tmp_path):
    """A re-run analyzer rewrites its artifact: the Views tab renders a new report from it
    instead of showing the one drawn from the old artifact."""
    import shutil

    from tdw.io.h5 import load_artifact
    from tdw.pages.dashboard.jobs import render_variant_report

    variant = make_variant(tmp_path / "results" / "modadd", p=13, n_checkpoints=4, n_epochs=60, key=(2, 5))
    first = render_variant_report(tmp_path, "modadd/p13_seed0", "default", {})
    # The analyzer's new result: an embedding that settled on frequency 3 instead.
    rerun = make_variant(tmp_path / "rerun", p=13, n_checkpoints=4, n_epochs=60, key=(3,))
    artifact = "artifacts/full/embedding_frequencies.h5"
    shutil.copy(rerun / artifact, variant / artifact)
    assert load_artifact(variant / artifact)["key_frequencies"].tolist() == [3]
    again = render_variant_report(tmp_path, "modadd/p13_seed0", "default", {})
    assert again != first and again.read_text() != first.read_text()
    assert render_variant_report(tmp_path, "modadd/p13_seed0", "default", {}) == again


def test_report_list_follows_the_variants_family(tmp_path, monkeypatch, root):
    import shutil

    from tdw.pages.dashboard import jobs

    for family in ("modadd", "modsub"):
        shutil.copytree(root / "families" / family, tmp_path / family)
    shutil.copy(tmp_path / "modsub/reports/default.json", tmp_path / "modsub/reports/weights.json")
    monkeypatch.setattr(jobs, "FAMILIES", tmp_path)
    assert jobs.reports_for("modsub/p13_seed0") == ["default", "weights"]
    assert jobs.reports_for("modadd/p13_seed0") == ["default"]
    assert jobs.reports_for(None) == ["default", "weights"]
    # Choosing a variant in the Views tab offers its family's reports.
    from tdw.pages.dashboard.app import build_app

    make_variant(tmp_path / "work" / "results" / "modsub", p=13, n_checkpoints=4, n_epochs=60)
    app = build_app(tmp_path / "work")
    (on_variant,) = [
        f
        for f in app.fns.values()
        if any(i is not None and app.blocks[i].elem_id == "variant" and e == "change" for i, e in f.targets)
    ]
    assert [b.elem_id for b in on_variant.outputs][0] == "report"
    update, params, status = on_variant.fn("modsub/p13_seed0", "default")
    assert update["choices"] == ["default", "weights"] and update["value"] == "default"
    assert "loss_curves" in params and status == ""
    assert on_variant.fn("modadd/p13_seed0", "weights")[0] == {"__type__": "update", "choices": ["default"], "value": "default"}


SNAKEFILE = """
rule all:
    input: expand("out/{x}.txt", x=["a", "b", "c"])
rule make:
    output: "out/{x}.txt"
    shell: "test {wildcards.x} != b || test -e allow_b; echo {wildcards.x} > {output}"
"""


def test_progress_read_from_snakemake_output(tmp_path):
    """The status line the dashboard shows, from a real Snakemake run's output: jobs done out
    of the total, which failed, and a rerun that has nothing left to do."""
    from tdw.pages.dashboard.jobs import progress

    (tmp_path / "Snakefile").write_text(SNAKEFILE)

    def run():
        cmd = [SNAKEMAKE, "--cores", "1", "--keep-going"]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        return done.returncode, progress((done.stdout + done.stderr).splitlines())

    assert run() == (1, "2 of 4 jobs done; failed: make (out/b.txt)")
    (tmp_path / "allow_b").touch()
    assert run() == (0, "2 of 2 jobs done")  # b and the aggregate: only what was missing
    assert run() == (0, "nothing to be done")
