"""Many checkpoints per variant: the dry run plans one job per variant and step however many
checkpoints there are, each checkpoint and cache is still a target of its own, and a checkpoint
or cache changed or removed after its job reruns what reads it (the jobs name one file for all
of them: tdw.workflow.inputs). Timing lives in bench/bench_dag.py."""

import os

import pytest
from workflow_runs import job_counts, run_snakemake, write_config

from tdw.config import load
from tdw.layout import RESULTS, VariantLayout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DENSE = [{"from": 0, "to": 3000, "every": 1}]  # 3,001 checkpoints
ANALYZERS = ["embedding_frequencies", "attention"]  # the default report draws the first


def plan(workdir, config, *targets: str) -> dict[str, int]:
    out = run_snakemake(workdir, config, "--dry-run", "--quiet", "rules", target_list=list(targets))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return job_counts(out.stdout + out.stderr)


def test_files_changed_after_the_last_output_and_the_first_missing(tmp_path):
    from tdw.workflow.inputs import epoch_files, first_missing, latest, newer_than

    paths = epoch_files(tmp_path, lambda e: f"epoch_{e:05d}.h5", range(4))
    assert paths[2] == str(tmp_path / "epoch_00002.h5")
    assert newer_than(paths, tmp_path / "last") == [] and first_missing(paths) == [tmp_path / "epoch_00000.h5"]
    for i, p in enumerate([*paths, tmp_path / "last"]):
        open(p, "w").close()
        os.utime(p, ns=(10**9 * (100 + i),) * 2)  # written in order, "last" last
    assert newer_than(paths, tmp_path / "last") == [] and first_missing(paths) == []
    os.utime(paths[1], ns=(10**9 * 200,) * 2)  # written again afterwards
    assert newer_than(paths, tmp_path / "last") == ["epoch_00001.h5"]
    assert latest(paths[0], paths[-1]) == tmp_path / "epoch_00003.h5"
    os.unlink(paths[2])
    assert first_missing(paths) == [tmp_path / "epoch_00002.h5"] and newer_than(paths, tmp_path / "gone") == []


def test_dense_schedule_plans_one_job_per_variant_and_step(tmp_path):
    config = write_config(tmp_path, [5], [0, 1], epochs=DENSE)
    wb = load(config, os.path.join(ROOT, "families"))
    assert len(wb.variants[0].epochs) == 3001
    jobs = plan(tmp_path, config)
    n = len(wb.variants)
    assert jobs == {
        "train": n,
        "forward_cache_trained": n,
        "analyze": n * len(wb.analyzers),
        "render": n * len(wb.figures),
        "static_modadd": n,
        "report": n * len(wb.reports),
        "compare": 1,
        "sweep_page": 1,
        "all": 1,
    }, jobs


def test_every_checkpoint_and_cache_of_a_dense_schedule_is_a_target(tmp_path):
    config = write_config(tmp_path, [5], [0], epochs=DENSE, analyzers=["embedding_frequencies"])
    files = VariantLayout(RESULTS, "modadd", "p5_seed0_frac0.5")
    assert plan(tmp_path, config, str(files.checkpoint(1234))) == {"train": 1}
    assert plan(tmp_path, config, str(files.cache("full", 2999))) == {"train": 1, "forward_cache_trained": 1}


@pytest.mark.slow
def test_a_missing_or_changed_checkpoint_or_cache_reruns_what_reads_it(tmp_path):
    config = write_config(tmp_path, [5], [0], epochs=[{"from": 0, "to": 40, "every": 1}], analyzers=ANALYZERS)
    files = VariantLayout(tmp_path / RESULTS, "modadd", "p5_seed0_frac0.5")
    artifact = str(VariantLayout(RESULTS, "modadd", "p5_seed0_frac0.5").artifact("full", "attention"))

    def run(*targets: str) -> None:
        done = run_snakemake(tmp_path, config, "--cores", "2", target_list=[artifact, *targets])
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    run()
    assert plan(tmp_path, config, artifact) == {}

    # a missing cache or checkpoint: the default target reruns the job writing them all
    files.cache("full", 5).unlink()
    jobs = plan(tmp_path, config, "all")
    assert jobs["forward_cache_trained"] == 1 and "train" not in jobs, jobs
    files.checkpoint(9).unlink()
    assert plan(tmp_path, config, "all")["train"] == 1
    run(str(files.checkpoint(9).relative_to(tmp_path)))
    assert files.checkpoint(9).exists() and files.cache("full", 5).exists()
    assert plan(tmp_path, config, artifact) == {}

    # a checkpoint written again after training: its forward pass and the analyzer rerun, not training
    os.utime(files.checkpoint(17))
    assert plan(tmp_path, config, artifact) == {"forward_cache_trained": 1, "analyze": 1}
    run()
    assert plan(tmp_path, config, artifact) == {}  # and then nothing: the change is recorded

    # a cache written again: the analyzer reading it reruns
    os.utime(files.cache("full", 23))
    assert plan(tmp_path, config, artifact) == {"analyze": 1}
    run()
    assert plan(tmp_path, config, artifact) == {}
