"""The workflow on a real SLURM cluster (single node, started by tests/slurm/start.sh):
a sweep submitted through sbatch gives the same numbers as a local run, and a job that
fails on the cluster is reported while the others finish and a rerun completes the rest."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

import pytest
from workflow_runs import (
    LOCKED,
    ROOT,
    compare_trees,
    job_counts,
    mtimes,
    result_files,
    run_snakemake,
    snakemake_cmd,
    targets,
    wait_for,
    write_config,
)

from tdw.layout import RESULTS, VariantLayout

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

START = ROOT / "tests" / "slurm" / "start.sh"
# Poll quickly: the profile's intervals suit a shared cluster, not a 2-core test node.
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2")
SLURM = ("--profile", "profiles/slurm", *FAST_POLL)


@pytest.fixture(scope="module")
def cluster() -> None:
    """Start the local cluster, or skip with the reason it cannot be started here."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm is not installed")
    if os.geteuid() != 0:
        pytest.skip("starting the local SLURM cluster needs root")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    done = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    if done.returncode != 0 and ("apt-get failed" in out or "not found" in out):
        pytest.skip(f"the local SLURM cluster cannot be started: {out.strip().splitlines()[-1]}")
    assert done.returncode == 0, f"tests/slurm/start.sh failed:\n{out}"


def slurm_job_ids(output: str) -> list[int]:
    return [int(j) for j in re.findall(r"submitted with SLURM jobid (\d+)", output)]


def sacct(job_ids: list[int], field: str) -> dict[int, str]:
    """One accounting field per job (allocation line only)."""
    ids = ",".join(map(str, job_ids))
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", ids, "-o", f"JobID,{field}"], capture_output=True, text=True, check=True
    )
    return {int(i): v for i, v in (line.split("|", 1) for line in out.stdout.splitlines() if line)}


def test_sweep_on_slurm_equals_local(cluster, tmp_path):
    local, cluster_dir = tmp_path / "local", tmp_path / "slurm"
    config_local = write_config(local, [11, 13], [0, 1])
    config_slurm = write_config(cluster_dir, [11, 13], [0, 1])

    done = run_snakemake(local, config_local, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_snakemake(cluster_dir, config_slurm, *SLURM)
    assert done.returncode == 0, done.stderr[-3000:]

    # 4 variants x (train, forward pass, analyzer), each one sbatch job that SLURM ran.
    jobs = slurm_job_ids(done.stderr)
    assert len(jobs) == 12
    assert set(sacct(jobs, "State").values()) == {"COMPLETED"}
    # The profile asks for no GPU unless the user enables it.
    assert not any("gpu" in tres for tres in sacct(jobs, "AllocTRES").values())
    # 4 variants x (3 checkpoints + 3 caches + 1 artifact), bitwise equal to the local run.
    assert len(result_files(cluster_dir)) == 28
    assert compare_trees(local, cluster_dir) == []


def test_failed_job_is_reported_and_rerun_completes_the_rest(cluster, tmp_path):
    # Legacy files and configs are checked while the DAG is built, so the failure is one that
    # only a running job can find: a checkpoint damaged on disk after training (its size and
    # time kept, as a failing disk leaves it), read by the forward pass of one variant.
    config = write_config(tmp_path, [11], [0, 1])
    done = run_snakemake(tmp_path, config, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    good, broken = (VariantLayout(tmp_path / RESULTS, "modadd", v) for v in ("p11_seed0_frac0.5", "p11_seed1_frac0.5"))
    ckpt = broken.checkpoint(10)
    content, stat = ckpt.read_bytes(), ckpt.stat()
    ckpt.unlink()  # a new inode: the train_state hard link keeps the good copy
    ckpt.write_bytes(b"\0" * len(content))
    os.utime(ckpt, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    for layout in (good, broken):
        layout.artifact("full", "embedding_frequencies").unlink()
    for path in broken.dir.glob("cache/full/*.h5"):
        path.unlink()

    first = run_snakemake(tmp_path, config, *SLURM)
    assert first.returncode != 0
    assert "Error in rule forward_cache_trained" in first.stderr
    # The reason is in the SLURM log that Snakemake names (the traceback leaves the job's
    # redirected output before it is printed, so the rule's own log does not hold it).
    slurm_log = re.search(r"(\S+/slurm_logs/rule_forward_cache_trained/\S*p11_seed1_frac0.5\S*/\d+\.log)", first.stderr).group(1)
    assert "not a readable safetensors checkpoint" in (tmp_path / slurm_log).read_text()
    # keep-going: the other variant's analyzer ran on the cluster and finished despite the failure.
    assert good.artifact("full", "embedding_frequencies").exists()
    assert not broken.artifact("full", "embedding_frequencies").exists()
    assert not list(broken.dir.glob("cache/full/*.h5"))
    before = mtimes(tmp_path, f"{RESULTS}/modadd/p11_seed0_frac0.5")

    # The rerun plans exactly the broken variant's two jobs (its forward pass and analyzer) ...
    plan = run_snakemake(tmp_path, config, *SLURM, "--dry-run")
    counts = job_counts(plan.stdout + plan.stderr)
    assert counts == {"forward_cache_trained": 1, "analyze": 1}, counts
    # ... and, once the checkpoint is repaired, runs them on the cluster and touches nothing else.
    ckpt.write_bytes(content)
    os.utime(ckpt, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = run_snakemake(tmp_path, config, *SLURM)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(slurm_job_ids(second.stderr)) == 2
    assert all((tmp_path / t).exists() for t in targets(config))
    assert mtimes(tmp_path, f"{RESULTS}/modadd/p11_seed0_frac0.5") == before


def test_training_gets_a_gpu_when_enabled(cluster, tmp_path):
    """`set-resources: train: gpu: 1` reaches SLURM as a GPU allocation (the test cluster
    advertises one fake GPU; training still runs, on the CPU, since CUDA is absent)."""
    if "gpu" not in subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout:
        pytest.skip("the running cluster advertises no GPU (start it with tests/slurm/start.sh)")
    config = write_config(tmp_path, [11], [0])
    metadata = str(VariantLayout(RESULTS, "modadd", "p11_seed0_frac0.5").metadata)
    done = run_snakemake(tmp_path, config, *SLURM, "--set-resources", "train:gpu=1", target_list=[metadata])
    assert done.returncode == 0, done.stderr[-3000:]
    (job,) = slurm_job_ids(done.stderr)
    assert "gres/gpu=1" in sacct([job], "AllocTRES")[job]
    assert (tmp_path / metadata).exists()


def test_killed_controller_leaves_jobs_running_and_rerun_completes(cluster, tmp_path):
    """SIGKILL to Snakemake (the controller) while its trainings run under SLURM: the jobs
    finish on their own, the lock refuses a rerun until --unlock, and the rerun submits only
    what is missing (each job's own Snakemake cleared its incomplete markers on the shared
    filesystem) and ends equal to a local run."""
    local, cluster_dir = tmp_path / "local", tmp_path / "slurm"
    config_local = write_config(local, [11, 13], [0])
    config_slurm = write_config(cluster_dir, [11, 13], [0])
    done = run_snakemake(local, config_local, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]

    transcript = tmp_path / "controller.txt"
    with transcript.open("w") as out:
        controller = subprocess.Popen(
            snakemake_cmd(cluster_dir, config_slurm, *SLURM),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for(lambda: len(slurm_job_ids(transcript.read_text())) >= 2, 120, "both trainings to be submitted")
    os.killpg(controller.pid, signal.SIGKILL)
    controller.wait(timeout=10)

    jobs = slurm_job_ids(transcript.read_text())
    squeue = ["squeue", "-h", "-j", ",".join(map(str, jobs))]
    wait_for(lambda: not subprocess.run(squeue, capture_output=True, text=True).stdout.strip(), 180, "the orphaned jobs")
    # squeue forgets a job before accounting records its end: wait for sacct to settle too
    wait_for(lambda: not {"RUNNING", "PENDING", "COMPLETING"} & set(sacct(jobs, "State").values()), 60, "accounting")
    assert set(sacct(jobs, "State").values()) == {"COMPLETED"}

    refused = run_snakemake(cluster_dir, config_slurm, *SLURM)
    assert refused.returncode != 0 and LOCKED in refused.stderr
    assert run_snakemake(cluster_dir, config_slurm, "--unlock").returncode == 0
    rerun = run_snakemake(cluster_dir, config_slurm, *SLURM)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "rule train:" not in rerun.stderr and len(slurm_job_ids(rerun.stderr)) == 4
    assert compare_trees(local, cluster_dir) == []
