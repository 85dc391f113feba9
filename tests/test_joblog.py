"""Progress lines in job logs: loops over checkpoints (forward pass, analyzers) and epochs
(training) report item k of n, the rate and the time left while they run."""

import re
import time

import pytest

from tdw import progress as joblog
from tdw.progress import Progress, job_log

LINE = re.compile(r"^\[(.+)\] (\w+) (\d+) of (\d+)(, .*)?, ([\d.]+) (\w+)/s, ([\d.]+) (s|min|h) left$")


def progress_lines(text: str) -> list[tuple]:
    """(label, unit, k, n, rate, seconds left) of every progress line."""
    scale = {"s": 1, "min": 60, "h": 3600}
    out = []
    for line in text.splitlines():
        if m := LINE.match(line):
            out.append((m[1], m[2], int(m[3]), int(m[4]), float(m[6]), float(m[8]) * scale[m[9]]))
    return out


def test_progress_reports_rate_and_time_left(capsys):
    progress = Progress(4, "demo", every_s=0)
    t0 = time.perf_counter()
    for k in range(1, 5):
        time.sleep(0.25)
        progress.step()
        elapsed = time.perf_counter() - t0
        label, unit, done, total, rate, left = progress_lines(capsys.readouterr().err)[-1]
        assert (label, unit, done, total) == ("demo", "checkpoint", k, 4)
        assert rate == pytest.approx(k / elapsed, rel=0.1)  # about 4 per second
        assert left == pytest.approx((4 - k) / rate, abs=0.5)  # printed to the second


def test_progress_prints_every_interval_and_at_the_end(capsys):
    progress = Progress(1000, "fast", unit="epoch", every_s=3600, first=0)
    for _ in range(1000):
        progress.step("train 1.0e-03")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[fast] epoch 999 of 999, train 1.0e-03, ")


@pytest.fixture
def every_step(monkeypatch):
    monkeypatch.setattr(joblog, "PROGRESS_SECONDS", 0.0)


def test_analyzer_logs_each_checkpoint_in_its_job_log(tmp_path, every_step):
    from tdw.analyzers.runner import run_analyzer
    from tdw.train.synthetic import make_variant

    variant = make_variant(tmp_path, p=13, n_checkpoints=5, n_epochs=40)
    checkpoints = sorted((variant / "checkpoints").glob("*.safetensors"))
    log = tmp_path / "analyze.log"
    with job_log(str(log), "analyze"):
        run_analyzer("embedding_frequencies", {"dominant_fraction": 0.3}, checkpoints, None, tmp_path / "a.h5", {})
    found = progress_lines(log.read_text())
    assert [(label, unit, k, n) for label, unit, k, n, _, _ in found] == [
        ("analyze embedding_frequencies", "checkpoint", k, 5) for k in range(1, 6)
    ]
    assert found[-1][5] == 0 and all(rate > 0 for *_, rate, _ in found)
    assert log.read_text().splitlines()[-1].startswith("TIMING ")


def test_forward_pass_logs_each_checkpoint_in_its_job_log(tmp_path, every_step):
    from tdw.cache.forward import cache_checkpoints
    from tdw.config import Variant, load_family
    from tdw.train.synthetic import make_variant

    variant = make_variant(tmp_path, p=13, n_checkpoints=3, n_epochs=40)
    checkpoints = sorted((variant / "checkpoints").glob("*.safetensors"))
    log = tmp_path / "cache.log"
    with job_log(str(log), "forward_cache"):
        outs = [tmp_path / "cache" / f"{i}.h5" for i in range(3)]
        cache_checkpoints(load_family("modadd"), Variant("p13_seed0", 13, 0, 0.5, ()), "full", checkpoints, outs)
    found = progress_lines(log.read_text())
    assert [(label, k, n) for label, _, k, n, _, _ in found] == [("forward_cache p13_seed0 full", k, 3) for k in (1, 2, 3)]


def test_training_logs_epochs_with_losses_rate_and_time_left(tmp_path, every_step, capsys):
    from tdw.config import TrainConfig, Variant
    from tdw.models.architecture import ModelConfig
    from tdw.train.trainer import TrainJob, train_variant

    model = ModelConfig(p=5, d_model=16, n_heads=2, d_mlp=32)
    job = TrainJob("modadd", "add", model, TrainConfig(), Variant("p5_seed0", 5, 0, 0.5, (0, 3, 6)), tmp_path / "v")
    train_variant(job, progress_seconds=0)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if LINE.match(ln)]
    assert [progress_lines(ln)[0][2:4] for ln in lines] == [(e, 6) for e in range(7)]
    assert re.match(r"^\[train p5_seed0\] epoch 0 of 6, train \S+ test \S+ \(worst of 1\), ", lines[0])
