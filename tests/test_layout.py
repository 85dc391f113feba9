"""The results layout: tdw.layout gives the paths README documents, a rename in tdw.layout
moves every path (the storage report follows), and no other module builds a results path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tdw import layout
from tdw.io import storage
from tdw.layout import FamilyLayout, VariantLayout

ROOT = Path(__file__).resolve().parents[1]
# Example values for README's placeholders.
EXAMPLE = {
    "<family>": "modadd",
    "<variant>": "p113_seed0",
    "<epoch:05d>": "00020",
    "<probe>": "full",
    "<analyzer>": "embedding_frequencies",
    "<figure>": "loss_curves",
    "{html,png,svg}": "png",
    "<report>": "default",
    "<sweep>": "default",
    "<rule>": "train",
}


def readme_paths() -> set[str]:
    """The paths of README's "Where results land" tree, placeholders filled from EXAMPLE."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Where results land", 1)[1].split("```", 2)[1]
    paths, parent = set(), ""
    for line in block.strip().splitlines():
        entry = line.split()[0]
        for key, value in EXAMPLE.items():
            entry = entry.replace(key, value)
        if line.startswith("  "):
            paths.add(parent + entry.rstrip("/"))
        else:
            parent = entry if entry.endswith("/") and "<" not in entry and "compare" not in entry else ""
            paths.add(entry.rstrip("/"))
    return paths


def layout_paths(files: VariantLayout, family: FamilyLayout) -> set[str]:
    paths = [
        files.dir,
        files.checkpoint(20),
        files.history,
        files.metadata,
        files.config,
        files.cache("full", 20),
        files.artifact("full", "embedding_frequencies"),
        files.figure("loss_curves", "png"),
        files.report("default"),
        files.train_state,
        family.compare("default"),
        family.sweep("default"),
        family.storage,
        family.log("train", "p113_seed0").parent,
    ]
    return {str(p) for p in paths}


def test_layout_gives_the_readme_paths():
    family = FamilyLayout("results", "modadd")
    assert layout_paths(family.variant("p113_seed0"), family) == readme_paths()


def test_paths_written_out():
    """The same paths, spelt out (what a user types as a Snakemake target)."""
    files = VariantLayout("results", "modadd", "p113_seed0")
    assert str(files.checkpoint(20)) == "results/modadd/p113_seed0/checkpoints/checkpoint_epoch_00020.safetensors"
    assert str(files.cache("full", 1200)) == "results/modadd/p113_seed0/cache/full/epoch_01200.h5"
    assert str(files.artifact("train", "attention")) == "results/modadd/p113_seed0/artifacts/train/attention.h5"
    assert str(files.figure("geometry", "svg")) == "results/modadd/p113_seed0/figures/geometry.svg"
    assert str(files.report("default")) == "results/modadd/p113_seed0/reports/default.html"
    assert str(files.snapshot) == "results/modadd/p113_seed0/train_state/snapshot.safetensors"
    assert str(files.state_checkpoints / layout.checkpoint_name(0)) == (
        "results/modadd/p113_seed0/train_state/checkpoints/checkpoint_epoch_00000.safetensors"
    )
    assert files.checkpoint_entry(20) == "checkpoints/checkpoint_epoch_00020.safetensors"
    assert files.dir / files.checkpoint_entry(20) == files.checkpoint(20)
    assert str(FamilyLayout("results", "modadd").log("analyze", "p113_seed0_full_attention", "bench.tsv")) == (
        "results/logs/modadd/analyze/p113_seed0_full_attention.bench.tsv"
    )


def test_wildcard_patterns_are_the_same_paths():
    pattern = VariantLayout("results", "modadd", "{variant}")
    assert str(pattern.artifact("{probe}", "{analyzer}")) == "results/modadd/{variant}/artifacts/{probe}/{analyzer}.h5"
    assert str(pattern.artifact("{probe}", "{analyzer}")).format(variant="p13_seed1", probe="full", analyzer="geometry") == str(
        VariantLayout("results", "modadd", "p13_seed1").artifact("full", "geometry")
    )


def test_at_inverts_the_variant_folder(tmp_path):
    files = VariantLayout(tmp_path / "res", "modsub", "p7_seed2")
    assert VariantLayout.at(files.dir) == VariantLayout(tmp_path / "res", "modsub", "p7_seed2")
    assert VariantLayout.at(files.dir).metadata == files.metadata


def test_another_root_moves_every_path(tmp_path):
    here, there = FamilyLayout("results", "modadd"), FamilyLayout(tmp_path / "elsewhere", "modadd")
    old = layout_paths(here.variant("p113_seed0"), here)
    new = layout_paths(there.variant("p113_seed0"), there)
    prefix = str(tmp_path / "elsewhere") + "/"
    assert all(p.startswith(prefix) for p in new)  # logs too: two results folders never share a log
    assert {p[len(prefix) :] for p in new} == {p[len("results/") :] for p in old}


@pytest.mark.parametrize("kind", sorted(layout.FOLDERS))
def test_renaming_a_folder_is_one_edit(monkeypatch, tmp_path, kind):
    """Renaming a folder in tdw.layout moves its paths, leaves the others, and the storage
    report still counts the files in the right category."""
    family = FamilyLayout(tmp_path, "modadd")
    before = layout_paths(family.variant("p113_seed0"), family)
    monkeypatch.setitem(layout.FOLDERS, kind, f"renamed_{kind}")
    after = layout_paths(family.variant("p113_seed0"), family)
    moved = after - before
    assert moved and all(f"/renamed_{kind}" in p for p in moved)
    assert all(f"/{kind}/" not in p and not p.endswith(f"/{kind}") for p in moved)
    files = family.variant("p113_seed0")
    written = {
        "checkpoints": files.checkpoint(0),
        "cache": files.cache("full", 0),
        "artifacts": files.artifact("full", "geometry"),
        "figures": files.figure("geometry", "png"),
        "reports": files.report("default"),
        "train_state": files.snapshot,
    }
    for path in written.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    usage = storage.variant_usage(files.dir)
    assert usage.files == dict.fromkeys(storage.CATEGORIES[:-1], 1) | {"other": 0}
    assert storage.variant_dirs(family.dir) == [files.dir]


@pytest.mark.parametrize("key", sorted(layout.FILES))
def test_renaming_a_file_is_one_edit(monkeypatch, key):
    files = VariantLayout("results", "modadd", "p113_seed0")
    before = getattr(files, key)
    monkeypatch.setitem(layout.FILES, key, f"renamed.{key}")
    assert getattr(files, key) == before.with_name(f"renamed.{key}")


# Path joins and literals that would rebuild the layout outside tdw.layout. A family's report
# configurations (families/<family>/reports/) are declarations, not results.
REBUILT = re.compile(
    r"cache/|artifacts/|checkpoints/"
    r"|/ [\"'](checkpoints|cache|artifacts|figures|train_state|history\.h5|metadata\.json|config\.json|compare|results)[\"']"
    r"|[\"'](history\.h5|metadata\.json|config\.json|storage\.json|snapshot\.safetensors|key\.json)[\"']"
)


def test_no_other_module_builds_a_results_path():
    sources = [ROOT / "Snakefile", *ROOT.glob("rules/*.smk"), *ROOT.glob("src/tdw/**/*.py"), *ROOT.glob("workflow/scripts/*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sources
        if path != ROOT / "src/tdw/layout.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if REBUILT.search(line)
    ]
    assert not found, "\n".join(found)
