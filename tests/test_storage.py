"""Storage report and cache dropping: real files with a hard link, then the real workflow
(dry runs show what a dropped cache costs), then the Snakemake behaviour the policy relies on."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest
from workflow_runs import PROBE, SNAKEMAKE, job_counts, run_snakemake, variant_epochs, write_config

from tdw.io import storage
from tdw.layout import RESULTS, FamilyLayout, VariantLayout, checkpoint_name


def _write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_hard_linked_checkpoints_count_once(tmp_path):
    family = FamilyLayout(tmp_path, "modadd")
    v = family.variant("p11_seed0_frac0.5")
    _write(v.state_checkpoints / checkpoint_name(0), 1000)
    _write(v.snapshot, 3000)
    v.folder("checkpoints").mkdir()
    os.link(v.state_checkpoints / checkpoint_name(0), v.checkpoint(0))
    _write(v.cache("full", 0), 200)
    _write(v.artifact("full", "embedding_frequencies"), 50)
    _write(v.figure("loss_curves", "png"), 70)
    _write(v.metadata, 5)

    usage = storage.variant_usage(v.dir)
    assert usage.bytes == {
        "checkpoints": 1000,
        "cache": 200,
        "artifacts": 50,
        "figures": 70,
        "reports": 0,
        "train_state": 3000,
        "other": 5,
    }
    assert usage.total == 4325 and usage.shared_links == 1

    assert storage.main([str(family.dir)]) == 0
    report = family.storage.read_text()
    assert '"total_bytes": 4325' in report


@pytest.mark.slow
def test_dropped_caches_rerun_nothing_when_caches_are_temporary(tmp_path):
    config = write_config(tmp_path, [11], [0], analyzers=["embedding_frequencies"])
    epochs = variant_epochs(config)["p11_seed0_frac0.5"]
    files = VariantLayout(RESULTS, "modadd", "p11_seed0_frac0.5")
    artifact = str(files.artifact(PROBE, "embedding_frequencies"))
    caches = [str(files.cache(PROBE, e)) for e in epochs]
    done = run_snakemake(tmp_path, config, "--cores", "2", target_list=[artifact, *caches])
    assert done.returncode == 0, done.stderr[-2000:]

    usage = storage.family_usage(tmp_path / RESULTS / "modadd")[0]
    assert usage.files["checkpoints"] == 3 and usage.files["cache"] == 3 and usage.shared_links == 3
    count, freed = storage.drop_caches(tmp_path / RESULTS / "modadd")
    assert count == 3 and freed == usage.bytes["cache"]
    assert not any((tmp_path / c).exists() for c in caches) and (tmp_path / artifact).exists()

    def plan(*options: str, targets: list[str] | None = None) -> dict[str, int]:
        out = run_snakemake(tmp_path, config, "--dry-run", *options, target_list=targets)
        assert out.returncode == 0, out.stderr[-2000:]
        return job_counts(out.stdout + out.stderr)

    # Caches kept (the default): the full sweep regenerates them as final targets.
    assert "forward_cache_trained" in plan(targets=["all"])
    # keep_caches=False: caches are temp() and no target; their absence reruns nothing.
    no_keep = plan("--config", "keep_caches=False", targets=["all"])
    assert "forward_cache_trained" not in no_keep and "analyze" not in no_keep and "train" not in no_keep
    assert plan("--config", "keep_caches=False", targets=[artifact]) == {}


TOY = textwrap.dedent(
    """
    wrap = temp if config.get("temp") else (lambda f: f)
    rule all:
        input: "a.txt", "b.txt"
    rule ckpt:
        output: "ckpt.txt"
        shell: "echo w > {output}"
    rule cache:
        input: "ckpt.txt"
        output: wrap("cache.txt")
        shell: "echo c > {output}"
    rule a:
        input: "cache.txt"
        output: "a.txt"
        params: v=config.get("av", 1)
        shell: "cat {input} > {output}"
    rule b:
        input: "cache.txt"
        output: "b.txt"
        shell: "cat {input} > {output}"
    """
)


@pytest.mark.slow
def test_snakemake_cache_semantics(tmp_path):
    """What docs/STORAGE.md states about Snakemake 9.27, on a four-rule workflow with the
    workbench's rerun triggers: two analyzers (a, b) read one cache."""
    (tmp_path / "Snakefile").write_text(TOY)
    base = [SNAKEMAKE, "--cores", "1", "--rerun-triggers", "mtime", "params", "input", "software-env", "--config", "temp=1"]

    def run(*extra: str) -> dict[str, int]:
        out = subprocess.run([*base, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return job_counts(out.stdout + out.stderr)

    run()
    assert not (tmp_path / "cache.txt").exists()  # temp: deleted after a and b
    assert run("--dry-run") == {}  # ... and its absence reruns nothing
    # A changed analyzer regenerates the cache, and the other reader reruns too.
    assert run("av=2", "--dry-run") == {"cache": 1, "a": 1, "b": 1, "all": 1}
